"""Operational metadata in a relational database (SQLite by default, PostgreSQL in production).

Projects and their keys live here. A key belongs to one project, or (``project_id`` NULL, API tokens only) to the
whole workspace, and holds rights: its *roles* (``write``: the collector; ``read``: analyses, SQL, listings;
``analyse``: saved analyses, tags, segments, models; ``operate``: journeys, templates, benefits; ``admin``: keys,
projects, settings, channels, programmes), stored on the key, plus *grants* (``pii``), stored in ``key_grants``.
What a right implies (``admin`` ⇒ ``analyse``, ``operate``) is :func:`userloop.core.rights.implied`. Operators'
accounts and their sessions are in :mod:`userloop.store.accounts`. Later issues add analyses, tags, segments,
journeys, runs and audit.

The schema is created with ``create_all``; :func:`upgrade_meta_schema` brings a database made by an earlier
version up to date in place (Alembic revisions: new tables, new columns, roles for keys made before roles existed).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from userloop.core import ids
from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError

#: The rights a key can be granted, with what each allows. An admin token sees personal data (phone numbers,
#: emails) masked unless it holds ``pii``.
KNOWN_GRANTS: dict[str, str] = {
    "pii": "see personal data (phone numbers, email addresses) unmasked in the user 360 view and in exports",
}
#: The roles a key holds, with what each allows; a key holds at least one.
ROLES: dict[str, str] = {
    "write": "send events (collector, native batch API, file imports)",
    "read": "run analyses and SQL, list data, definitions and settings",
    "analyse": "save analyses, define tags and segments, run models",
    "operate": "run journeys, edit templates and benefits, run member passes (implies analyse)",
    "admin": "manage keys, projects, channels, programmes and accounts (implies analyse and operate)",
}
#: Every right a key can hold: its roles and its grants.
RIGHTS: tuple[str, ...] = (*ROLES, *KNOWN_GRANTS)
#: The roles of an API token made without naming them, and of tokens made before roles existed.
ADMIN_ROLES: tuple[str, ...] = ("read", "analyse", "operate", "write", "admin")


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    max_future_seconds: Mapped[int] = mapped_column(default=3600)
    max_past_days: Mapped[int] = mapped_column(default=3650)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A write key (collector) or an API token (management API, kind ``admin``); only its digest is stored.

    ``project_id`` NULL marks a workspace-level API token (every project). ``roles`` are space-separated
    (see :data:`ROLES`); ``service`` marks the running server's own CLI session token.
    """

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # "write" | "admin"
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    roles: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    service: Mapped[bool] = mapped_column(default=False, server_default="0")

    @property
    def role_set(self) -> frozenset[str]:
        """The key's roles; a write key is always just ``write``."""
        if self.kind == "write":
            return frozenset({"write"})
        return frozenset((self.roles or "").split())

    @property
    def workspace_level(self) -> bool:
        return self.project_id is None


class KeyGrant(Base):
    """A right one admin token holds beyond its kind (one of :data:`KNOWN_GRANTS`)."""

    __tablename__ = "key_grants"
    __table_args__ = (UniqueConstraint("key_id", "grant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    grant: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetaStore:
    """Access to the metadata database. ``url`` is a SQLAlchemy URL (``sqlite:///…`` or ``postgresql://…``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.session: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_ready = False
        self.ensure_schema()  # on open: a workspace made by an earlier version is upgraded before any use

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)
        self.ensure_schema()

    def ensure_schema(self) -> None:
        """Upgrade the database in place, once per store (a workspace made by an earlier version lacks tables,
        columns and key roles; opening a workspace never calls ``create_all``)."""
        if not self._schema_ready:
            upgrade_meta_schema(self.engine)
            self._schema_ready = True

    def dispose(self) -> None:
        self.engine.dispose()

    # projects -------------------------------------------------------------------------------------------
    def add_project(self, name: str, timezone: str) -> Project:
        with self.session.begin() as s:
            project = Project(name=name, timezone=timezone)
            s.add(project)
        return project

    def project(self, name: str) -> Project | None:
        with self.session() as s:
            return s.scalar(select(Project).where(Project.name == name))

    def projects(self) -> list[Project]:
        with self.session() as s:
            return list(s.scalars(select(Project).order_by(Project.id)))

    # keys -----------------------------------------------------------------------------------------------
    def add_key(
        self,
        kind: str,
        name: str,
        project_id: int | None,
        *,
        roles: tuple[str, ...] | list[str] | None = None,
        service: bool = False,
    ) -> tuple[ApiKey, str]:
        """Create a key; returns the stored row and the secret, which is never stored or shown again.

        A write key belongs to a project and holds ``write`` only. An API token (``admin``) holds ``roles``
        (default: read, write and admin) for ``project_id``, or for every project when it is None.
        """
        if kind == "write" and project_id is None:
            raise ValidationError("a write key belongs to a project; name one")
        chosen = ("write",) if kind == "write" else tuple(roles if roles is not None else ADMIN_ROLES)
        _check_roles(chosen)
        self.ensure_schema()
        secret = ids.new_secret(ids.WRITE_KEY_PREFIX if kind == "write" else ids.ADMIN_TOKEN_PREFIX)
        with self.session.begin() as s:
            key = ApiKey(
                project_id=project_id,
                kind=kind,
                name=name,
                prefix=ids.display_prefix(secret),
                digest=ids.digest(secret),
                roles=" ".join(r for r in ROLES if r in chosen),
                service=service,
            )
            s.add(key)
        return key, secret

    def key(self, key_id: int) -> ApiKey | None:
        self.ensure_schema()
        with self.session() as s:
            return s.get(ApiKey, key_id)

    def keys(self, project_id: int | None = None) -> list[ApiKey]:
        self.ensure_schema()
        with self.session() as s:
            query = select(ApiKey).order_by(ApiKey.id)
            if project_id is not None:
                query = query.where(ApiKey.project_id == project_id)
            return list(s.scalars(query))

    def authenticate(self, secret: str, kind: str) -> ApiKey | None:
        """The live key of ``kind`` whose secret this is, or ``None``."""
        self.ensure_schema()
        with self.session() as s:
            key = s.scalar(select(ApiKey).where(ApiKey.digest == ids.digest(secret), ApiKey.kind == kind))
        if key is None or key.revoked_at is not None or not ids.matches(secret, key.digest):
            return None
        return key

    def revoke_key(self, key_id: int) -> ApiKey | None:
        self.ensure_schema()
        with self.session.begin() as s:
            key = s.get(ApiKey, key_id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = utcnow()
        return key

    def rights(self, key: ApiKey) -> frozenset[str]:
        """Everything ``key`` may do: its roles, what they imply, and its grants."""
        from userloop.core.rights import implied

        return implied(key.role_set) | frozenset(self.grants(key.id))

    def workspace_admins(self) -> list[ApiKey]:
        """Live workspace-level API tokens holding ``admin``, not counting the server's own session token."""
        return [
            k
            for k in self.keys(None)
            if k.kind == "admin" and k.revoked_at is None and k.workspace_level and not k.service
            and "admin" in k.role_set
        ]  # fmt: skip

    # grants ---------------------------------------------------------------------------------------------
    def grant(self, key_id: int, grant: str) -> None:
        """Give the admin token ``key_id`` the right ``grant``; granting a right it holds changes nothing."""
        _check_grant(grant)
        self.ensure_schema()
        with self.session.begin() as s:
            key = s.get(ApiKey, key_id)
            if key is None:
                raise NotFoundError(f"no key {key_id}")
            if key.kind != "admin" or key.revoked_at is not None:
                why = "is revoked" if key.revoked_at is not None else f"is a {key.kind} key"
                raise ValidationError(f"only live admin tokens hold grants; key {key_id} {why}")
            held = s.scalar(select(KeyGrant).where(KeyGrant.key_id == key_id, KeyGrant.grant == grant))
            if held is None:
                s.add(KeyGrant(key_id=key_id, grant=grant))

    def revoke_grant(self, key_id: int, grant: str) -> bool:
        """Take ``grant`` away from ``key_id``; False when the key did not hold it."""
        _check_grant(grant)
        self.ensure_schema()
        with self.session.begin() as s:
            held = s.scalar(select(KeyGrant).where(KeyGrant.key_id == key_id, KeyGrant.grant == grant))
            if held is None:
                return False
            s.delete(held)
        return True

    def grants(self, key_id: int) -> set[str]:
        """The grants ``key_id`` holds beyond its roles (empty for a key without any, or an unknown key)."""
        self.ensure_schema()
        with self.session() as s:
            return set(s.scalars(select(KeyGrant.grant).where(KeyGrant.key_id == key_id)))


def upgrade_meta_schema(engine: Engine) -> None:
    """Bring a metadata database made by an earlier version up to date, in place; safe to run again.

    The one migration step of the metadata DB: the Alembic revisions of :mod:`userloop.store.migrations` (the
    baseline adopts a database made before migrations; ``0002_key_rights`` adds key roles, the service flag and
    the collector burst, and gives keys made before roles existed the roles they had in effect then — write keys
    ``write``, API tokens read, write and admin of every project), then any table of a model newer than them.
    """
    from userloop.store.migrations import upgrade

    upgrade(engine)
    Base.metadata.create_all(engine)


def _check_roles(roles: tuple[str, ...]) -> None:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        known = ", ".join(f"{name} ({what})" for name, what in ROLES.items())
        raise ValidationError(f"unknown or missing roles {unknown}; a key holds one or more of: {known}")


def _check_grant(grant: str) -> None:
    if grant not in KNOWN_GRANTS:
        known = ", ".join(f"{name} ({what})" for name, what in KNOWN_GRANTS.items())
        raise ValidationError(f"unknown grant {grant!r}; known grants: {known}")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # in WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives the process being killed
    # (what the journeys' outbox relies on), and only a power cut can lose the last few
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
