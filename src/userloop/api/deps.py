"""Dependencies shared by the routers: the runtime, the admin token, the project, pagination."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from userloop.api.runtime import Runtime
from userloop.core import ids
from userloop.store.duck import ProjectStore
from userloop.store.meta import Project

_bearer = HTTPBearer(auto_error=False, description="An admin token (ula_…).")
_ADMIN_TTL = 5.0


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def require_admin(rt: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> int:
    """The id of the admin token presented as ``Authorization: Bearer …``; 401 otherwise."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            401, "an admin token is required (Authorization: Bearer ula_…)", headers={"WWW-Authenticate": "Bearer"}
        )
    cache: dict[str, tuple[float, int | None]] = rt.__dict__.setdefault("_admin_cache", {})
    digest = ids.digest(credentials.credentials)
    hit = cache.get(digest)
    if hit is None or hit[0] < time.monotonic():
        key = rt.ws.meta.authenticate(credentials.credentials, "admin")
        hit = (time.monotonic() + _ADMIN_TTL, None if key is None else key.id)
        cache[digest] = hit
    if hit[1] is None:
        raise HTTPException(401, "the admin token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return hit[1]


Admin = Depends(require_admin)


def project_info(rt: RuntimeDep, project: Annotated[str, Query(max_length=40)] = "default") -> Project:
    info = rt.ws.meta.project(project)
    if info is None:
        raise HTTPException(404, f"no project named {project!r}")
    return info


ProjectInfo = Annotated[Project, Depends(project_info)]


def project_store(rt: RuntimeDep, info: ProjectInfo) -> ProjectStore:
    return rt.ws.project(info.name)


StoreDep = Annotated[ProjectStore, Depends(project_store)]
Limit = Annotated[int, Query(ge=1, le=10_000)]
