"""Operators' accounts: list, create, give a role per project (or take it away), grant ``pii``, disable, enable,
reset a password. Every operation needs ``admin`` over every project (a workspace-level token, or an account that is
admin of every project); the CLI on the workspace's own files is its owner, which is how the first admin is made::

    userloop accounts create alice --name "Alice" --role admin      # prompts for the password twice

Hashes never leave the store. An admin cannot disable nor demote the last active account that is admin over every
project (``conflict``); ``pii`` is given or taken only by a caller holding it, as with keys.
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from userloop.core.errors import UserloopError
from userloop.ops.base import OpContext, Strict, operation

if TYPE_CHECKING:
    from userloop.store.accounts import Account

Role = Literal["viewer", "analyst", "operator", "admin"]
Login = Annotated[str, Field(min_length=1, max_length=64, description="The account's login (case does not matter).")]
ProjectName = Annotated[str | None, Field(max_length=40, description="The project; none: every project.")]
Password = Annotated[str, Field(min_length=1, max_length=1024, description="At least 10 characters, not the login.")]
_changing = threading.Lock()  # the last-admin check and the change happen together


class RoleOut(Strict):
    project: str | None = Field(description="None: every project.")
    role: Role


class GrantOut(Strict):
    project: str | None
    grant: str


class AccountOut(Strict):
    id: int
    login: str
    name: str
    disabled_at: datetime | None
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime
    roles: list[RoleOut]
    grants: list[GrantOut]


def _store() -> ModuleType:
    """The accounts' tables (SQLAlchemy), loaded when an operation runs: a command sent to a server loads none."""
    from userloop.store import accounts

    return accounts


def _out(ctx: OpContext, account: Account) -> AccountOut:
    names = {p.id: p.name for p in ctx.ws.meta.projects()}
    held = _store().holdings(ctx.ws.meta, account.id)
    roles = [RoleOut(project=None if p is None else names.get(p), role=r)
             for p, r in sorted(held.roles.items(), key=_order)]  # fmt: skip
    grants = [GrantOut(project=None if p is None else names.get(p), grant=g)
              for p, gs in sorted(held.grants.items(), key=_order) for g in sorted(gs)]  # fmt: skip
    return AccountOut(id=account.id, login=account.login, name=account.name, disabled_at=account.disabled_at,
                      locked_until=account.locked_until, created_at=account.created_at,
                      password_changed_at=account.password_changed_at, roles=roles, grants=grants)  # fmt: skip


def _order(item: tuple[int | None, object]) -> tuple[bool, int]:
    return item[0] is not None, item[0] or 0


def _changed(ctx: OpContext) -> None:
    """Cached sessions are forgotten, so that a change of roles or a disabled account counts at once."""
    if ctx.service is not None:
        ctx.service.keys_changed()


class ListAccounts(Strict):
    pass


@operation("accounts.list", "GET", "/api/v1/accounts", right="admin", workspace_token=True,
           summary="List operators' accounts with their roles and grants (never their passwords)")  # fmt: skip
def list_accounts(ctx: OpContext, req: ListAccounts) -> list[AccountOut]:
    return [_out(ctx, a) for a in _store().every(ctx.ws.meta)]


class RoleIn(Strict):
    project: ProjectName = None
    role: Role


class CreateAccount(Strict):
    login: Login
    name: str = Field(default="", max_length=100, description="The name shown in the console and the audit log.")
    password: Password
    roles: list[RoleIn] = Field(default_factory=list, max_length=1000)


@operation("accounts.create", "POST", "/api/v1/accounts", right="admin", workspace_token=True, status=201,
           summary="Create an operator's account with roles per project")  # fmt: skip
def create_account(ctx: OpContext, req: CreateAccount) -> AccountOut:
    scopes = [(_project_id(ctx, r.project), r.role) for r in req.roles]
    if len({p for p, _ in scopes}) != len(scopes):
        raise UserloopError("one role per project / 每个项目只能有一个角色", code="invalid", field="roles")
    account = _store().create(ctx.ws.meta, req.login, req.name or req.login, req.password)
    for project_id, role in scopes:
        _store().set_role(ctx.ws.meta, account.id, project_id, role)
    return _out(ctx, account)


def _project_id(ctx: OpContext, name: str | None) -> int | None:
    return None if name is None else ctx.resolve(name).id


class AccountRef(Strict):
    login: Login


class GrantRole(AccountRef):
    project: ProjectName = None
    role: Role | None = Field(default=None, description="The role to hold in the project (replaces the one held).")
    revoke: bool = Field(default=False, description="Take the account's role in the project away.")
    pii: bool | None = Field(default=None, description="Give (true) or take away (false) personal data in clear.")

    @model_validator(mode="after")
    def _one_change(self) -> GrantRole:
        if (self.role is not None) == self.revoke and self.pii is None:
            raise ValueError("name a role, or revoke, or pii (true or false)")
        if self.role is not None and self.revoke:
            raise ValueError("name a role or revoke, not both")
        return self


@operation("accounts.grant", "POST", "/api/v1/accounts/{login}/grants", right="admin", workspace_token=True,
           summary="Give an account a role in a project (or every project), take it away, or grant pii")  # fmt: skip
def grant_role(ctx: OpContext, req: GrantRole) -> AccountOut:
    account = _store().get(ctx.ws.meta, req.login)
    project_id = _project_id(ctx, req.project)
    if req.pii is not None and "pii" not in ctx.access.rights:
        raise UserloopError("only a caller holding pii can give or take it / 只有持有 pii 权限者才能授予或收回",
                            code="forbidden")  # fmt: skip
    with _changing:
        if req.role is not None or req.revoke:
            demoted = project_id is None and req.role != "admin"
            if demoted:
                _keep_an_admin(ctx, account, "demote")
            _store().set_role(ctx.ws.meta, account.id, project_id, req.role)
        if req.pii is not None:
            _store().set_grant(ctx.ws.meta, account.id, project_id, "pii", req.pii)
    _changed(ctx)
    return _out(ctx, account)


def _keep_an_admin(ctx: OpContext, account: Account, what: str) -> None:
    """``conflict`` when ``account`` is the last active account that is admin over every project."""
    if _store().workspace_admins(ctx.ws.meta) == [account.id]:
        raise UserloopError(f"cannot {what} {account.login!r}: it is the last active admin of every project; make "
                            f"another admin first / 不能{'停用' if what == 'disable' else '降级'}最后一个全局管理员",
                            code="conflict")  # fmt: skip


@operation("accounts.disable", "POST", "/api/v1/accounts/{login}/disable", right="admin", workspace_token=True,
           inputs="query",
           summary="Disable an account: it cannot sign in, its sessions end")  # fmt: skip
def disable_account(ctx: OpContext, req: AccountRef) -> AccountOut:
    account = _store().get(ctx.ws.meta, req.login)
    with _changing:
        _keep_an_admin(ctx, account, "disable")
        _store().set_disabled(ctx.ws.meta, account.id, True)
    _changed(ctx)
    return _out(ctx, _store().get(ctx.ws.meta, req.login))


@operation("accounts.enable", "POST", "/api/v1/accounts/{login}/enable", right="admin", workspace_token=True,
           inputs="query",
           summary="Enable a disabled account (and unlock it)")  # fmt: skip
def enable_account(ctx: OpContext, req: AccountRef) -> AccountOut:
    account = _store().get(ctx.ws.meta, req.login)
    _store().set_disabled(ctx.ws.meta, account.id, False)
    _changed(ctx)
    return _out(ctx, _store().get(ctx.ws.meta, req.login))


class ResetPassword(AccountRef):
    password: Password


@operation("accounts.password", "POST", "/api/v1/accounts/{login}/password", right="admin", workspace_token=True,
           summary="Set an account's password (an admin's reset); its sessions end")  # fmt: skip
def reset_password(ctx: OpContext, req: ResetPassword) -> AccountOut:
    account = _store().get(ctx.ws.meta, req.login)
    _store().set_password(ctx.ws.meta, account.id, req.password)
    _changed(ctx)
    return _out(ctx, _store().get(ctx.ws.meta, req.login))
