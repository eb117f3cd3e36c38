"""Projects: list, show, create, change settings (the collector's CORS origins, rate limit and burst; the money
property the models and dashboards read).

Listing and showing need ``read`` and see the projects within the caller's scope; changing a project's settings
needs ``admin`` over it; creating a project needs a workspace-level ``admin`` token.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field

from userloop.core.errors import UserloopError
from userloop.ops.base import NoInput, OpContext, Strict, operation

if TYPE_CHECKING:
    from userloop.store.meta import Project


class ProjectOut(Strict):
    name: str
    timezone: str
    created_at: datetime
    cors_origins: list[str] = Field(default_factory=list)
    rate_per_second: float | None = None
    burst: float | None = None
    money_property: str = Field(
        default="order_amount", description="The NUMBER event property holding a purchase's amount."
    )
    write_key: str | None = Field(default=None, description="Only in the reply that creates the project.")


def _out(ctx: OpContext, project: Project, write_key: str | None = None) -> ProjectOut:
    from userloop.store.service_tables import collector_settings
    from userloop.store.settings import money_property

    settings = collector_settings(ctx.ws.meta, project.id)
    return ProjectOut(
        name=project.name, timezone=project.timezone, created_at=project.created_at,
        cors_origins=sorted(settings.origins), rate_per_second=settings.rate_per_second, burst=settings.burst,
        money_property=money_property(ctx.ws.project(project.name)), write_key=write_key,
    )  # fmt: skip


@operation("projects.list", "GET", "/api/v1/projects", right="read",
           summary="List projects (those within the token's scope)")  # fmt: skip
def list_projects(ctx: OpContext, req: NoInput) -> list[ProjectOut]:
    return [_out(ctx, p) for p in ctx.ws.meta.projects() if ctx.access.covers(p)]


class ProjectName(Strict):
    name: str = Field(max_length=40, description="The project.")


@operation("projects.show", "GET", "/api/v1/projects/{name}", right="read",
           summary="A project and its settings (collector, money property)")  # fmt: skip
def show_project(ctx: OpContext, req: ProjectName) -> ProjectOut:
    ctx.access.check_project(req.name)
    return _out(ctx, ctx.resolve(req.name))


class ProjectIn(Strict):
    name: str = Field(max_length=40)
    timezone: str = "Asia/Shanghai"


@operation("projects.create", "POST", "/api/v1/projects", right="admin", status=201, store_writes=True,
           summary="Create a project; the reply holds its write key (shown once)")  # fmt: skip
def create_project(ctx: OpContext, req: ProjectIn) -> ProjectOut:
    ctx.access.check_workspace("creating a project")
    with ctx.ws.events.lock:
        secrets = ctx.ws.create_project(req.name, timezone=req.timezone)
    if ctx.service is not None:
        ctx.service.project_created(req.name)
    return _out(ctx, ctx.resolve(req.name), secrets.write_key)


class ProjectSettings(Strict):
    name: str = Field(max_length=40, description="The project.")
    cors_origins: list[str] | None = Field(
        default=None, max_length=100, description="Exact origins (scheme://host[:port]), or ['*'] alone for any."
    )
    rate_per_second: float | None = Field(default=None, ge=0, description="Records per second for the project.")
    burst: float | None = Field(default=None, ge=1, description="Records at once (default: 2 s of the rate).")
    money_property: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="The NUMBER event property holding a purchase's amount (models, GMV, LTV); default order_amount.",
    )  # fmt: skip


#: The collector's fields of :class:`ProjectSettings`: a change that names none of them leaves them as they are.
COLLECTOR_FIELDS = frozenset({"cors_origins", "rate_per_second", "burst"})


@operation("projects.update", "PATCH", "/api/v1/projects/{name}", right="admin", store_writes=True,
           summary="Change a project's settings (collector limits and origins, money property)")  # fmt: skip
def update_project(ctx: OpContext, req: ProjectSettings) -> ProjectOut:
    from userloop.store.service_tables import save_collector_settings
    from userloop.store.settings import check_money_property, set_money_property

    ctx.access.check_project(req.name)
    project = ctx.resolve(req.name)
    store = ctx.ws.project(project.name)
    if req.money_property is not None:  # checked before anything is saved: a refused change changes nothing
        check_money_property(store, req.money_property)
    if req.model_fields_set & COLLECTOR_FIELDS or req.money_property is None:
        try:
            save_collector_settings(
                ctx.ws.meta, project.id, cors_origins=req.cors_origins, rate_per_second=req.rate_per_second,
                burst=req.burst,
            )  # fmt: skip
        except UserloopError as exc:  # a setting the schema lets through but the collector cannot use
            raise UserloopError(exc.message, code="invalid_request") from exc
        if ctx.service is not None:
            ctx.service.settings_changed()
    if req.money_property is not None:
        set_money_property(store, req.money_property)
    return _out(ctx, project)
