"""Membership facts as events in the events table, exactly once, so segments, analyses and journeys use them.

What the member system records in the metadata database becomes events of the person (DOMAIN §9, issue #16 §3):

- ledger entries → ``$points_earned``, ``$points_spent``, ``$points_expired``, ``$points_reversed``,
  ``$points_adjusted`` (``points``: the size, ``change``: signed as booked, ``balance``: spendable after it);
- members → ``$member_joined``; level history → ``$member_level_up`` / ``$member_level_down`` (with the level's
  name, the one before, and why);
- check-ins → ``$checked_in`` (the person's own act: active, so it counts for DAU and retention);
- lots expiring within ``expiring_days`` (7 by default) → ``$points_expiring`` once per lot, with the points that
  remain and ``expires_at``, dated when the lot entered the window: "points expire in 7 days" → a reminder journey.

All but ``$checked_in`` are passive (:data:`userloop.schema.activity.DEFAULT_PASSIVE_EVENTS`): done to the person.

Exactly once, as :mod:`userloop.engage.report` does it: each event's id and time derive from its source row, so a
batch loaded again after a crash (between the load and the marks) is dropped by the loader's de-duplication; the
rows are marked only after the load commits. The marks are this module's own (``member_report_cursors`` and
``member_report_marks``), so the ledger and level history stay append-only. On PostgreSQL a row with a smaller id
can commit after one with a larger id; a source's cursor therefore moves only over rows all marked, up to the last
one marked at least :data:`SETTLE` ago: an id below it that is still invisible would belong to a transaction open
that long, which no write of the member system holds. Rows above the cursor are read again until marked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Row, Table, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from userloop.core.clock import utcnow
from userloop.ingest.api import distinct_ids, load_table
from userloop.membership.engagement_tables import CheckInRow, ReportCursorRow, ReportMarkRow
from userloop.membership.ledger_tables import PointsEntry, PointsLot
from userloop.membership.members import LevelChange, MemberRow, ProgrammeRow, ProgrammeVersion
from userloop.membership.programme import Programme
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

#: The ``source`` the loader records for these events.
SOURCE = "membership"
#: Days before a lot lapses that ``$points_expiring`` is written.
EXPIRING_DAYS = 7
#: How long after a row was first marked the cursor may pass it (see the module's note).
SETTLE = timedelta(minutes=10)
#: ledger entry kind → event
ENTRY_EVENTS = {
    "earn": "$points_earned",
    "spend": "$points_spent",
    "expire": "$points_expired",
    "reverse": "$points_reversed",
    "adjust": "$points_adjusted",
}
#: Every property these events carry, with its type (fixed, so a batch never guesses a type from its values).
PROPERTY_TYPES: dict[str, pa.DataType] = {
    "programme_id": pa.int64(),
    "wallet": pa.string(),
    "points": pa.int64(),
    "change": pa.int64(),
    "balance": pa.int64(),
    "pending_balance": pa.int64(),
    "reason": pa.string(),
    "ref": pa.string(),
    "transfer_id": pa.int64(),
    "level": pa.string(),
    "previous_level": pa.string(),
    "from_level": pa.int64(),
    "to_level": pa.int64(),
    "streak": pa.int64(),
    "check_in_day": pa.string(),
    "expires_at": pa.timestamp("ms"),
    "expiring_days": pa.int64(),
}


@dataclass(frozen=True)
class Fact:
    """One event to write: its name, deterministic id and time, whose it is, and its properties."""

    event: str
    event_id: str
    person: int
    time: datetime
    props: dict[str, Any]


@dataclass
class Reported:
    """What one :func:`report` did: the facts it offered by event name, the events the loader wrote and those it
    found written already (a batch again after a crash), and facts of people the event store does not know."""

    events: Counter[str] = field(default_factory=Counter)
    written: int = 0
    duplicates: int = 0
    unknown_people: int = 0


class _Levels:
    """Level names by programme and index, from each programme's current version (read once per pass)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.names: dict[int, list[str]] = {}

    def name(self, programme_id: int, index: int) -> str | None:
        if programme_id not in self.names:
            definition = self.conn.execute(
                select(ProgrammeVersion.definition)
                .join(ProgrammeRow, ProgrammeRow.id == ProgrammeVersion.programme_id)
                .where(ProgrammeRow.id == programme_id, ProgrammeVersion.version == ProgrammeRow.version)
            ).scalar()
            levels = Programme.model_validate_json(definition).levels if definition else []
            self.names[programme_id] = [level.name for level in levels]
        names = self.names[programme_id]
        return names[index] if 0 <= index < len(names) else None


@dataclass(frozen=True)
class _Source:
    """Rows of one table read in id order: which are the project's, and the fact each becomes."""

    name: str
    table: Table
    scope: Callable[[int], ColumnElement[bool]]
    fact: Callable[[Row[Any], _Levels], Fact]


def _entry(r: Row[Any], _levels: _Levels) -> Fact:
    props = {"programme_id": r.programme_id, "wallet": r.wallet, "points": abs(r.amount), "change": r.amount,
             "balance": r.spendable_after, "pending_balance": r.pending_after, "reason": r.reason, "ref": r.ref,
             "transfer_id": r.transfer_id}  # fmt: skip
    return Fact(ENTRY_EVENTS[r.kind], f"membership:points:{r.id}", r.person, r.occurred_at, props)


def _joined(r: Row[Any], _levels: _Levels) -> Fact:
    return Fact("$member_joined", f"membership:joined:{r.id}", r.person, r.joined_at, {"programme_id": r.programme_id})


def _level(r: Row[Any], levels: _Levels) -> Fact:
    event = "$member_level_up" if r.to_level > r.from_level else "$member_level_down"
    props = {"programme_id": r.programme_id, "level": levels.name(r.programme_id, r.to_level),
             "previous_level": levels.name(r.programme_id, r.from_level), "from_level": r.from_level,
             "to_level": r.to_level, "reason": r.reason}  # fmt: skip
    return Fact(event, f"membership:level:{r.id}", r.person, r.at, props)


def _check_in(r: Row[Any], _levels: _Levels) -> Fact:
    props = {"programme_id": r.programme_id, "streak": r.streak, "check_in_day": r.day.isoformat()}
    return Fact("$checked_in", f"membership:check_in:{r.id}", r.person, r.at, props)


def _programmes_of(project_id: int) -> Any:
    return select(ProgrammeRow.id).where(ProgrammeRow.project_id == project_id).scalar_subquery()


_ENTRIES: Table = PointsEntry.__table__  # type: ignore[assignment]
_MEMBERS: Table = MemberRow.__table__  # type: ignore[assignment]
_LEVELS: Table = LevelChange.__table__  # type: ignore[assignment]
_CHECK_INS: Table = CheckInRow.__table__  # type: ignore[assignment]
_LOTS: Table = PointsLot.__table__  # type: ignore[assignment]
_MARKS: Table = ReportMarkRow.__table__  # type: ignore[assignment]
_CURSORS: Table = ReportCursorRow.__table__  # type: ignore[assignment]

SOURCES: tuple[_Source, ...] = (
    _Source("points", _ENTRIES, lambda p: _ENTRIES.c.project_id == p, _entry),
    _Source("joined", _MEMBERS, lambda p: _MEMBERS.c.project_id == p, _joined),
    _Source("levels", _LEVELS, lambda p: _LEVELS.c.programme_id.in_(_programmes_of(p)), _level),
    _Source("check_ins", _CHECK_INS, lambda p: _CHECK_INS.c.project_id == p, _check_in),
)


def report(
    meta: MetaStore,
    project: Project,
    store: ProjectStore,
    *,
    now: datetime | None = None,
    expiring_days: int = EXPIRING_DAYS,
    limit: int = 10_000,
) -> Reported:
    """Write one batch (up to ``limit`` rows per source) of the project's membership facts as events, then mark
    them; run it again until it offers nothing to drain a backlog. Safe to repeat and to interrupt."""
    now = now or utcnow()
    out = Reported()
    for source in SOURCES:
        with meta.engine.connect() as conn:
            rows = _unreported(conn, project.id, source, limit)
            levels = _Levels(conn)
            facts = [source.fact(r, levels) for r in rows]
        _load(store, facts, out)
        with meta.engine.begin() as conn:
            _mark(conn, project.id, source.name, [(int(r.id), None) for r in rows], now)
            _advance(conn, project.id, source, now - SETTLE)
    lots = _expiring(meta, project.id, now, expiring_days, limit)
    _load(store, [_expiring_fact(r, expiring_days) for r in lots], out)
    with meta.engine.begin() as conn:
        name = f"expiring:{expiring_days}"
        _mark(conn, project.id, name, [(int(r.id), r.expires_at) for r in lots], now)
        conn.execute(delete(_MARKS).where(_MARKS.c.project_id == project.id, _MARKS.c.source == name,
                                          _MARKS.c.until <= now))  # fmt: skip
    return out


def _unreported(conn: Connection, project_id: int, source: _Source, limit: int) -> Sequence[Row[Any]]:
    """The source's rows above its cursor without a mark, oldest first."""
    t, m = source.table, _MARKS.c
    low = _low(conn, project_id, source.name)
    marked = exists().where(m.project_id == project_id, m.source == source.name, m.row_id == t.c.id)
    stmt = select(t).where(source.scope(project_id), t.c.id > low, ~marked).order_by(t.c.id).limit(limit)
    return conn.execute(stmt).all()


def _low(conn: Connection, project_id: int, source: str) -> int:
    c = _CURSORS.c
    found = conn.execute(select(c.low).where(c.project_id == project_id, c.source == source)).scalar()
    return int(found or 0)


def _mark(
    conn: Connection, project_id: int, source: str, rows: list[tuple[int, datetime | None]], now: datetime
) -> None:
    """Mark rows of ``source`` written at ``now`` (``rows``: the id, and when the mark may go)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(_MARKS).on_conflict_do_nothing(index_elements=["project_id", "source", "row_id"]),
        [{"project_id": project_id, "source": source, "row_id": i, "marked_at": now, "until": until}
         for i, until in rows],
    )  # fmt: skip


def _advance(conn: Connection, project_id: int, source: _Source, settled: datetime) -> None:
    """Move the cursor over the rows all marked, up to the last one marked by ``settled``; drop their marks."""
    t, m = source.table, _MARKS.c
    low = _low(conn, project_id, source.name)
    mine = (m.project_id == project_id, m.source == source.name)
    marked = exists().where(*mine, m.row_id == t.c.id)
    gap = conn.execute(select(func.min(t.c.id)).where(source.scope(project_id), t.c.id > low, ~marked)).scalar()
    bound = conn.execute(
        select(func.max(m.row_id)).where(*mine, m.marked_at <= settled, *(() if gap is None else (m.row_id < gap,)))
    ).scalar()
    if bound is None or bound <= low:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_CURSORS).values(project_id=project_id, source=source.name, low=bound)
    conn.execute(stmt.on_conflict_do_update(index_elements=["project_id", "source"], set_={"low": bound}))
    conn.execute(delete(_MARKS).where(*mine, m.row_id <= bound))


def _expiring(meta: MetaStore, project_id: int, now: datetime, days: int, limit: int) -> Sequence[Row[Any]]:
    """Live lots with points left that lapse within ``days`` of ``now`` and have not been reported."""
    t, m = _LOTS.c, _MARKS.c
    marked = exists().where(m.project_id == project_id, m.source == f"expiring:{days}", m.row_id == t.id)
    stmt = (
        select(_LOTS)
        .where(t.project_id == project_id, t.expires_at > now, t.expires_at <= now + timedelta(days=days))
        .where(t.remaining > 0, t.expired.is_(False), t.reversed.is_(False), ~marked)
        .order_by(t.expires_at, t.id)
        .limit(limit)
    )
    with meta.engine.connect() as conn:
        return conn.execute(stmt).all()


def _expiring_fact(r: Row[Any], days: int) -> Fact:
    """``$points_expiring`` of a lot, dated when it entered the window (never before it was earned), so writing
    it again after a crash gives the same event."""
    at = max(r.earned_at, r.expires_at - timedelta(days=days))
    props = {"programme_id": r.programme_id, "wallet": r.wallet, "points": r.remaining, "expires_at": r.expires_at,
             "expiring_days": days}  # fmt: skip
    return Fact("$points_expiring", f"membership:expiring:{days}:{r.id}", r.person, at, props)


def _load(store: ProjectStore, facts: list[Fact], out: Reported) -> None:
    """Write the facts of people the store knows as events (one load, one transaction)."""
    if not facts:
        return
    ids = distinct_ids(store, sorted({f.person for f in facts}))
    known = [f for f in facts if f.person in ids]
    out.unknown_people += len(facts) - len(known)
    if known:
        loaded = load_table(store, events_table(known, ids), source=SOURCE)
        out.events.update(f.event for f in known)
        out.written += loaded.accepted
        out.duplicates += loaded.duplicates


def events_table(facts: Iterable[Fact], ids: dict[int, str]) -> pa.Table:
    """The facts as the loader's Arrow records: canonical columns, then the properties they carry, typed by
    :data:`PROPERTY_TYPES`."""
    facts = list(facts)
    used = [p for p in PROPERTY_TYPES if any(f.props.get(p) is not None for f in facts)]
    columns: dict[str, pa.Array] = {
        "type": pa.array(["track"] * len(facts), pa.string()),
        "event": pa.array([f.event for f in facts], pa.string()),
        "distinct_id": pa.array([ids[f.person] for f in facts], pa.string()),
        "time": pa.array([_ms(f.time) for f in facts], pa.int64()),
        "event_id": pa.array([f.event_id for f in facts], pa.string()),
    }
    for p in used:
        columns[p] = pa.array([f.props.get(p) for f in facts], PROPERTY_TYPES[p])
    return pa.table(columns)


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)
