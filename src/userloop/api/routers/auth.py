"""Signing in and out for operators' accounts: ``/api/v1/auth/login``, ``logout``, ``me`` and ``password``.

A sign-in sets two cookies: ``userloop_session`` (the session token: httpOnly, SameSite=Strict, Secure over https)
and ``userloop_csrf`` (the CSRF token, which the console's script reads and sends back in ``X-CSRF-Token`` with
every request that changes something; :func:`userloop.api.deps.check_csrf`). Every sign-in opens a new session,
whatever session cookie came with it (no session fixation). A wrong password and an unknown login get the same
answer after the same work (scrypt runs on a dummy hash); failures count per client address (the API's guard) and
per account (:data:`userloop.store.accounts.MAX_FAILURES` in a row lock it, 423 with ``Retry-After``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import Field

from userloop.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    CallerDep,
    RuntimeDep,
    forget_tokens,
)
from userloop.api.errors import retry_seconds
from userloop.api.limits import client_address
from userloop.core import ids
from userloop.core.clock import utcnow
from userloop.core.errors import UserloopError
from userloop.core.passwords import MAX_LENGTH
from userloop.ops.base import Strict
from userloop.service.runtime import Runtime
from userloop.store import accounts, audit

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(Strict):
    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class AccountInfo(Strict):
    id: int
    login: str
    name: str


class ProjectRights(Strict):
    """An account's role in one project (``project`` None: every project) and the rights it holds there."""

    project: str | None
    role: str
    rights: list[str]
    pii: bool


class SignedIn(Strict):
    account: AccountInfo
    roles: list[ProjectRights]
    csrf_token: str | None = Field(description="Send it back in X-CSRF-Token with every POST, PUT, PATCH, DELETE.")


class PasswordIn(Strict):
    old_password: str = Field(min_length=1, max_length=MAX_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_LENGTH)


class SignedOut(Strict):
    signed_out: bool = True


class PasswordChanged(Strict):
    other_sessions_ended: bool = True


def json_same_origin(request: Request) -> None:
    """A sign-in is JSON (no form can post it from another site) and, when the browser says where it comes from
    (``Origin``), from this host."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, {"code": "unsupported_media_type",
                                  "message": "sign in with a JSON body (Content-Type: application/json)"})  # fmt: skip
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise HTTPException(403, {"code": "csrf", "message": "a sign-in must come from this site / 登录请求须来自本站"})


@router.post("/login", dependencies=[Depends(json_same_origin)], summary="Sign in: a new session in cookies")
def login(body: LoginIn, request: Request, response: Response, rt: RuntimeDep) -> SignedIn:
    address = client_address(request.scope)
    blocked = rt.guards.auth_blocked(address)
    if blocked:
        raise HTTPException(429, "too many failed sign-ins from this address; retry later",
                            headers={"Retry-After": str(retry_seconds(blocked))})  # fmt: skip
    now = utcnow()
    try:
        account = accounts.check_password(rt.ws.meta, body.login, body.password, now)
    except accounts.AccountLockedError as exc:
        rt.guards.auth_failed(address)
        raise HTTPException(423, {"code": exc.code, "message": exc.message},
                            headers={"Retry-After": str(retry_seconds(exc.seconds))}) from exc  # fmt: skip
    if account is None:
        rt.guards.auth_failed(address)
        _audit(rt, None, body.login, "auth.login_failed", address)
        raise HTTPException(401, "wrong login or password / 登录名或密码错误")
    if account.disabled_at is not None:
        raise UserloopError("this account is disabled; ask an admin / 此账号已停用，请联系管理员", code="forbidden")
    lifetime = timedelta(seconds=rt.config.session_lifetime_seconds)
    new = accounts.open_session(rt.ws.meta, account.id, now, lifetime)
    _audit(rt, account.id, account.login, "auth.login", address)
    _set_cookies(request, response, new.token, new.csrf, new.row.expires_at, now)
    caller = _caller(rt, ids.digest(new.token))
    return _signed_in(rt, caller, new.csrf)


def _audit(rt: Runtime, account_id: int | None, login: str, action: str, address: str | None) -> None:
    """A sign-in, or a failed one, in the audit log (who tried which login, from where; never the password)."""
    actor = audit.Actor("account", account_id, login)
    audit.record(rt.ws.meta, actor, action, project_id=None, target={}, request={"login": login}, before=None,
                 after=None, address=address)  # fmt: skip


def signed_in(caller: CallerDep) -> Caller:
    """The caller once it is a signed-in account (403 for an API token: these routes are about a session)."""
    if caller.session is None:
        raise UserloopError("this route is for a signed-in account, not an API token", code="forbidden")
    return caller


SessionCaller = Annotated[Caller, Depends(signed_in)]


@router.post("/logout", summary="Sign out: the session ends, its cookies are cleared")
def logout(caller: SessionCaller, request: Request, response: Response, rt: RuntimeDep) -> SignedOut:
    assert caller.session is not None
    accounts.revoke_session(rt.ws.meta, caller.session)
    forget_tokens(rt)
    secure = request.url.scheme == "https"
    for name, http_only in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", secure=secure, httponly=http_only, samesite="strict")
    return SignedOut()


@router.get("/me", summary="The signed-in account: its roles and rights per project, and its CSRF token")
def me(caller: SessionCaller, request: Request, rt: RuntimeDep) -> SignedIn:
    csrf = request.cookies.get(CSRF_COOKIE)
    valid = csrf is not None and caller.csrf is not None and ids.matches(csrf, caller.csrf)
    return _signed_in(rt, caller, csrf if valid else None)


@router.post("/password", summary="Change one's own password (the old one is needed); other sessions end")
def change_password(caller: SessionCaller, body: PasswordIn, rt: RuntimeDep) -> PasswordChanged:
    # the CSRF token was checked with the session (a POST)
    assert caller.login is not None and caller.account_id is not None and caller.session is not None
    try:
        account = accounts.check_password(rt.ws.meta, caller.login, body.old_password, utcnow())
    except accounts.AccountLockedError as exc:
        raise HTTPException(423, {"code": exc.code, "message": exc.message},
                            headers={"Retry-After": str(retry_seconds(exc.seconds))}) from exc  # fmt: skip
    if account is None:
        raise UserloopError("the old password is wrong / 原密码错误", code="forbidden", field="old_password")
    accounts.set_password(rt.ws.meta, caller.account_id, body.new_password, keep=caller.session)
    forget_tokens(rt)
    return PasswordChanged()


def _caller(rt: Runtime, digest: str) -> Caller:
    from userloop.api.deps import account_caller

    caller = account_caller(rt, digest)
    assert caller is not None  # just opened
    return caller


def _signed_in(rt: Runtime, caller: Caller, csrf: str | None) -> SignedIn:
    assert caller.account_id is not None
    account = accounts.by_id(rt.ws.meta, caller.account_id)
    assert account is not None
    held = accounts.holdings(rt.ws.meta, account.id)
    names = {p.id: p.name for p in rt.ws.meta.projects()}
    roles = []
    for project_id, role in sorted(held.roles.items(), key=lambda r: (r[0] is not None, r[0] or 0)):
        name = None if project_id is None else names.get(project_id)
        if project_id is None or name is not None:
            rights = caller.rights_in(name)
            roles.append(ProjectRights(project=name, role=role, rights=sorted(rights - {"pii"}), pii="pii" in rights))
    return SignedIn(account=AccountInfo(id=account.id, login=account.login, name=account.name), roles=roles,
                    csrf_token=csrf)  # fmt: skip


def _set_cookies(request: Request, response: Response, token: str, csrf: str, expires: datetime, now: datetime) -> None:
    secure = request.url.scheme == "https"
    max_age = int((expires - now).total_seconds())
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", secure=secure, httponly=True,
                        samesite="strict")  # fmt: skip
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure, httponly=False,
                        samesite="strict")  # fmt: skip
