"""Operators' accounts in the metadata database: who they are, their roles per project, their grants, their sessions.

An account signs in with a login and a password (hashed with scrypt, :mod:`userloop.core.passwords`) and holds a
*role* per project, or over every project (``project_id`` NULL): viewer, analyst, operator or admin
(:data:`userloop.core.rights.ACCOUNT_ROLES`), plus the grant ``pii`` per project or over every project. Failed
sign-ins in a row lock the account for a while (:data:`MAX_FAILURES`, :data:`LOCK_FOR`). A session is stored as the
SHA-256 digest of its token and of its CSRF token, never the tokens themselves; it ends at its absolute expiry,
after a time without use, when it is revoked (sign-out, password change) or when its account is disabled.

Every function takes the :class:`~userloop.store.meta.MetaStore`; the ones that depend on the time take ``now``
(naive UTC), so that tests can move it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Select, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core import ids
from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.core.passwords import check_policy, dummy_hash, hash_password, verify_password
from userloop.core.rights import ACCOUNT_ROLES
from userloop.store.meta import Base, MetaStore

#: Failed sign-ins in a row that lock an account, and for how long.
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
#: A login: 1–64 characters, lower-cased, letters, digits and ``. _ @ -`` (an e-mail address fits).
LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
#: Whether a session's ``last_seen_at`` is written again (not on every request: one write a minute is enough to
#: measure idleness in hours).
TOUCH_EVERY = timedelta(minutes=1)


class Account(Base):
    """An operator's account (never its password: its scrypt hash)."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    failed_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountRole(Base):
    """An account's role in one project, or over every project (``project_id`` NULL); one per (account, project)."""

    __tablename__ = "account_roles"
    __table_args__ = (UniqueConstraint("account_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountGrant(Base):
    """A grant (``pii``) an account holds in one project, or over every project (``project_id`` NULL)."""

    __tablename__ = "account_grants"
    __table_args__ = (UniqueConstraint("account_id", "project_id", "grant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    grant: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionRow(Base):
    """A signed-in session: the digests of its token and CSRF token, its times."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    csrf_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


@dataclass(frozen=True)
class Holdings:
    """What an account holds: its role and grants per project id (None: every project)."""

    roles: dict[int | None, str]
    grants: dict[int | None, frozenset[str]]


@dataclass(frozen=True)
class NewSession:
    """A session just opened: its token and CSRF token (shown once, to the browser) and its row."""

    token: str
    csrf: str
    row: SessionRow


class AccountLockedError(UserloopError):
    """The account is locked after too many failed sign-ins; ``until`` says when it opens again."""

    code = "account_locked"

    def __init__(self, until: datetime, now: datetime) -> None:
        minutes = max(1, round((until - now).total_seconds() / 60))
        super().__init__(f"too many failed sign-ins: this account is locked for {minutes} more minute(s) / "
                         f"登录失败次数过多，账号已锁定，请 {minutes} 分钟后再试")  # fmt: skip
        self.until = until
        self.seconds = max(1.0, (until - now).total_seconds())


# accounts -------------------------------------------------------------------------------------------------------
def normalise_login(login: str) -> str:
    """``login`` lower-cased and trimmed, once it is a valid login (ValidationError otherwise)."""
    clean = login.strip().lower()
    if not LOGIN_PATTERN.fullmatch(clean):
        raise ValidationError("a login has 1–64 characters: letters, digits and . _ @ - / 登录名为 1–64 个字符："
                              "字母、数字及 . _ @ -", field="login")  # fmt: skip
    return clean


def create(meta: MetaStore, login: str, name: str, password: str) -> Account:
    """A new account (no role yet); ``account_exists`` when the login is taken."""
    login = normalise_login(login)
    check_policy(password, login)
    meta.ensure_schema()
    try:
        with meta.session.begin() as s:
            account = Account(login=login, name=name, password_hash=hash_password(password))
            s.add(account)
    except IntegrityError as exc:
        raise UserloopError(f"an account with login {login!r} exists already / 登录名已存在",
                            code="account_exists", field="login") from exc  # fmt: skip
    return account


def find(meta: MetaStore, login: str) -> Account | None:
    meta.ensure_schema()
    with meta.session() as s:
        return s.scalar(select(Account).where(Account.login == login.strip().lower()))


def get(meta: MetaStore, login: str) -> Account:
    """The account ``login`` (NotFoundError when there is none)."""
    account = find(meta, login)
    if account is None:
        raise NotFoundError(f"no account with login {login!r} / 账号不存在")
    return account


def by_id(meta: MetaStore, account_id: int) -> Account | None:
    with meta.session() as s:
        return s.get(Account, account_id)


def every(meta: MetaStore) -> list[Account]:
    meta.ensure_schema()
    with meta.session() as s:
        return list(s.scalars(select(Account).order_by(Account.id)))


def holdings(meta: MetaStore, account_id: int) -> Holdings:
    """The roles and grants of ``account_id`` per project id."""
    with meta.session() as s:
        rows = s.scalars(select(AccountRole).where(AccountRole.account_id == account_id))
        roles = {r.project_id: r.role for r in rows}
        grants: dict[int | None, set[str]] = {}
        for g in s.scalars(select(AccountGrant).where(AccountGrant.account_id == account_id)):
            grants.setdefault(g.project_id, set()).add(g.grant)
    return Holdings(roles, {p: frozenset(g) for p, g in grants.items()})


def set_role(meta: MetaStore, account_id: int, project_id: int | None, role: str | None) -> None:
    """Give ``account_id`` the role ``role`` in ``project_id`` (None: every project), replacing the one it had
    there; ``role`` None takes it away."""
    if role is not None and role not in ACCOUNT_ROLES:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(ACCOUNT_ROLES)}", field="role")
    with meta.session.begin() as s:
        held = s.scalar(_role_query(account_id, project_id))
        if held is not None and role is None:
            s.delete(held)
        elif held is not None and role is not None:
            held.role = role
        elif role is not None:
            s.add(AccountRole(account_id=account_id, project_id=project_id, role=role))


def _role_query(account_id: int, project_id: int | None) -> Select[AccountRole]:
    where = AccountRole.project_id.is_(None) if project_id is None else AccountRole.project_id == project_id
    return select(AccountRole).where(AccountRole.account_id == account_id, where)


def set_grant(meta: MetaStore, account_id: int, project_id: int | None, grant: str, held: bool) -> None:
    """Give (``held``) or take away the grant ``grant`` of ``account_id`` in ``project_id`` (None: every one)."""
    where = AccountGrant.project_id.is_(None) if project_id is None else AccountGrant.project_id == project_id
    with meta.session.begin() as s:
        row = s.scalar(select(AccountGrant).where(AccountGrant.account_id == account_id, AccountGrant.grant == grant,
                                                  where))  # fmt: skip
        if row is None and held:
            s.add(AccountGrant(account_id=account_id, project_id=project_id, grant=grant))
        elif row is not None and not held:
            s.delete(row)


def workspace_admins(meta: MetaStore) -> list[int]:
    """The ids of the active accounts that are admin over every project."""
    with meta.session() as s:
        query = (
            select(Account.id)
            .join(AccountRole, AccountRole.account_id == Account.id)
            .where(AccountRole.project_id.is_(None), AccountRole.role == "admin", Account.disabled_at.is_(None))
        )
        return list(s.scalars(query))


def set_disabled(meta: MetaStore, account_id: int, disabled: bool, now: datetime | None = None) -> None:
    """Disable (revoking every session) or enable ``account_id``."""
    now = now or utcnow()
    with meta.session.begin() as s:
        account = s.get(Account, account_id)
        if account is None:
            raise NotFoundError(f"no account {account_id}")
        account.disabled_at = (account.disabled_at or now) if disabled else None
        if not disabled:
            account.failed_count, account.locked_until = 0, None
    if disabled:
        revoke_sessions(meta, account_id, now=now)


def set_password(meta: MetaStore, account_id: int, password: str, *, keep: str | None = None) -> None:
    """Set the password of ``account_id`` and revoke its sessions, except the one whose digest is ``keep``."""
    account = by_id(meta, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    check_policy(password, account.login)
    now = utcnow()
    with meta.session.begin() as s:
        s.execute(update(Account).where(Account.id == account_id)
                  .values(password_hash=hash_password(password), password_changed_at=now, failed_count=0,
                          locked_until=None))  # fmt: skip
    revoke_sessions(meta, account_id, now=now, keep=keep)


# signing in -------------------------------------------------------------------------------------------------------
def check_password(meta: MetaStore, login: str, password: str, now: datetime) -> Account | None:
    """The account ``login`` if ``password`` is its password, else None (an unknown login costs the same time).

    A locked account raises :class:`AccountLockedError` without its password being tried; the
    :data:`MAX_FAILURES`-th failure in a row locks it for :data:`LOCK_FOR` (raising :class:`AccountLockedError`); a
    success resets the count."""
    account = find(meta, login) if LOGIN_PATTERN.fullmatch(login.strip().lower()) else None
    if account is None:
        verify_password(password, dummy_hash())
        return None
    if account.locked_until is not None and account.locked_until > now:
        raise AccountLockedError(account.locked_until, now)
    if verify_password(password, account.password_hash):
        with meta.session.begin() as s:
            s.execute(update(Account).where(Account.id == account.id).values(failed_count=0, locked_until=None))
        return account
    _failed(meta, account.id, now)
    return None


def _failed(meta: MetaStore, account_id: int, now: datetime) -> None:
    with meta.session.begin() as s:
        account = s.get(Account, account_id, with_for_update=True)
        assert account is not None
        account.failed_count += 1
        locked = account.failed_count >= MAX_FAILURES
        if locked:
            account.failed_count, account.locked_until = 0, now + LOCK_FOR
    if locked:
        raise AccountLockedError(now + LOCK_FOR, now)


# sessions ---------------------------------------------------------------------------------------------------------
def open_session(meta: MetaStore, account_id: int, now: datetime, lifetime: timedelta) -> NewSession:
    """A new session of ``account_id`` (random 32-byte tokens), expiring ``lifetime`` after ``now``."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with meta.session.begin() as s:
        row = SessionRow(digest=ids.digest(token), account_id=account_id, csrf_digest=ids.digest(csrf),
                         created_at=now, last_seen_at=now, expires_at=now + lifetime)  # fmt: skip
        s.add(row)
    return NewSession(token, csrf, row)


def live_session(meta: MetaStore, digest: str, now: datetime, idle: timedelta) -> tuple[SessionRow, Account] | None:
    """The session whose token has ``digest`` and its account, while the session lives: not revoked, not past its
    expiry nor idle for ``idle``, its account enabled. Its ``last_seen_at`` moves to ``now`` (once a minute)."""
    with meta.session.begin() as s:
        row = s.scalar(select(SessionRow).where(SessionRow.digest == digest))
        if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
            return None
        account = s.get(Account, row.account_id)
        if account is None or account.disabled_at is not None:
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
    return row, account


def revoke_session(meta: MetaStore, digest: str, now: datetime | None = None) -> None:
    with meta.session.begin() as s:
        s.execute(update(SessionRow).where(SessionRow.digest == digest, SessionRow.revoked_at.is_(None))
                  .values(revoked_at=now or utcnow()))  # fmt: skip


def revoke_sessions(meta: MetaStore, account_id: int, *, now: datetime | None = None, keep: str | None = None) -> None:
    """Revoke every live session of ``account_id`` except the one whose digest is ``keep``."""
    query = update(SessionRow).where(SessionRow.account_id == account_id, SessionRow.revoked_at.is_(None))
    if keep is not None:
        query = query.where(SessionRow.digest != keep)
    with meta.session.begin() as s:
        s.execute(query.values(revoked_at=now or utcnow()))
