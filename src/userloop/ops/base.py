"""What an operation is, what it runs with, and the registry that the faces read.

An operation is one typed function, ``def save_insight(ctx: OpContext, req: SaveInsight) -> Insight``, recorded
with how it is reached over HTTP (method, path, right, success status) by the :func:`operation` decorator. The
API mounts a route per record, the HTTP client calls a route by the operation's id, and the CLI runs the same
function in process when no server owns the workspace: nothing is written twice for "server or local".

Example::

    @operation("insights.get", "GET", "/api/v1/insights/{insight_id}", right="read", summary="One saved analysis")
    def get_insight(ctx: OpContext, req: GetInsight) -> Insight:
        return Insight.of(insights.get(ctx.ws.meta, ctx.info.id, req.insight_id))
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from userloop.core.errors import NotFoundError, UserloopError

if TYPE_CHECKING:
    from userloop.query.engine import Engine, ResultCache
    from userloop.service.scheduler import Scheduler
    from userloop.store import Workspace
    from userloop.store.duck import ProjectStore
    from userloop.store.meta import Project

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Right = Literal["read", "analyse", "operate", "write", "admin"]
#: The largest row id the stores hold (SQLite INTEGER and DuckDB BIGINT are signed 64-bit): a larger number can
#: name nothing, and reaching a database with it raises OverflowError instead of a clear "no such row".
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
#: The modules that register operations; :func:`operations` imports them so the registry is complete.
DOMAINS = (
    "query",
    "user_models",
    "projects",
    "keys",
    "jobs",
    "rejects",
    "properties",
    "events",
    "tags",
    "segments",
    "users",
    "journeys",
    "engage_assets",
    "links",
    "member_diagnosis",
    "points",
    "engagement",
    "experiments",
    "programmes",
    "members",
    "causal",
    "membership_pass",
    "accounts",
    "audit",
    "dashboards",
)


class Strict(BaseModel):
    """Requests and replies: unknown fields are refused; so are NaN and ±Infinity, which Python's JSON parser
    accepts but no setting (a rate, a timeout) can mean."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ProjectScoped(Strict):
    """A request about one project's data; the face checks the caller's scope and resolves the project (404)
    before the operation runs, so the function finds it as ``ctx.info`` and ``ctx.store``."""

    project: str = Field(default="default", max_length=40, description="The project (default 'default').")


class NoInput(Strict):
    """The request of an operation that takes nothing."""


@dataclass(frozen=True)
class Access:
    """Who calls: the rights held and their scope (a project's id, or None for every project).

    The CLI on the workspace's own files is its owner (:meth:`owner`): every right, every project, personal
    data in clear (whoever can read the files can read the data)."""

    rights: frozenset[str]
    project_id: int | None = None
    project_name: str | None = None
    key_id: int | None = None
    #: the operator's account calling (None: an API token or the CLI), e.g. to name the actor in the audit log
    account_id: int | None = None

    @classmethod
    def owner(cls) -> Access:
        from userloop.core.rights import ALL_RIGHTS

        return cls(frozenset(ALL_RIGHTS))

    @property
    def workspace(self) -> bool:
        """Whether the rights hold over every project."""
        return self.project_id is None

    def covers(self, project: Project) -> bool:
        return self.project_id is None or self.project_id == project.id

    def check_project(self, name: str) -> None:
        """Refuse (``forbidden``) a project outside the scope, before it is looked up: a project-scoped token
        cannot learn which other projects exist."""
        if self.project_name is not None and name != self.project_name:
            raise UserloopError(f"this token is for project {self.project_name!r} only, not {name!r}", code="forbidden")

    def check_workspace(self, what: str) -> None:
        """Refuse (``forbidden``) ``what`` unless the rights hold over every project."""
        if not self.workspace:
            raise UserloopError(f"{what} needs a workspace-level admin token", code="forbidden")


class Service(Protocol):
    """What a running service adds to an operation's context: its scheduler, and hooks that keep its caches
    true after a change (the CLI in process has no service, hence nothing to refresh)."""

    @property
    def scheduler(self) -> Scheduler: ...

    def project_created(self, name: str) -> None:
        """A project was made: the collector reads its rules afresh."""

    def settings_changed(self) -> None:
        """A project's collector settings changed: the collector forgets what it cached."""

    def keys_changed(self) -> None:
        """A key was revoked: cached tokens are forgotten, so it stops working at once."""


@dataclass
class OpContext:
    """What an operation runs with: the workspace, the caller's access, the project the request names (once
    resolved), and the service's shared state when it runs in the server (the query result cache, the cap on
    an analyst SQL reply). The CLI's defaults: a fresh cache, no reply cap, no service."""

    ws: Workspace
    access: Access = field(default_factory=Access.owner)
    project: Project | None = None
    cache: ResultCache | None = None
    sql_max_reply_bytes: int | None = None
    service: Service | None = None

    @property
    def pii(self) -> bool:
        """Whether the caller may see phone numbers and e-mail addresses in clear."""
        return "pii" in self.access.rights

    @property
    def info(self) -> Project:
        """The project of a :class:`ProjectScoped` request."""
        if self.project is None:
            raise NotFoundError("this operation names no project")
        return self.project

    @cached_property
    def store(self) -> ProjectStore:
        return self.ws.project(self.info.name)

    def engine(self) -> Engine:
        """The analysis engine over the project, for this caller (masked without ``pii``)."""
        from userloop.query.engine import Engine, ResultCache

        if self.cache is None:
            self.cache = ResultCache()
        return Engine(self.store, self.info.timezone, self.cache, pii=self.pii)

    def resolve(self, name: str) -> Project:
        """The project named ``name`` (NotFoundError when there is none)."""
        info = self.ws.meta.project(name)
        if info is None:
            raise NotFoundError(f"no project named {name!r}")
        return info


Request = TypeVar("Request", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """One operation: its id, how HTTP reaches it, who may call it, its typed request and reply, its function.

    ``inputs`` says where the request's fields other than the path's travel: the query string (GET, DELETE, and
    POSTs that take no body) or a JSON body. ``store_writes``: the CLI must open the event store for writing to
    run it in process. ``exclude_none``: fields left None are left out of the reply (optional parts)."""

    id: str
    method: Method
    path: str
    summary: str
    right: Right
    request: type[BaseModel]
    response: Any
    fn: Callable[[OpContext, Any], Any]
    status: int = 200
    inputs: Literal["query", "body"] = "body"
    workspace_token: bool = False
    store_writes: bool = False
    exclude_none: bool = False
    tags: tuple[str, ...] = ()

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))

    @property
    def scoped(self) -> bool:
        """Whether the request names a project that the face resolves (:class:`ProjectScoped`)."""
        return issubclass(self.request, ProjectScoped)

    @cached_property
    def reply(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.response)

    def dump(self, value: Any) -> Any:
        """The reply as JSON data, exactly as the API sends it."""
        return self.reply.dump_python(value, mode="json", exclude_none=self.exclude_none)


_REGISTRY: dict[str, Operation] = {}


def operation(
    id: str,
    method: Method,
    path: str,
    *,
    right: Right,
    summary: str,
    status: int = 200,
    inputs: Literal["query", "body"] | None = None,
    workspace_token: bool = False,
    store_writes: bool = False,
    exclude_none: bool = False,
) -> Callable[[Callable[[OpContext, Request], Any]], Callable[[OpContext, Request], Any]]:
    """Register the decorated function as operation ``id``; its request and reply types are its annotations.

    ``inputs`` defaults to the query string for GET and DELETE and to a JSON body otherwise."""

    def register(fn: Callable[[OpContext, Request], Any]) -> Callable[[OpContext, Request], Any]:
        hints = get_type_hints(fn)
        if id in _REGISTRY:
            raise ValueError(f"operation {id!r} is registered twice")
        _REGISTRY[id] = Operation(
            id=id,
            method=method,
            path=path,
            summary=summary,
            right=right,
            request=hints["req"],
            response=hints["return"],
            fn=fn,
            status=status,
            inputs=inputs or ("query" if method in ("GET", "DELETE") else "body"),
            workspace_token=workspace_token,
            store_writes=store_writes,
            exclude_none=exclude_none,
            tags=(id.split(".", maxsplit=1)[0],),
        )
        return fn

    return register


def operations() -> dict[str, Operation]:
    """Every registered operation by id (the domain modules are imported here, once)."""
    for domain in DOMAINS:
        importlib.import_module(f"userloop.ops.{domain}")
    return _REGISTRY


def find(op_id: str) -> Operation:
    """The operation ``op_id`` (KeyError names the unknown id)."""
    found = operations().get(op_id)
    if found is None:
        raise KeyError(f"no operation {op_id!r}")
    return found
