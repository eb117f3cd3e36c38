"""Keys: project write keys and API tokens with rights; secrets are shown once, at creation.

Every operation needs ``admin`` over the key's project: a project-scoped token manages its own project's keys, a
workspace-level one manages all. A token never makes a key with a right it does not hold itself, nor gives or takes
away a grant (``pii``) it does not hold, so it can never raise its own rights; the last workspace-level admin token
and the running server's own session token cannot be revoked (``conflict``).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.ops.base import OpContext, RowId, Strict, operation

if TYPE_CHECKING:
    from userloop.store.meta import ApiKey, Project

Right = Literal["write", "read", "analyse", "operate", "admin", "pii"]
Grant = Literal["pii"]  # the rights beyond a key's roles (store.meta.KNOWN_GRANTS)
_revoking = threading.Lock()  # the last-admin check and the revocation happen together


class KeyOut(Strict):
    id: int
    kind: str
    project: str | None
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    rights: list[str] = Field(default_factory=list)
    service: bool = False
    secret: str | None = Field(default=None, description="Only in the reply that creates the key.")


def _out(ctx: OpContext, key: ApiKey, secret: str | None = None) -> KeyOut:
    names = {p.id: p.name for p in ctx.ws.meta.projects()}
    return KeyOut(
        id=key.id, kind=key.kind, project=names.get(key.project_id) if key.project_id is not None else None,
        name=key.name, prefix=key.prefix, created_at=key.created_at, revoked_at=key.revoked_at,
        rights=sorted(ctx.ws.meta.rights(key)), service=key.service, secret=secret,
    )  # fmt: skip


class ListKeys(Strict):
    project: str | None = Field(default=None, max_length=40, description="Only this project's keys.")


@operation("keys.list", "GET", "/api/v1/keys", right="admin",
           summary="List keys (never their secrets); a project-scoped token sees its project's only")  # fmt: skip
def list_keys(ctx: OpContext, req: ListKeys) -> list[KeyOut]:
    keys = [k for k in ctx.ws.meta.keys(None) if ctx.access.workspace or k.project_id == ctx.access.project_id]
    replies = [_out(ctx, k) for k in keys]
    return [k for k in replies if req.project is None or k.project == req.project]


class KeyIn(Strict):
    kind: Literal["write", "admin"] = "write"
    project: str | None = Field(
        default=None,
        max_length=40,
        description="The key's project; a write key without one is for 'default', an API token without one is "
        "for every project (only a workspace-level token can make one).",
    )
    name: str = Field(default="", max_length=100)
    rights: list[Right] | None = Field(
        default=None,
        max_length=6,
        description="An API token's rights (default read, analyse, operate, write, admin; admin implies analyse "
        "and operate, operate implies analyse); never more than the caller's own.",
    )


@operation("keys.create", "POST", "/api/v1/keys", right="admin", status=201,
           summary="Create a key; the reply holds its secret (shown once)")  # fmt: skip
def create_key(ctx: OpContext, req: KeyIn) -> KeyOut:
    from userloop.service.runtime import SESSION_KEY_NAME
    from userloop.store.meta import ADMIN_ROLES, KNOWN_GRANTS, ROLES

    project = _target_project(ctx, req)
    wanted = ["write"] if req.kind == "write" else list(req.rights or ADMIN_ROLES)
    missing = sorted(set(wanted) - ctx.access.rights)
    if missing:
        raise UserloopError(
            f"a token cannot give rights it does not hold itself: {', '.join(missing)}", code="forbidden"
        )
    if req.name.startswith(SESSION_KEY_NAME):
        raise UserloopError(f"key names starting with {SESSION_KEY_NAME!r} are the server's own",
                            code="invalid_request")  # fmt: skip
    roles = [r for r in wanted if r in ROLES]
    if not roles:
        raise UserloopError(f"a key holds at least one of {', '.join(ROLES)}", code="invalid_request")
    key, secret = ctx.ws.meta.add_key(
        req.kind, req.name or f"{req.kind} key", None if project is None else project.id, roles=roles
    )
    for grant in (r for r in wanted if r in KNOWN_GRANTS):
        ctx.ws.meta.grant(key.id, grant)
    return _out(ctx, key, secret)


def _target_project(ctx: OpContext, req: KeyIn) -> Project | None:
    """The new key's project (None: every project), once the caller may make keys there."""
    name = req.project if req.project is not None or req.kind == "admin" else "default"
    if name is None:
        ctx.access.check_workspace("a workspace-level token")
        return None
    ctx.access.check_project(name)
    return ctx.resolve(name)


class RevokeKey(Strict):
    key_id: RowId


@operation("keys.revoke", "DELETE", "/api/v1/keys/{key_id}", right="admin",
           summary="Revoke a key (not the last workspace admin, not the server's session token)")  # fmt: skip
def revoke_key(ctx: OpContext, req: RevokeKey) -> KeyOut:
    key = ctx.ws.meta.key(req.key_id)
    if key is None or not (ctx.access.workspace or key.project_id == ctx.access.project_id):
        raise NotFoundError(f"no key with id {req.key_id}")
    with _revoking:
        if key.revoked_at is None:
            _check_revocable(ctx, key)
            key = ctx.ws.meta.revoke_key(req.key_id) or key
    if ctx.service is not None:
        ctx.service.keys_changed()
    return _out(ctx, key)


def _check_revocable(ctx: OpContext, key: ApiKey) -> None:
    """``conflict`` for the server's own session token and for the last workspace-level admin token."""
    if key.service:
        raise UserloopError(
            "this is the running server's own session token (the CLI uses it); it is revoked when the server "
            "stops. Revoke another key, or stop the server.",
            code="conflict",
        )
    if [k.id for k in ctx.ws.meta.workspace_admins()] == [key.id]:
        raise UserloopError(
            "this is the last workspace-level admin token; create another first "
            "(`userloop keys create --kind admin`), then revoke this one",
            code="conflict",
        )


class GrantRight(Strict):
    key_id: RowId
    right: Grant = Field(description="The right beyond the token's roles: pii (see personal data unmasked).")
    revoke: bool = Field(default=False, description="Take the right away instead.")


@operation("keys.grant", "POST", "/api/v1/keys/{key_id}/grants", right="admin",
           summary="Give an admin token a right beyond its roles, or take it away (one the caller holds)")  # fmt: skip
def grant_right(ctx: OpContext, req: GrantRight) -> KeyOut:
    """The same rule as :func:`create_key`: a caller could mint a token with any right it holds, so handing such
    a right to a token it manages gives nothing new, and a right it lacks is refused either way."""
    key = ctx.ws.meta.key(req.key_id)
    if key is None or not (ctx.access.workspace or key.project_id == ctx.access.project_id):
        raise NotFoundError(f"no key with id {req.key_id}")
    if req.right not in ctx.access.rights:
        raise UserloopError(f"a token cannot give or take a right it does not hold itself: {req.right}",
                            code="forbidden")  # fmt: skip
    if key.kind != "admin":
        raise ValidationError(f"key {req.key_id} is a {key.kind} key; rights are for admin tokens")
    if req.revoke:
        ctx.ws.meta.revoke_grant(key.id, req.right)
    else:
        ctx.ws.meta.grant(key.id, req.right)
    return _out(ctx, key)
