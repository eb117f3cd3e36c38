"""Keys: project write keys and admin tokens; secrets are shown once, at creation."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from userloop.api.deps import Admin, RuntimeDep
from userloop.api.models import KeyIn, KeyOut
from userloop.store.meta import ApiKey

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Admin])


def key_out(names: dict[int, str], key: ApiKey, secret: str | None = None) -> KeyOut:
    return KeyOut(
        id=key.id,
        kind=key.kind,
        project=names.get(key.project_id) if key.project_id is not None else None,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        secret=secret,
    )


def _names(rt: RuntimeDep) -> dict[int, str]:
    return {p.id: p.name for p in rt.ws.meta.projects()}


@router.get("", summary="List keys (never their secrets)")
def list_keys(rt: RuntimeDep, project: str | None = None) -> list[KeyOut]:
    names = _names(rt)
    keys = rt.ws.meta.keys()
    return [key_out(names, k) for k in keys if project is None or names.get(k.project_id or -1) == project]


@router.post("", status_code=201, summary="Create a key; the reply holds its secret (shown once)")
def create_key(rt: RuntimeDep, body: KeyIn) -> KeyOut:
    project_id = None
    if body.kind == "write":
        project = rt.ws.meta.project(body.project or "")
        if project is None:
            raise HTTPException(404, f"no project named {body.project!r}")
        project_id = project.id
    key, secret = rt.ws.meta.add_key(body.kind, body.name or f"{body.kind} key", project_id)
    return key_out(_names(rt), key, secret)


@router.delete("/{key_id}", summary="Revoke a key")
def revoke_key(rt: RuntimeDep, key_id: int) -> KeyOut:
    key = rt.ws.meta.revoke_key(key_id)
    if key is None:
        raise HTTPException(404, f"no key with id {key_id}")
    rt.keys.forget()
    rt.__dict__.pop("_admin_cache", None)
    return key_out(_names(rt), key)
