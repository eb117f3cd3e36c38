"""Members' levels from their qualifying growth value, for one member or a whole programme at once.

The qualifying growth is the sum of a member's growth entries inside the programme's window at ``now``
(entries after ``now`` never count): their whole life, the current calendar year in the programme's zone
(``[1 January 00:00 local, now]``), or the last N days (``(now − N days, now]``). The level it earns is the highest
whose threshold it reaches. Then, as commercial tier engines do (research §4.4: Open Loyalty's downgrade modes,
Talon.One's ``one_down``, Voucherify's grace period, Capillary's "until the period ends"):

- **upgrade** at once when the earned level is above the member's (to that level, skipping any between);
- **downgrade** when it is below, by the policy:

  - ``never``: no downgrade;
  - ``period_end``: a member whose level was reached (or last changed) in the current period keeps it; the period
    starts on 1 January local for the ``calendar_year`` and ``lifetime`` windows, N days ago for ``rolling_days``.
    Otherwise they keep the highest level earned by the current window's growth or, for ``calendar_year``, by the
    growth of the calendar year just ended (the level earned in a year holds through the next one);
  - ``one_step``: as ``period_end``, but one level down at a time (the step restarts the period);
  - ``grace``: the first evaluation that finds the growth below the level notes it (``below_since``); a later one
    at least N days after drops the member to the level earned then; reaching the level again clears the note.

Set-based: one aggregate statement over the growth entries (conditional sums per member), the decisions in numpy
over arrays of every member, and writes for the changed rows only (levels, ``below_since``, and the
``level_history`` rows that become ``$member_level_up``/``$member_level_down`` events, see
:func:`userloop.membership.members.changes_since`). :func:`evaluate` with ``members`` evaluates just those (what
the growth step does for the members who earned, so upgrades are immediate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from typing import cast as typed
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import String, Table, and_, bindparam, case, cast, func, insert, select, update

from userloop.membership.members import (
    GrowthEntry,
    LevelChange,
    MemberRow,
    SavedProgramme,
)
from userloop.membership.programme import CalendarYear, Grace, Lifetime, OneStep, PeriodEnd, Programme, RollingDays
from userloop.store.bulk import bulk_execute, driver_rows, driver_value
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore

Ints = npt.NDArray[np.int64]
Times = npt.NDArray[np.datetime64]
_NAT = np.datetime64("NaT", "us")
#: Member ids per ``IN`` list when only some members are evaluated.
_CHUNK = 5_000


@dataclass(frozen=True)
class Bounds:
    """The instants the evaluation at ``now`` compares with (naive UTC): the window's start (None: lifetime),
    the start of the previous calendar year (for ``calendar_year`` downgrades), and the current period's start."""

    window_start: datetime | None
    window_open: bool  # the start itself counts (calendar year) or not (rolling: strictly after now − N days)
    previous_start: datetime | None
    period_start: datetime


def bounds(programme: Programme, now: datetime) -> Bounds:
    window = programme.window
    year = _year_start(now, programme.timezone, 0)
    if isinstance(window, RollingDays):
        start = now - timedelta(days=window.days)
        return Bounds(start, False, None, start)
    if isinstance(window, CalendarYear):
        return Bounds(year, True, _year_start(now, programme.timezone, -1), year)
    assert isinstance(window, Lifetime)
    return Bounds(None, True, None, year)


def _year_start(now: datetime, zone: str, shift: int) -> datetime:
    local_year = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).year + shift
    return datetime(local_year, 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Plan:
    """What the evaluation decided, per member (aligned arrays): the new level, whether it changed, and the new
    ``below_since`` where only that changed (``set_below``: now; ``clear_below``: None)."""

    level: Ints
    changed: npt.NDArray[np.bool_]
    set_below: npt.NDArray[np.bool_]
    clear_below: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.str_]


def decide(
    programme: Programme,
    now: datetime,
    level: Ints,
    level_since: Times,
    below_since: Times,
    growth: Ints,
    previous: Ints,
) -> Plan:
    """The policy on arrays: each member's level, since when, below since when (NaT: not below), qualifying
    growth now, and growth of the previous calendar year (zeros unless the window is a calendar year)."""
    thresholds = np.asarray(programme.thresholds, dtype=np.int64)
    top = len(thresholds) - 1
    current = np.minimum(level, top)  # a version with fewer levels caps the old ones
    earned = np.clip(np.searchsorted(thresholds, growth, side="right") - 1, 0, top)
    new = current.copy()
    reason = np.full(len(level), "", dtype="<U10")
    up = earned > current
    new[up] = earned[up]
    reason[up] = "upgrade"
    down = earned < current
    policy = programme.downgrade
    set_below = np.zeros(len(level), dtype=bool)
    clear_below = ~np.isnat(below_since) & ~down
    if isinstance(policy, PeriodEnd | OneStep):
        b = bounds(programme, now)
        due = down & (level_since < np.datetime64(b.period_start, "us"))
        kept = np.maximum(earned, np.clip(np.searchsorted(thresholds, previous, side="right") - 1, 0, top))
        target = np.minimum(current, kept)
        if isinstance(policy, OneStep):
            target = np.maximum(target, current - 1)
        drop = due & (target < current)
        new[drop] = target[drop]
        reason[drop] = policy.kind
    elif isinstance(policy, Grace):
        noted = ~np.isnat(below_since)
        set_below = down & ~noted
        ripe = down & noted & (below_since + np.timedelta64(policy.days, "D") <= np.datetime64(now, "us"))
        new[ripe] = earned[ripe]
        reason[ripe] = "grace"
        clear_below = clear_below | ripe
    changed = new != level
    reason[changed & (reason == "")] = "version"  # the level was above the new version's top
    return Plan(new, changed, set_below & ~changed, clear_below & ~changed, reason)


@dataclass(frozen=True)
class Evaluated:
    """An evaluation's outcome: members evaluated, levels changed (up, down), grace notes written or cleared."""

    members: int
    up: int
    down: int
    noted: int


def evaluate(
    meta: MetaStore, programme: SavedProgramme, now: datetime, *, members: Sequence[int] | None = None
) -> Evaluated:
    """Evaluate the levels of every active member of ``programme`` (or of the member ids ``members``) at
    ``now``, and write what changed in one transaction."""
    definition = programme.definition
    ids, persons, level, since, below = _load(meta, programme.id, members)
    growth, previous = _growth(meta, programme.id, definition, now, ids, members is not None)
    plan = decide(definition, now, level, since, below, growth, previous)
    _write(meta, programme, now, ids, persons, level, plan)
    moved = plan.level[plan.changed] - level[plan.changed]
    return Evaluated(len(ids), int((moved > 0).sum()), int((moved < 0).sum()),
                     int(plan.set_below.sum() + plan.clear_below.sum()))  # fmt: skip


def _times(values: Sequence[str | None]) -> Times:
    """Timestamps read as text (``YYYY-MM-DD HH:MM:SS[.ffffff]``, as both databases print them), parsed by
    numpy at C speed instead of one Python datetime per row."""
    return np.array([_NAT if v is None else v.replace(" ", "T") for v in values], dtype="datetime64[us]")


def _load(meta: MetaStore, programme_id: int, only: Sequence[int] | None) -> tuple[Ints, Ints, Ints, Times, Times]:
    stmt = select(
        MemberRow.id,
        MemberRow.person,
        MemberRow.level,
        cast(MemberRow.level_since, String),
        cast(MemberRow.below_since, String),
    ).where(MemberRow.programme_id == programme_id, MemberRow.status == "active")
    rows: list[Any] = []
    with meta.engine.connect() as conn:
        if only is None:
            rows = driver_rows(conn, stmt.order_by(MemberRow.id))
        else:
            wanted = sorted(set(only))
            for i in range(0, len(wanted), _CHUNK):
                rows += driver_rows(conn, stmt.where(MemberRow.id.in_(wanted[i : i + _CHUNK])))
            rows.sort(key=lambda r: int(r[0]))
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        no_times = np.zeros(0, dtype="datetime64[us]")
        return empty, empty.copy(), empty.copy(), no_times, no_times.copy()
    ids, persons, levels, since_text, below_text = zip(*rows, strict=True)
    return (
        np.asarray(ids, dtype=np.int64),
        np.asarray(persons, dtype=np.int64),
        np.asarray(levels, dtype=np.int64),
        _times(since_text),
        _times(below_text),
    )


def _growth(
    meta: MetaStore, programme_id: int, definition: Programme, now: datetime, ids: Ints, some: bool
) -> tuple[Ints, Ints]:
    """Per member (aligned with ``ids``): growth in the window at ``now``, and in the previous calendar year."""
    b = bounds(definition, now)
    at = GrowthEntry.at
    in_window = at <= now
    if b.window_start is not None:
        in_window = and_(in_window, at >= b.window_start if b.window_open else at > b.window_start)
    columns = [func.sum(case((in_window, GrowthEntry.amount), else_=0))]
    lowest = b.window_start
    if b.previous_start is not None and b.window_start is not None:
        columns.append(func.sum(case((and_(at >= b.previous_start, at < b.window_start), GrowthEntry.amount),
                                     else_=0)))  # fmt: skip
        lowest = b.previous_start
    stmt = select(GrowthEntry.member_id, *columns).where(GrowthEntry.programme_id == programme_id, at <= now)
    if lowest is not None:
        stmt = stmt.where(at >= lowest)
    stmt = stmt.group_by(GrowthEntry.member_id)
    rows: list[Any] = []
    with meta.engine.connect() as conn:
        if not some:
            rows = driver_rows(conn, stmt)
        else:
            for i in range(0, len(ids), _CHUNK):
                chunk = [int(x) for x in ids[i : i + _CHUNK]]
                rows += driver_rows(conn, stmt.where(GrowthEntry.member_id.in_(chunk)))
    growth = np.zeros(len(ids), dtype=np.int64)
    previous = np.zeros(len(ids), dtype=np.int64)
    if rows and len(ids):
        table = np.asarray([[int(v or 0) for v in r] + [0] * (3 - len(r)) for r in rows], dtype=np.int64)
        pos = np.searchsorted(ids, table[:, 0])
        ok = (pos < len(ids)) & (ids[np.minimum(pos, len(ids) - 1)] == table[:, 0])  # members who left: not loaded
        growth[pos[ok]] = table[ok, 1]
        previous[pos[ok]] = table[ok, 2]
    return growth, previous


def _write(
    meta: MetaStore, programme: SavedProgramme, now: datetime, ids: Ints, persons: Ints, old: Ints, plan: Plan
) -> None:
    table = typed(Table, MemberRow.__table__)
    history_table = typed(Table, LevelChange.__table__)
    changed = np.flatnonzero(plan.changed)
    set_below, clear_below = np.flatnonzero(plan.set_below), np.flatnonzero(plan.clear_below)
    if not len(changed) and not len(set_below) and not len(clear_below):
        return
    with meta.engine.begin() as conn:
        at = driver_value(conn, table.c.level_since)(now)
        if len(changed):
            move = update(table).where(table.c.id == bindparam("mid"))
            bulk_execute(conn, move.values(level=bindparam("lvl"), level_since=bindparam("at"), below_since=None),
                  [{"mid": int(ids[i]), "lvl": int(plan.level[i]), "at": at} for i in changed])  # fmt: skip
            history = [
                {"programme_id": programme.id, "member_id": int(ids[i]), "person": int(persons[i]),
                 "from_level": int(old[i]), "to_level": int(plan.level[i]), "at": at, "reason": str(plan.reason[i])}
                for i in changed
            ]  # fmt: skip
            bulk_execute(conn, insert(history_table).values({k: bindparam(k) for k in history[0]}), history)
        note = update(table).where(table.c.id == bindparam("mid")).values(below_since=bindparam("below"))
        notes = [{"mid": int(ids[i]), "below": at} for i in set_below]
        notes += [{"mid": int(ids[i]), "below": None} for i in clear_below]
        if notes:
            bulk_execute(conn, note, notes)


def standing(meta: MetaStore, programme: SavedProgramme, member_id: int, now: datetime) -> int:
    """One member's qualifying growth at ``now`` (what their progress to the next level is measured with)."""
    growth, _ = _growth(meta, programme.id, programme.definition, now, np.asarray([member_id], dtype=np.int64), True)
    return int(growth[0])


def credit(meta: MetaStore, store: ProjectStore, programme: SavedProgramme, now: datetime) -> Evaluated:
    """The growth of the events loaded since the last pass, then the levels of the members who earned: upgrades
    as soon as growth is credited (what a service pass runs between full evaluations)."""
    from userloop.membership import growth

    applied = growth.apply(meta, store, programme, now)
    if not applied.members:
        return Evaluated(0, 0, 0, 0)
    return evaluate(meta, programme, now, members=sorted(applied.members))
