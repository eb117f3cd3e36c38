"""Dependencies shared by the routers: the runtime, the caller and its rights, the project, pagination.

Every ``/api/v1`` route names the right it needs with :func:`require`::

    @router.get("/things", dependencies=[Reader])               # read
    @router.post("/things", dependencies=[Admin])               # admin (definitions, settings, keys)
    def run(caller: ReadCaller, ...): caller.has("pii")        # the caller itself, e.g. to unmask

A caller is an API token (``Authorization: Bearer ula_…``) scoped to one project or to the whole workspace, or an
operator's account signed in with a session cookie (``userloop_session``, :mod:`userloop.api.routers.auth`), whose
rights depend on the project: a route passes when the account holds its right in some project, and the project a
request names then narrows the rights to the account's rights there (:meth:`Caller.access_for`). A session must
send its CSRF token in ``X-CSRF-Token`` with every unsafe method (POST, PUT, PATCH, DELETE); a token needs none.
The project a request names (``?project=`` through :data:`ProjectInfo`, or ``"project"`` in a JSON body through
:data:`BodyScope`) must be within the caller's scope (403 otherwise). Failed authentications count per client
address (429 with ``Retry-After`` beyond ``GuardConfig.failed_auths_per_minute``); tokens are cached for a few
seconds in a size-capped cache, negative answers included.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from userloop.api.errors import retry_seconds
from userloop.api.limits import client_address
from userloop.core import ids
from userloop.core.clock import utcnow
from userloop.core.errors import UserloopError
from userloop.core.rights import implied, role_rights
from userloop.ops.base import Access
from userloop.service.runtime import Runtime
from userloop.store.duck import ProjectStore
from userloop.store.meta import Project

_bearer = HTTPBearer(auto_error=False, description="An API token (ula_…).")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: The cookies of a signed-in session: its token (httpOnly) and its CSRF token (read by the console's script).
SESSION_COOKIE = "userloop_session"
CSRF_COOKIE = "userloop_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """Who calls: an API token (its id, its scope: a project or None for the whole workspace, its rights), or an
    operator's account (its id, its rights per project name and over every project, its session).

    An account's ``rights`` are the union over its projects (what a route asks first); :meth:`access_for` gives the
    rights that hold in the project a request names."""

    key_id: int | None
    project_id: int | None
    project_name: str | None
    rights: frozenset[str]
    service: bool = False
    account_id: int | None = None
    login: str | None = None
    #: an account's rights per project name (its role there, implied, and its grants there)
    per_project: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: an account's rights over every project
    everywhere: frozenset[str] = frozenset()
    #: the session's token digest and CSRF token digest (accounts only)
    session: str | None = None
    csrf: str | None = None

    @property
    def workspace(self) -> bool:
        """Whether the caller's scope is every project (an account's rights still depend on the project)."""
        return self.project_id is None

    @property
    def is_account(self) -> bool:
        return self.account_id is not None

    def has(self, right: str) -> bool:
        return right in self.rights

    def covers(self, project: Project) -> bool:
        return self.project_id is None or self.project_id == project.id

    def rights_in(self, project: str | None) -> frozenset[str]:
        """The rights held in the project named ``project`` (None: over every project)."""
        if not self.is_account:
            scoped = self.project_name is not None and project != self.project_name
            return frozenset() if scoped else self.rights
        if project is None:
            return self.everywhere
        return self.everywhere | self.per_project.get(project, frozenset())

    def check_project(self, name: str) -> None:
        """403 unless the caller's scope includes the project named ``name`` (checked before it is looked up,
        so a caller cannot learn which other projects exist)."""
        if self.is_account:
            if not self.rights_in(name):
                raise HTTPException(403, f"this account has no role in project {name!r} / 此账号在该项目中没有角色")
        elif self.project_name is not None and name != self.project_name:
            raise HTTPException(403, f"this token is for project {self.project_name!r} only, not {name!r}")

    def access_for(self, project: Project | None, right: str) -> Access:
        """The access of an operation needing ``right`` on ``project`` (None: an operation over the workspace):
        a token's rights and scope; an account's rights in that project, or over every project (403 when the
        right is not held there)."""
        if not self.is_account:
            return Access(self.rights, self.project_id, self.project_name, self.key_id)
        name = None if project is None else project.name
        rights = self.rights_in(name)
        if right not in rights:
            where = f"in project {name!r}" if name is not None else "over every project"
            raise UserloopError(f"this account lacks the {right!r} right {where} / 此账号在此没有 {right} 权限",
                                code="forbidden")  # fmt: skip
        if project is None:
            return Access(rights, account_id=self.account_id)
        return Access(rights, project.id, project.name, account_id=self.account_id)


async def runtime(request: Request) -> Runtime:
    """The running service (async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request
    that costs more than the attribute read)."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def authenticated(
    request: Request, rt: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller presenting ``Authorization: Bearer …`` or a session cookie: 401 without a valid API token or a
    live session, 403 (``csrf``) for a session's unsafe request without its CSRF token, 429 after too many failed
    attempts from the same address or too many requests with the same token or account."""
    if credentials is not None and credentials.credentials:
        return caller_for(request, rt, credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return session_caller(request, rt, cookie)
    raise HTTPException(401, "an API token (Authorization: Bearer ula_…) or a signed-in session is required",
                        headers=_CHALLENGE)  # fmt: skip


def session_caller(request: Request, rt: Runtime, token: str) -> Caller:
    """The account signed in with the session ``token``, once an unsafe request carries the session's CSRF token.

    An unknown or ended session does not count as a failed authentication of the address: a session token is 32
    random bytes, which no one guesses, while a browser whose session ended sends it with every request."""
    caller = _session_lookup(rt, token)
    if caller is None:
        raise HTTPException(401, "the session has ended; sign in again / 会话已结束，请重新登录", headers=_CHALLENGE)
    if request.method not in SAFE_METHODS:
        check_csrf(request, caller)
    wait = rt.guards.keys.take(("account", caller.account_id))
    if wait:
        raise HTTPException(429, "too many requests from this account; retry later",
                            headers={"Retry-After": str(retry_seconds(wait))})  # fmt: skip
    return caller


def check_csrf(request: Request, caller: Caller) -> None:
    """403 ``csrf`` unless ``X-CSRF-Token`` holds the session's CSRF token (compared as digests)."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or len(sent) > 200 or caller.csrf is None or not hmac.compare_digest(ids.digest(sent), caller.csrf):
        raise HTTPException(403, {"code": "csrf", "message": f"a signed-in request that changes something must send "
                                  f"the {CSRF_HEADER} header with the session's CSRF token (cookie {CSRF_COOKIE}) / "
                                  f"修改请求须在 {CSRF_HEADER} 头中携带 CSRF 令牌"})  # fmt: skip


def _session_lookup(rt: Runtime, token: str) -> Caller | None:
    """The caller of the session ``token``: from the short-lived cache, else from the metadata DB (then cached)."""
    if len(token) > 200:
        return None
    digest = ids.digest(token)
    found, cached = rt.guards.auth_cache.get(("session", digest))
    if not found:
        cached = account_caller(rt, digest)
        rt.guards.auth_cache.put(("session", digest), cached)
    return cached if isinstance(cached, Caller) else None


def account_caller(rt: Runtime, digest: str) -> Caller | None:
    """The caller of the live session whose token has ``digest``, with its account's rights per project."""
    from userloop.store import accounts

    idle = timedelta(seconds=rt.config.session_idle_seconds)
    live = accounts.live_session(rt.ws.meta, digest, utcnow(), idle)
    if live is None:
        return None
    row, account = live
    held = accounts.holdings(rt.ws.meta, account.id)
    names = {p.id: p.name for p in rt.ws.meta.projects()}

    def rights(project_id: int | None) -> frozenset[str]:
        """The role's rights in ``project_id`` and the grants there or over every project (none without a role)."""
        role = held.roles.get(project_id)
        if role is None:
            return frozenset()
        grants = held.grants.get(project_id, frozenset()) | held.grants.get(None, frozenset())
        return implied(role_rights(role)) | grants

    everywhere = rights(None)
    per_project = {names[p]: rights(p) | everywhere for p in held.roles if p is not None and p in names}
    union = everywhere.union(*per_project.values())
    return Caller(None, None, None, union, account_id=account.id, login=account.login, per_project=per_project,
                  everywhere=everywhere, session=digest, csrf=row.csrf_digest)  # fmt: skip


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
    if not isinstance(cached, Caller) or cached.key_id is None:
        return None
    grants = frozenset(rt.ws.meta.grants(cached.key_id))
    return replace(cached, rights=cached.rights | grants)


def _project_name(rt: Runtime, project_id: int) -> str | None:
    return next((p.name for p in rt.ws.meta.projects() if p.id == project_id), None)


def forget_tokens(rt: Runtime) -> None:
    """Drop cached tokens and sessions (after a key is revoked, an account is changed or disabled, a session ends,
    so that it stops working at once)."""
    rt.guards.auth_cache.clear()
    rt.keys.forget()


CallerDep = Annotated[Caller, Depends(authenticated)]


def require(right: str, *, workspace: bool = False) -> Callable[[Caller], Caller]:
    """A dependency returning the caller once it holds ``right`` (403 otherwise; an account: in some project);
    with ``workspace`` the caller must hold it over every project (for routes that span projects)."""

    def dependency(caller: CallerDep) -> Caller:
        if not caller.has(right):
            held = ", ".join(sorted(caller.rights)) or "none"
            who = "account" if caller.is_account else "token"
            raise HTTPException(403, f"this {who} lacks the {right!r} right (it holds: {held})")
        if workspace and right not in caller.rights_in(None):
            raise HTTPException(403, f"this route spans projects: it needs the {right!r} right over every project "
                                "(a workspace-level token, or an account's role over every project)")  # fmt: skip
        return caller

    dependency.__name__ = f"require_{right}{'_workspace' if workspace else ''}"
    return dependency


ReadCaller = Annotated[Caller, Depends(require("read"))]
AdminCaller = Annotated[Caller, Depends(require("admin"))]
AnalyseCaller = Annotated[Caller, Depends(require("analyse"))]
WriteCaller = Annotated[Caller, Depends(require("write"))]
Reader = Depends(require("read"))
Admin = Depends(require("admin"))
Writer = Depends(require("write"))
WorkspaceReader = Depends(require("read", workspace=True))


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
    if caller.workspace and not caller.is_account:
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
