"""Programmes and their members in the metadata database (SQLite embedded, PostgreSQL at scale).

- ``programmes``: a programme's status and current version (name unique per project), and how far its growth
  rules have read the project's events (``growth_mark_ms``/``growth_mark_id``, in load order);
- ``programme_versions``: the immutable definitions (JSON of :class:`~userloop.membership.programme.Programme`);
- ``members``: one row per (programme, person): level and since when, VIP period, birthday and zone, and
  ``below_since`` (when the growth first fell below the level, for a grace period);
- ``growth_entries``: append-only growth value, unique by ``key`` within a programme (a hash of the event id and
  the rule), so reading the same events again never counts twice;
- ``level_history``: every level change (from, to, when, why), the source of ``$member_level_up`` and
  ``$member_level_down`` passive events (:func:`changes_since`).

The Alembic revision for these tables is the lead's (0004); instants are naive UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.membership.programme import Programme, parse
from userloop.store.meta import Base, MetaStore, Project

_ID = BigInteger().with_variant(Integer, "sqlite")


class ProgrammeRow(Base):
    __tablename__ = "programmes"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active archived
    version: Mapped[int] = mapped_column(Integer, default=1)
    growth_mark_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_mark_id: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProgrammeVersion(Base):
    __tablename__ = "programme_versions"

    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MemberRow(Base):
    """A person in a programme. ``status``: ``active`` or ``left``; ``level`` indexes the programme's levels."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("programme_id", "person"),
        Index("ix_members_level", "programme_id", "status", "level"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programmes.id"))
    person: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8), default="active")
    joined_at: Mapped[datetime] = mapped_column(DateTime)
    level: Mapped[int] = mapped_column(Integer, default=0)
    level_since: Mapped[datetime] = mapped_column(DateTime)
    below_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    vip_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    vip_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True, default=None)
    zone: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    #: when the member last left (None while active): the diagnosis counts month ends and leaves by it
    left_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)


class GrowthEntry(Base):
    """Growth value earned (append-only). ``source``: the rule's name, or what else wrote it; ``day``: the local
    day of ``at`` in the programme's zone (the daily caps count by it)."""

    __tablename__ = "growth_entries"
    __table_args__ = (
        UniqueConstraint("programme_id", "key"),
        Index("ix_growth_entries_member", "member_id", "at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    programme_id: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime)
    day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LevelChange(Base):
    """A member's level changed: ``reason`` is ``upgrade``, ``period_end``, ``one_step``, ``grace``, ``rejoin`` (back to
    the base level), or ``version`` (a new version has fewer levels)."""

    __tablename__ = "level_history"
    __table_args__ = (Index("ix_level_history_member", "member_id", "at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    programme_id: Mapped[int] = mapped_column(Integer, index=True)
    member_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    from_level: Mapped[int] = mapped_column(Integer)
    to_level: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(String(16))


TABLES = (ProgrammeRow, ProgrammeVersion, MemberRow, GrowthEntry, LevelChange)


# programmes -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SavedProgramme:
    id: int
    project_id: int
    name: str
    status: str
    version: int
    definition: Programme
    created_at: datetime
    updated_at: datetime


class Programmes:
    """One project's programmes: create, change (a new version), read."""

    def __init__(self, meta: MetaStore, project: Project) -> None:
        self.meta = meta
        self.project = project

    def create(self, doc: Any) -> SavedProgramme:
        programme = parse(doc)
        with self.meta.session.begin() as s:
            self._free(s, programme.name)
            row = ProgrammeRow(project_id=self.project.id, name=programme.name, status="active", version=1)
            s.add(row)
            s.flush()
            s.add(ProgrammeVersion(programme_id=row.id, version=1, definition=programme.model_dump_json()))
        return self.get(row.id)

    def update(self, ref: str | int, doc: Any) -> SavedProgramme:
        """A new version; members keep their level index (a version that drops levels caps it at the top)."""
        programme = parse(doc)
        current = self.get(ref)
        with self.meta.session.begin() as s:
            row = s.get(ProgrammeRow, current.id)
            assert row is not None
            if programme.name != row.name:
                self._free(s, programme.name)
            row.version += 1
            row.name = programme.name
            row.updated_at = utcnow()
            s.add(ProgrammeVersion(programme_id=row.id, version=row.version, definition=programme.model_dump_json()))
        return self.get(current.id)

    def get(self, ref: str | int) -> SavedProgramme:
        with self.meta.session() as s:
            row = self._row(s, ref)
            version = s.get(ProgrammeVersion, (row.id, row.version))
            assert version is not None
            definition = Programme.model_validate_json(version.definition)
        return SavedProgramme(row.id, row.project_id, row.name, row.status, row.version, definition,
                              row.created_at, row.updated_at)  # fmt: skip

    def all(self) -> list[SavedProgramme]:
        with self.meta.session() as s:
            ids = s.scalars(
                select(ProgrammeRow.id).where(ProgrammeRow.project_id == self.project.id).order_by(ProgrammeRow.id)
            ).all()
        return [self.get(i) for i in ids]

    def versions(self, ref: str | int) -> list[tuple[int, datetime, Programme]]:
        """Every version of a programme, oldest first."""
        pid = self.get(ref).id
        with self.meta.session() as s:
            rows = s.scalars(
                select(ProgrammeVersion).where(ProgrammeVersion.programme_id == pid).order_by(ProgrammeVersion.version)
            ).all()
        return [(r.version, r.created_at, Programme.model_validate_json(r.definition)) for r in rows]

    def _row(self, s: Session, ref: str | int) -> ProgrammeRow:
        mine = ProgrammeRow.project_id == self.project.id
        row = s.scalar(select(ProgrammeRow).where(mine, ProgrammeRow.name == str(ref)))
        if row is None and (isinstance(ref, int) or (ref.isascii() and ref.isdigit())) and int(ref) < 2**63:
            row = s.scalar(select(ProgrammeRow).where(mine, ProgrammeRow.id == int(ref)))
        if row is None:
            raise NotFoundError(f"no programme {ref!r} in project {self.project.name!r}", code="unknown_programme")
        return row

    def _free(self, s: Session, name: str) -> None:
        taken = select(ProgrammeRow.id).where(ProgrammeRow.project_id == self.project.id, ProgrammeRow.name == name)
        if s.scalar(taken) is not None:
            raise ValidationError(f"a programme named {name!r} exists already", code="programme_exists", field="name")


# members ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    id: int
    programme_id: int
    person: int
    status: str
    joined_at: datetime
    level: int
    level_since: datetime
    below_since: datetime | None
    vip_since: datetime | None
    vip_until: datetime | None
    birthday: date | None
    zone: str | None
    left_at: datetime | None = None

    @classmethod
    def of(cls, row: MemberRow) -> Member:
        return cls(row.id, row.programme_id, row.person, row.status, row.joined_at, row.level, row.level_since,
                   row.below_since, row.vip_since, row.vip_until, row.birthday, row.zone, row.left_at)  # fmt: skip


def join(
    meta: MetaStore,
    programme: SavedProgramme,
    person: int,
    at: datetime,
    *,
    birthday: date | None = None,
    zone: str | None = None,
) -> Member:
    """Make ``person`` a member from ``at`` at the base level. Joining again while a member changes nothing but the
    birthday and zone given; a member who left starts again at the base level (the growth earned before stays)."""
    if programme.status != "active":
        raise ValidationError(f"programme {programme.name!r} is {programme.status}; nobody joins it",
                              code="programme_state")  # fmt: skip
    with meta.session.begin() as s:
        row = s.scalar(select(MemberRow).where(MemberRow.programme_id == programme.id, MemberRow.person == person))
        if row is None:
            row = MemberRow(project_id=programme.project_id, programme_id=programme.id, person=person,
                            status="active", joined_at=at, level=0, level_since=at)  # fmt: skip
            s.add(row)
        elif row.status == "left":
            if row.level != 0:
                s.add(LevelChange(programme_id=programme.id, member_id=row.id, person=person, from_level=row.level,
                                  to_level=0, at=at, reason="rejoin"))  # fmt: skip
            row.status, row.joined_at, row.level, row.level_since, row.below_since = "active", at, 0, at, None
            row.left_at = None
        if birthday is not None:
            row.birthday = birthday
        if zone is not None:
            row.zone = zone
        s.flush()
        return Member.of(row)


def leave(meta: MetaStore, programme: SavedProgramme, person: int, at: datetime | None = None) -> Member:
    """``person`` leaves at ``at`` (default now): their row stays (status ``left``, ``left_at``), nothing more is
    earned or evaluated. Leaving again keeps the first ``left_at``."""
    with meta.session.begin() as s:
        row = _member_row(s, programme, person)
        if row.status != "left":
            row.status, row.left_at = "left", at or utcnow()
        return Member.of(row)


def set_vip(meta: MetaStore, programme: SavedProgramme, person: int, since: datetime, until: datetime) -> Member:
    """The member's VIP (paid membership) period, during which growth is multiplied by the programme's
    ``vip_multiplier``."""
    if until <= since:
        raise ValidationError("a VIP period ends after it starts", code="invalid_value", field="until")
    with meta.session.begin() as s:
        row = _member_row(s, programme, person)
        row.vip_since, row.vip_until = since, until
        return Member.of(row)


def get_member(meta: MetaStore, programme: SavedProgramme, person: int) -> Member:
    with meta.session() as s:
        return Member.of(_member_row(s, programme, person))


def list_members(
    meta: MetaStore, programme: SavedProgramme, *, level: int | None = None, after: int = 0, limit: int = 100
) -> list[Member]:
    """Active members by person key, ``limit`` after the person key ``after`` (pages), of one level if given."""
    stmt = select(MemberRow).where(
        MemberRow.programme_id == programme.id, MemberRow.status == "active", MemberRow.person > after
    )
    if level is not None:
        stmt = stmt.where(MemberRow.level == level)
    with meta.session() as s:
        return [Member.of(r) for r in s.scalars(stmt.order_by(MemberRow.person).limit(limit))]


def _member_row(s: Session, programme: SavedProgramme, person: int) -> MemberRow:
    row = s.scalar(select(MemberRow).where(MemberRow.programme_id == programme.id, MemberRow.person == person))
    if row is None:
        raise NotFoundError(f"person {person} is not a member of programme {programme.name!r}", code="unknown_member")
    return row


# level changes as events -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """A level change to emit as ``$member_level_up`` or ``$member_level_down`` (:attr:`event`)."""

    id: int
    programme_id: int
    person: int
    from_level: int
    to_level: int
    at: datetime
    reason: str

    @property
    def event(self) -> str:
        return "$member_level_up" if self.to_level > self.from_level else "$member_level_down"

    def properties(self) -> dict[str, Any]:
        return {"programme_id": self.programme_id, "from_level": self.from_level, "to_level": self.to_level,
                "reason": self.reason}  # fmt: skip


def changes_since(meta: MetaStore, programme_id: int, after_id: int = 0, limit: int = 10_000) -> list[Change]:
    """Level changes of a programme with an id above ``after_id`` (the caller's mark), oldest first: what the
    emitter turns into passive events, then moves its mark to the last id."""
    stmt = (
        select(LevelChange)
        .where(LevelChange.programme_id == programme_id, LevelChange.id > after_id)
        .order_by(LevelChange.id)
        .limit(limit)
    )
    with meta.session() as s:
        return [
            Change(r.id, r.programme_id, r.person, r.from_level, r.to_level, r.at, r.reason) for r in s.scalars(stmt)
        ]


def definition_json(programme: Programme) -> dict[str, Any]:
    """The definition as JSON data, every default filled in (what the API shows)."""
    loaded: dict[str, Any] = json.loads(programme.model_dump_json())
    return loaded
