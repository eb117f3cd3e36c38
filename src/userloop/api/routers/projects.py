"""Projects: list, create, change collector settings (CORS origins, rate limit and burst).

Listing needs ``read`` and shows the projects within the token's scope; changing a project's settings needs
``admin`` over it; creating a project needs a workspace-level ``admin`` token.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from userloop.api.deps import Admin, AdminCaller, ReadCaller, Reader, RuntimeDep
from userloop.api.models import ProjectIn, ProjectOut, ProjectSettings
from userloop.core.errors import UserloopError
from userloop.store.meta import Project
from userloop.store.service_tables import collector_settings, save_collector_settings

router = APIRouter(prefix="/api/v1/projects", tags=["projects"], dependencies=[Reader])


def _out(rt: RuntimeDep, p: Project, write_key: str | None = None) -> ProjectOut:
    settings = collector_settings(rt.ws.meta, p.id)
    return ProjectOut(
        name=p.name,
        timezone=p.timezone,
        created_at=p.created_at,
        cors_origins=sorted(settings.origins),
        rate_per_second=settings.rate_per_second,
        burst=settings.burst,
        write_key=write_key,
    )


@router.get("", summary="List projects (those within the token's scope)")
def list_projects(rt: RuntimeDep, caller: ReadCaller) -> list[ProjectOut]:
    return [_out(rt, p) for p in rt.ws.meta.projects() if caller.covers(p)]


@router.post(
    "", status_code=201, dependencies=[Admin], summary="Create a project; the reply holds its write key (shown once)"
)
def create_project(rt: RuntimeDep, caller: AdminCaller, body: ProjectIn) -> ProjectOut:
    if not caller.workspace:
        raise HTTPException(403, "creating a project needs a workspace-level admin token")
    try:
        with rt.ws.events.lock:
            secrets = rt.ws.create_project(body.name, timezone=body.timezone)
    except UserloopError as exc:
        raise HTTPException(400, exc.message) from exc
    project = rt.ws.project_info(body.name)
    rt.door.rules.pop(body.name, None)
    return _out(rt, project, secrets.write_key)


@router.patch("/{name}", dependencies=[Admin], summary="Change a project's collector settings")
def update_project(rt: RuntimeDep, caller: AdminCaller, name: str, body: ProjectSettings) -> ProjectOut:
    caller.check_project(name)
    project = rt.ws.meta.project(name)
    if project is None:
        raise HTTPException(404, f"no project named {name!r}")
    try:
        save_collector_settings(
            rt.ws.meta,
            project.id,
            cors_origins=body.cors_origins,
            rate_per_second=body.rate_per_second,
            burst=body.burst,
        )
    except UserloopError as exc:
        raise HTTPException(422, exc.message) from exc
    rt.keys.forget()
    return _out(rt, project)
