"""The engagement mechanics' tables in the metadata database (SQLite embedded, PostgreSQL at scale).

- ``member_check_ins``: one row per member per local day of the programme's zone (the unique key makes a check-in
  idempotent and two racing ones meet on it), with the streak that day reached.
- ``member_task_progress``: how many counted events a member has for a task in one period, and how many times the
  task was completed in it (never more than the task's limit).
- ``member_task_events``: the events already counted for a task, by event id, so an event read twice (a re-read
  window, a crash before the mark moved) counts once.
- ``member_task_marks``: how far in the event store (load time) a programme's tasks have read.
- ``member_rewards``: every reward a check-in streak or a task completion earned, keyed by the request id the
  ledger's earn and the benefit grant take, written in the transaction of its cause and settled after (an outbox:
  a crash between the two leaves a row that the next settle finishes, never a lost or doubled reward).
- ``member_report_cursors`` and ``member_report_marks``: which source rows (ledger entries, level history, check-ins,
  lots expiring soon) :mod:`userloop.membership.report` has written as events. Marks live here, not as flags on the
  other modules' tables, so those stay append-only.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base

#: A 64-bit id that is still SQLite's ROWID alias (an INTEGER PRIMARY KEY), so it autoincrements there too.
_ID = BigInteger().with_variant(Integer, "sqlite")
_UNSETTLED = text("settled_at IS NULL")


class CheckInRow(Base):
    """A member's check-in on one local day; ``streak`` counts the consecutive local days ending with it."""

    __tablename__ = "member_check_ins"
    __table_args__ = (
        UniqueConstraint("project_id", "programme_id", "person", "day", name="uq_member_check_ins_day"),
        Index("ix_member_check_ins_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    programme_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column()
    streak: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskProgressRow(Base):
    """A member's progress on one task in one period (``period``: the period's first local day, ``0001-01-01``
    for a task without periods)."""

    __tablename__ = "member_task_progress"

    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    person: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskEventRow(Base):
    """An event counted for a task (the idempotency of progress); pruned once older than any re-read."""

    __tablename__ = "member_task_events"
    __table_args__ = (Index("ix_member_task_events_counted", "counted_at"),)

    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    counted_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskMarkRow(Base):
    """How far a programme's tasks have read the event store: the events' load time (epoch ms), and the last event
    id read at that time."""

    __tablename__ = "member_task_marks"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    programme_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_ms: Mapped[int] = mapped_column(BigInteger)
    after_id: Mapped[str] = mapped_column(Text, default="")


class RewardRow(Base):
    """A reward earned by a check-in streak or a task completion. ``key`` is the ledger request id (and, hashed,
    the benefit grant key); ``settled_at`` is set once the points are booked and the benefit granted."""

    __tablename__ = "member_rewards"
    __table_args__ = (
        Index("ix_member_rewards_unsettled", "project_id", "created_at", sqlite_where=_UNSETTLED,
              postgresql_where=_UNSETTLED),
        Index("ix_member_rewards_member", "project_id", "programme_id", "person"),
    )  # fmt: skip

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    programme_id: Mapped[int] = mapped_column(BigInteger)
    person: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))  # check_in | task
    wallet: Mapped[str] = mapped_column(String(40))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    benefits: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of the journeys' benefit names
    reason: Mapped[str] = mapped_column(String(200))
    earned_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)


class ReportCursorRow(Base):
    """Every row of ``source`` with an id up to ``low`` has been written as an event."""

    __tablename__ = "member_report_cursors"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(24), primary_key=True)
    low: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportMarkRow(Base):
    """A row of ``source`` above its cursor already written as an event (a smaller id may commit after a larger
    one on PostgreSQL, so the cursor moves only over rows marked long enough ago and the marks cover the rest).
    ``until``: when the mark can go (a lot's expiry, for the "expiring soon" marks)."""

    __tablename__ = "member_report_marks"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(24), primary_key=True)
    row_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column()
    until: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


#: The engagement tables, for ``create_all(tables=…)``.
TABLES = tuple(
    t.__table__
    for t in (CheckInRow, TaskProgressRow, TaskEventRow, TaskMarkRow, RewardRow, ReportCursorRow, ReportMarkRow)
)
