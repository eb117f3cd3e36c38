"""Dependencies shared by the routers: the runtime, the caller and its rights, the project, pagination.

Every ``/api/v1`` route names the right it needs with :func:`require`::

    @router.get("/things", dependencies=[Reader])               # read
    @router.post("/things", dependencies=[Admin])               # admin (definitions, settings, keys)
    def run(caller: ReadCaller, ...): caller.has("pii")        # the caller itself, e.g. to unmask

A caller is an API token (``Authorization: Bearer ula_…``) scoped to one project or to the whole workspace.
The project a request names (``?project=`` through :data:`ProjectInfo`, or ``"project"`` in a JSON body through
:data:`BodyScope`) must be within the caller's scope (403 otherwise). Failed authentications count per client
address (429 with ``Retry-After`` beyond ``GuardConfig.failed_auths_per_minute``); tokens are cached for a few
seconds in a size-capped cache, negative answers included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated

import orjson
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from userloop.api.errors import retry_seconds
from userloop.api.limits import client_address
from userloop.core import ids
from userloop.core.rights import implied
from userloop.service.runtime import Runtime
from userloop.store.duck import ProjectStore
from userloop.store.meta import Project

_bearer = HTTPBearer(auto_error=False, description="An API token (ula_…).")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """Who calls: an API token's id, its scope (a project, or None for the whole workspace) and its rights."""

    key_id: int
    project_id: int | None
    project_name: str | None
    rights: frozenset[str]
    service: bool = False

    @property
    def workspace(self) -> bool:
        """Whether the token holds its rights over every project."""
        return self.project_id is None

    def has(self, right: str) -> bool:
        return right in self.rights

    def covers(self, project: Project) -> bool:
        return self.project_id is None or self.project_id == project.id

    def check_project(self, name: str) -> None:
        """403 unless the token's scope includes the project named ``name`` (checked before it is looked up,
        so a project-scoped token cannot learn which other projects exist)."""
        if self.project_name is not None and name != self.project_name:
            raise HTTPException(403, f"this token is for project {self.project_name!r} only, not {name!r}")


async def runtime(request: Request) -> Runtime:
    """The running service (async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request
    that costs more than the attribute read)."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def authenticated(
    request: Request, rt: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller presenting ``Authorization: Bearer …``: 401 without a valid API token, 429 after too many
    failed attempts from the same address or too many requests with the same token."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "an API token is required (Authorization: Bearer ula_…)", headers=_CHALLENGE)
    return caller_for(request, rt, credentials.credentials)


def caller_for(request: Request, rt: Runtime, secret: str) -> Caller:
    """The caller whose API token ``secret`` is (see :func:`authenticated`), for routes that read it themselves."""
    address = client_address(request.scope)
    blocked = rt.guards.auth_blocked(address)
    if blocked:
        raise HTTPException(429, "too many failed authentications from this address; retry later",
                            headers={"Retry-After": str(retry_seconds(blocked))})  # fmt: skip
    caller = _lookup(rt, secret)
    if caller is None:
        rt.guards.auth_failed(address)
        raise HTTPException(401, "the API token is not valid", headers=_CHALLENGE)
    wait = rt.guards.keys.take(("key", caller.key_id))
    if wait:
        raise HTTPException(429, "too many requests with this token; retry later",
                            headers={"Retry-After": str(retry_seconds(wait))})  # fmt: skip
    return caller


def _lookup(rt: Runtime, secret: str) -> Caller | None:
    """The caller for ``secret``: the token from the short-lived cache, else from the metadata DB (then cached).

    Grants are read on every request, not cached with the token: a right taken away (``keys.grant`` with
    ``revoke``) must not linger in a cache."""
    if len(secret) > 200:
        return None
    digest = ids.digest(secret)
    found, cached = rt.guards.auth_cache.get(digest)
    if not found:
        key = rt.ws.meta.authenticate(secret, "admin")
        cached = None
        if key is not None:
            project = None if key.project_id is None else _project_name(rt, key.project_id)
            if key.project_id is None or project is not None:
                cached = Caller(key.id, key.project_id, project, implied(key.role_set), key.service)
        rt.guards.auth_cache.put(digest, cached)
    if not isinstance(cached, Caller):
        return None
    grants = frozenset(rt.ws.meta.grants(cached.key_id))
    return replace(cached, rights=cached.rights | grants)


def _project_name(rt: Runtime, project_id: int) -> str | None:
    return next((p.name for p in rt.ws.meta.projects() if p.id == project_id), None)


def forget_tokens(rt: Runtime) -> None:
    """Drop cached tokens (after a key is revoked, so that it stops working at once)."""
    rt.guards.auth_cache.clear()
    rt.keys.forget()


CallerDep = Annotated[Caller, Depends(authenticated)]


def require(right: str, *, workspace: bool = False) -> Callable[[Caller], Caller]:
    """A dependency returning the caller once it holds ``right`` (403 otherwise); with ``workspace`` the token
    must also hold it over every project (for routes that span projects)."""

    def dependency(caller: CallerDep) -> Caller:
        if not caller.has(right):
            held = ", ".join(sorted(caller.rights)) or "none"
            raise HTTPException(403, f"this token lacks the {right!r} right (it holds: {held})")
        if workspace and not caller.workspace:
            raise HTTPException(403, "this route spans projects: it needs a workspace-level token")
        return caller

    dependency.__name__ = f"require_{right}{'_workspace' if workspace else ''}"
    return dependency


ReadCaller = Annotated[Caller, Depends(require("read"))]
AdminCaller = Annotated[Caller, Depends(require("admin"))]
WriteCaller = Annotated[Caller, Depends(require("write"))]
Reader = Depends(require("read"))
Admin = Depends(require("admin"))
Writer = Depends(require("write"))
WorkspaceReader = Depends(require("read", workspace=True))


def require_admin(caller: AdminCaller) -> int:
    """The id of a token holding ``admin`` (kept for routers written before rights; prefer :func:`require`)."""
    return caller.key_id


def may_see_pii(caller: CallerDep) -> bool:
    """Whether the caller may see personal data unmasked (the ``pii`` grant): pass it as ``pii=`` to SQL and
    analyses."""
    return caller.has("pii")


PiiAllowed = Annotated[bool, Depends(may_see_pii)]


def project_info(
    caller: CallerDep, rt: RuntimeDep, project: Annotated[str, Query(max_length=40)] = "default"
) -> Project:
    """The project named by ``?project=``, once the caller's scope is checked (403 before 404)."""
    caller.check_project(project)
    info = rt.ws.meta.project(project)
    if info is None:
        raise HTTPException(404, f"no project named {project!r}")
    return info


ProjectInfo = Annotated[Project, Depends(project_info)]


async def body_project_scope(request: Request, caller: CallerDep) -> None:
    """For routes whose JSON body names the project (``"project"``, default ``default``): the caller's scope."""
    if caller.workspace:
        return
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return  # FastAPI answers 422 for the body itself
    name = body.get("project", "default") if isinstance(body, dict) else "default"
    caller.check_project(str(name))


BodyScope = Depends(body_project_scope)


def project_store(rt: RuntimeDep, info: ProjectInfo) -> ProjectStore:
    return rt.ws.project(info.name)


StoreDep = Annotated[ProjectStore, Depends(project_store)]
Limit = Annotated[int, Query(ge=1, le=10_000)]
