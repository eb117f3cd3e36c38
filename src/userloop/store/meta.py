"""Operational metadata in a relational database (SQLite by default, PostgreSQL in production).

Projects and their keys live here, with the rights (grants) a key holds beyond its kind; later issues add
analyses, tags, segments, journeys, runs and audit.
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
    """A write key (collector) or an admin token (management API); only its digest is stored."""

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
        self._grants_ready = False

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)
        self._grants_ready = True

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
    def add_key(self, kind: str, name: str, project_id: int | None) -> tuple[ApiKey, str]:
        """Create a key; returns the stored row and the secret, which is never stored or shown again."""
        secret = ids.new_secret(ids.WRITE_KEY_PREFIX if kind == "write" else ids.ADMIN_TOKEN_PREFIX)
        with self.session.begin() as s:
            key = ApiKey(
                project_id=project_id,
                kind=kind,
                name=name,
                prefix=ids.display_prefix(secret),
                digest=ids.digest(secret),
            )
            s.add(key)
        return key, secret

    def keys(self, project_id: int | None = None) -> list[ApiKey]:
        with self.session() as s:
            query = select(ApiKey).order_by(ApiKey.id)
            if project_id is not None:
                query = query.where(ApiKey.project_id == project_id)
            return list(s.scalars(query))

    def authenticate(self, secret: str, kind: str) -> ApiKey | None:
        """The live key of ``kind`` whose secret this is, or ``None``."""
        with self.session() as s:
            key = s.scalar(select(ApiKey).where(ApiKey.digest == ids.digest(secret), ApiKey.kind == kind))
        if key is None or key.revoked_at is not None or not ids.matches(secret, key.digest):
            return None
        return key

    def revoke_key(self, key_id: int) -> ApiKey | None:
        with self.session.begin() as s:
            key = s.get(ApiKey, key_id)
            if key is not None and key.revoked_at is None:
                key.revoked_at = utcnow()
        return key

    # grants ---------------------------------------------------------------------------------------------
    def grant(self, key_id: int, grant: str) -> None:
        """Give the admin token ``key_id`` the right ``grant``; granting a right it holds changes nothing."""
        _check_grant(grant)
        self._ensure_grants()
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
        self._ensure_grants()
        with self.session.begin() as s:
            held = s.scalar(select(KeyGrant).where(KeyGrant.key_id == key_id, KeyGrant.grant == grant))
            if held is None:
                return False
            s.delete(held)
        return True

    def grants(self, key_id: int) -> set[str]:
        """The rights ``key_id`` holds (empty for a key without any, or an unknown key)."""
        self._ensure_grants()
        with self.session() as s:
            return set(s.scalars(select(KeyGrant.grant).where(KeyGrant.key_id == key_id)))

    def _ensure_grants(self) -> None:
        """Create ``key_grants`` on first use: workspaces made before grants existed lack the table."""
        if not self._grants_ready:
            Base.metadata.create_all(self.engine, tables=[KeyGrant.__table__])  # type: ignore[list-item]
            self._grants_ready = True


def _check_grant(grant: str) -> None:
    if grant not in KNOWN_GRANTS:
        known = ", ".join(f"{name} ({what})" for name, what in KNOWN_GRANTS.items())
        raise ValidationError(f"unknown grant {grant!r}; known grants: {known}")


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
