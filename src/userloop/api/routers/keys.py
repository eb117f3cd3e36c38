"""Keys: project write keys and API tokens with rights; secrets are shown once, at creation.

Every route needs ``admin``, over the key's project: a project-scoped token manages its own project's keys, a
workspace-level one manages all. A token never makes a key with a right it does not hold itself; the last
workspace-level admin token and the running server's own session token cannot be revoked (409).
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, HTTPException

from userloop.api.deps import Admin, AdminCaller, Caller, RuntimeDep, forget_tokens
from userloop.api.models import KeyIn, KeyOut, RowId
from userloop.core.errors import UserloopError
from userloop.service.runtime import SESSION_KEY_NAME, Runtime
from userloop.store.meta import ADMIN_ROLES, KNOWN_GRANTS, ROLES, ApiKey, Project

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], dependencies=[Admin])
_revoking = threading.Lock()  # the last-admin check and the revocation happen together


def key_out(rt: Runtime, names: dict[int, str], key: ApiKey, secret: str | None = None) -> KeyOut:
    return KeyOut(
        id=key.id,
        kind=key.kind,
        project=names.get(key.project_id) if key.project_id is not None else None,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        rights=sorted(rt.ws.meta.rights(key)),
        service=key.service,
        secret=secret,
    )


def _names(rt: RuntimeDep) -> dict[int, str]:
    return {p.id: p.name for p in rt.ws.meta.projects()}


@router.get("", summary="List keys (never their secrets); a project-scoped token sees its project's only")
def list_keys(rt: RuntimeDep, caller: AdminCaller, project: str | None = None) -> list[KeyOut]:
    names = _names(rt)
    keys = [k for k in rt.ws.meta.keys(None) if caller.workspace or k.project_id == caller.project_id]
    return [key_out(rt, names, k) for k in keys if project is None or names.get(k.project_id or -1) == project]


@router.post("", status_code=201, summary="Create a key; the reply holds its secret (shown once)")
def create_key(rt: RuntimeDep, caller: AdminCaller, body: KeyIn) -> KeyOut:
    project = _target_project(rt, caller, body)
    wanted = ["write"] if body.kind == "write" else list(body.rights or ADMIN_ROLES)
    missing = sorted(set(wanted) - caller.rights)
    if missing:
        raise HTTPException(403, f"a token cannot give rights it does not hold itself: {', '.join(missing)}")
    if body.name.startswith(SESSION_KEY_NAME):
        raise HTTPException(422, f"key names starting with {SESSION_KEY_NAME!r} are the server's own")
    roles = [r for r in wanted if r in ROLES]
    if not roles:
        raise HTTPException(422, f"a key holds at least one of {', '.join(ROLES)}")
    try:
        key, secret = rt.ws.meta.add_key(
            body.kind, body.name or f"{body.kind} key", None if project is None else project.id, roles=roles
        )
        for grant in (r for r in wanted if r in KNOWN_GRANTS):
            rt.ws.meta.grant(key.id, grant)
    except UserloopError as exc:
        raise HTTPException(422, exc.message) from exc
    return key_out(rt, _names(rt), key, secret)


def _target_project(rt: Runtime, caller: Caller, body: KeyIn) -> Project | None:
    """The new key's project (None: every project), once the caller may make keys there."""
    name = body.project if body.project is not None or body.kind == "admin" else "default"
    if name is None:
        if not caller.workspace:
            raise HTTPException(403, "only a workspace-level token can make a workspace-level token")
        return None
    caller.check_project(name)
    project = rt.ws.meta.project(name)
    if project is None:
        raise HTTPException(404, f"no project named {name!r}")
    return project


@router.delete("/{key_id}", summary="Revoke a key (not the last workspace admin, not the server's session token)")
def revoke_key(rt: RuntimeDep, caller: AdminCaller, key_id: RowId) -> KeyOut:
    key = rt.ws.meta.key(key_id)
    if key is None or not (caller.workspace or key.project_id == caller.project_id):
        raise HTTPException(404, f"no key with id {key_id}")
    with _revoking:
        if key.revoked_at is None:
            _check_revocable(rt, key)
            key = rt.ws.meta.revoke_key(key_id) or key
    forget_tokens(rt)
    return key_out(rt, _names(rt), key)


def _check_revocable(rt: Runtime, key: ApiKey) -> None:
    """409 for the server's own session token and for the last workspace-level admin token."""
    if key.service:
        raise HTTPException(
            409,
            "this is the running server's own session token (the CLI uses it); it is revoked when the server "
            "stops. Revoke another key, or stop the server.",
        )
    admins = rt.ws.meta.workspace_admins()
    if [k.id for k in admins] == [key.id]:
        raise HTTPException(
            409,
            "this is the last workspace-level admin token; create another first "
            "(`userloop keys create --kind admin`), then revoke this one",
        )
