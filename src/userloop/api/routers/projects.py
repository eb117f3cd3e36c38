"""Projects: list, create, change collector settings (CORS origins, rate limit)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from userloop.api.deps import Admin, RuntimeDep
from userloop.api.models import ProjectIn, ProjectOut, ProjectSettings
from userloop.core.errors import UserloopError
from userloop.service.tables import collector_settings, save_collector_settings
from userloop.store.meta import Project

router = APIRouter(prefix="/api/v1/projects", tags=["projects"], dependencies=[Admin])


def _out(rt: RuntimeDep, p: Project, write_key: str | None = None) -> ProjectOut:
    settings = collector_settings(rt.ws.meta, p.id)
    return ProjectOut(
        name=p.name,
        timezone=p.timezone,
        created_at=p.created_at,
        cors_origins=(settings.cors_origins or "").split(),
        rate_per_second=settings.rate_per_second,
        write_key=write_key,
    )


@router.get("", summary="List projects")
def list_projects(rt: RuntimeDep) -> list[ProjectOut]:
    return [_out(rt, p) for p in rt.ws.meta.projects()]


@router.post("", status_code=201, summary="Create a project; the reply holds its write key (shown once)")
def create_project(rt: RuntimeDep, body: ProjectIn) -> ProjectOut:
    try:
        with rt.ws.events.lock:
            secrets = rt.ws.create_project(body.name, timezone=body.timezone)
    except UserloopError as exc:
        raise HTTPException(400, exc.message) from exc
    project = rt.ws.project_info(body.name)
    rt.door.rules.pop(body.name, None)
    return _out(rt, project, secrets.write_key)


@router.patch("/{name}", summary="Change a project's collector settings")
def update_project(rt: RuntimeDep, name: str, body: ProjectSettings) -> ProjectOut:
    project = rt.ws.meta.project(name)
    if project is None:
        raise HTTPException(404, f"no project named {name!r}")
    save_collector_settings(
        rt.ws.meta, project.id, cors_origins=body.cors_origins, rate_per_second=body.rate_per_second
    )
    rt.keys.forget()
    return _out(rt, project)
