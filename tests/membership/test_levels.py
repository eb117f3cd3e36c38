"""Levels against a brute-force reference: random growth entries, members and evaluation instants, for every
window and downgrade policy, with the instants gathered around the turn of the year in Asia/Shanghai and in UTC
(16:00 UTC on 31 December is midnight in Shanghai), so a calendar year or a period that ends a few hours early or
late shows.

The reference re-reads every entry for every member at every evaluation, in plain Python, from the rules as the
programme's docstring states them; the product aggregates in SQL and decides on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from tests.conftest import examples
from tests.store.metadb import BACKENDS, meta_url
from userloop.membership import levels
from userloop.membership.members import GrowthEntry, LevelChange, MemberRow, Programmes, SavedProgramme, join
from userloop.membership.programme import Programme
from userloop.store.meta import MetaStore, Project

#: Instants around the turns of 2025 and 2026 in Shanghai (16:00 UTC the day before) and in UTC.
EDGES = [
    datetime(2025, 1, 15),
    datetime(2025, 1, 1, 0, 0),
    datetime(2025, 6, 30, 12, 0),
    datetime(2025, 12, 31, 15, 59, 59),
    datetime(2025, 12, 31, 16, 0),
    datetime(2026, 1, 1, 0, 0),
    datetime(2026, 2, 28, 23, 0),
    datetime(2026, 12, 31, 16, 0),
]
START = datetime(2024, 12, 1)


def programme_doc(
    zone: str, window: dict[str, Any], downgrade: dict[str, Any], thresholds: list[int]
) -> dict[str, Any]:
    return {
        "name": "club",
        "title": {"zh": "俱乐部", "en": "Club"},
        "timezone": zone,
        "levels": [
            {"name": f"l{i}", "title": {"zh": f"等级{i}", "en": f"Level {i}"}, "threshold": t}
            for i, t in enumerate(thresholds)
        ],
        "window": window,
        "downgrade": downgrade,
    }


# the reference --------------------------------------------------------------------------------------------------
@dataclass
class RefMember:
    level: int
    since: datetime
    below: datetime | None = None


def _year_start(at: datetime, zone: str, shift: int = 0) -> datetime:
    year = at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).year + shift
    return datetime(year, 1, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


def ref_growth(p: Programme, entries: list[tuple[datetime, int]], now: datetime) -> tuple[int, int]:
    """(growth in the window at ``now``, growth in the previous calendar year)."""
    kind = p.window.kind
    total = prev = 0
    for at, amount in entries:
        if at > now:
            continue
        if kind == "lifetime":
            total += amount
        elif kind == "calendar_year":
            start = _year_start(now, p.timezone)
            if at >= start:
                total += amount
            elif at >= _year_start(now, p.timezone, -1):
                prev += amount
        else:
            days = p.window.days  # type: ignore[union-attr]
            if at > now - timedelta(days=days):
                total += amount
    return total, prev


def ref_level_for(p: Programme, growth: int) -> int:
    best = 0
    for i, level in enumerate(p.levels):
        if growth >= level.threshold:
            best = i
    return best


def ref_step(p: Programme, m: RefMember, entries: list[tuple[datetime, int]], now: datetime) -> str | None:
    """Evaluate one member at ``now`` in place; the reason when the level changed."""
    growth, prev = ref_growth(p, entries, now)
    earned = ref_level_for(p, growth)
    if earned > m.level:
        m.level, m.since, m.below = earned, now, None
        return "upgrade"
    policy = p.downgrade.kind
    if earned == m.level:
        m.below = None
        return None
    if policy in ("period_end", "one_step"):
        if p.window.kind == "rolling_days":
            period = now - timedelta(days=p.window.days)  # type: ignore[union-attr]
        else:
            period = _year_start(now, p.timezone)
        if m.since >= period:
            return None
        keep = max(earned, ref_level_for(p, prev)) if p.window.kind == "calendar_year" else earned
        target = min(m.level, keep)
        if policy == "one_step":
            target = max(target, m.level - 1)
        if target < m.level:
            m.level, m.since, m.below = target, now, None
            return policy
        return None
    if policy == "grace":
        if m.below is None:
            m.below = now
            return None
        if now >= m.below + timedelta(days=p.downgrade.days):  # type: ignore[union-attr]
            m.level, m.since, m.below = earned, now, None
            return "grace"
    return None


# the product's side ---------------------------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def meta(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MetaStore, Project]]:
    """The named cases run on SQLite and on PostgreSQL (the reference comparison on SQLite in memory)."""
    with meta_url(request.param, tmp_path) as url:
        store = MetaStore(url)
        store.create_all()
        yield store, store.add_project("p", "UTC")
        store.dispose()


def _fresh() -> tuple[MetaStore, Project]:
    store = MetaStore("sqlite://")
    store.create_all()
    return store, store.add_project("p", "UTC")


def _entries(meta: MetaStore, saved: SavedProgramme, member_id: int, rows: list[tuple[datetime, int]]) -> None:
    if not rows:
        return
    with meta.engine.begin() as conn:
        conn.execute(insert(GrowthEntry), [
            {"programme_id": saved.id, "member_id": member_id, "key": f"{member_id}-{i}", "source": "test",
             "amount": amount, "at": at, "day": at.date()}
            for i, (at, amount) in enumerate(rows)
        ])  # fmt: skip


def _state(meta: MetaStore, saved: SavedProgramme) -> dict[int, tuple[int, datetime, datetime | None]]:
    with meta.session() as s:
        rows = s.scalars(select(MemberRow).where(MemberRow.programme_id == saved.id)).all()
        return {r.person: (r.level, r.level_since, r.below_since) for r in rows}


windows = st.sampled_from([{"kind": "lifetime"}, {"kind": "calendar_year"}, {"kind": "rolling_days", "days": 30},
                           {"kind": "rolling_days", "days": 365}])  # fmt: skip
POLICIES = [{"kind": "never"}, {"kind": "period_end"}, {"kind": "one_step"}, {"kind": "grace", "days": 10},
            {"kind": "grace", "days": 90}]  # fmt: skip
instants = st.builds(
    lambda base, seconds: base + timedelta(seconds=seconds),
    st.sampled_from(EDGES),
    st.sampled_from([-86400 * 40, -86400, -3600, -1, 0, 1, 3600, 86400, 86400 * 10, 86400 * 31, 86400 * 90]),
)
thresholds = st.lists(st.integers(1, 300), min_size=1, max_size=4, unique=True).map(lambda t: [0, *sorted(t)])
people = st.lists(
    st.tuples(
        st.sampled_from([START, START + timedelta(days=20)]),  # joined (before the first instant)
        # growth entries (a negative one: an adjustment)
        st.lists(st.tuples(instants, st.sampled_from([-40, 5, 60, 150, 300])), min_size=2, max_size=8),
    ),
    min_size=2,
    max_size=6,
)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: "-".join(str(v) for v in p.values()))
@settings(max_examples=examples(20))
@given(
    zone=st.sampled_from(["Asia/Shanghai", "UTC"]),
    window=windows,
    levels_at=thresholds,
    members=people,
    evaluations=st.lists(instants, min_size=3, max_size=8).map(sorted),
)
def test_levels_equal_the_brute_force_reference(
    zone: str,
    window: dict[str, Any],
    policy: dict[str, Any],
    levels_at: list[int],
    members: list[tuple[datetime, list[tuple[datetime, int]]]],
    evaluations: list[datetime],
) -> None:
    meta, project = _fresh()
    try:
        saved = Programmes(meta, project).create(programme_doc(zone, window, policy, levels_at))
        p = saved.definition
        ref: dict[int, RefMember] = {}
        history: list[tuple[int, int, int, datetime, str]] = []
        for person, (joined, rows) in enumerate(members, start=1):
            member = join(meta, saved, person, joined)
            _entries(meta, saved, member.id, rows)
            ref[person] = RefMember(0, joined)
        for now in evaluations:
            for person, (_, rows) in enumerate(members, start=1):
                before = ref[person].level
                reason = ref_step(p, ref[person], rows, now)
                if reason is not None:
                    history.append((person, before, ref[person].level, now, reason))
            levels.evaluate(meta, saved, now)
            expected = {k: (m.level, m.since, m.below) for k, m in ref.items()}
            assert _state(meta, saved) == expected, now
        with meta.session() as s:
            written = [(c.person, c.from_level, c.to_level, c.at, c.reason)
                       for c in s.scalars(select(LevelChange).order_by(LevelChange.id))]  # fmt: skip
        assert sorted(written, key=lambda h: (h[3], h[0])) == sorted(history, key=lambda h: (h[3], h[0]))
    finally:
        meta.dispose()


# named cases ----------------------------------------------------------------------------------------------------
def test_a_calendar_year_ends_at_midnight_in_the_programmes_zone(meta: tuple[MetaStore, Project]) -> None:
    """Growth at 15:00 UTC on 31 December is 23:00 in Shanghai; two hours later Shanghai is in the new year (the
    growth is last year's, the level is not reached) while UTC is still in the old one (it is)."""
    store, project = meta
    doc = programme_doc("Asia/Shanghai", {"kind": "calendar_year"}, {"kind": "never"}, [0, 100])
    shanghai = Programmes(store, project).create(doc)
    utc = Programmes(store, project).create({**doc, "name": "utc", "timezone": "UTC"})
    for saved in (shanghai, utc):
        member = join(store, saved, 7, datetime(2025, 1, 1))
        _entries(store, saved, member.id, [(datetime(2025, 12, 31, 15, 0), 100)])
        levels.evaluate(store, saved, datetime(2025, 12, 31, 17, 0))
    assert _state(store, shanghai)[7][0] == 0
    assert _state(store, utc)[7][0] == 1


def test_one_step_goes_down_one_level_per_period_and_changes_are_listed_as_events(
    meta: tuple[MetaStore, Project],
) -> None:
    from userloop.membership.members import changes_since

    store, project = meta
    saved = Programmes(store, project).create(
        programme_doc("Asia/Shanghai", {"kind": "calendar_year"}, {"kind": "one_step"}, [0, 10, 20, 30])
    )
    member = join(store, saved, 1, datetime(2024, 1, 1))
    _entries(store, saved, member.id, [(datetime(2024, 5, 1), 35)])
    levels.evaluate(store, saved, datetime(2024, 6, 1))
    assert _state(store, saved)[1][0] == 3
    levels.evaluate(store, saved, datetime(2025, 6, 1))  # 2024's growth holds the level through 2025
    assert _state(store, saved)[1][0] == 3
    levels.evaluate(store, saved, datetime(2026, 6, 1))  # nothing in 2025: one step down
    levels.evaluate(store, saved, datetime(2026, 7, 1))  # the same period: no second step
    assert _state(store, saved)[1][0] == 2
    levels.evaluate(store, saved, datetime(2027, 1, 5))
    assert _state(store, saved)[1][0] == 1
    changes = changes_since(store, saved.id)
    assert [(c.event, c.from_level, c.to_level) for c in changes] == [
        ("$member_level_up", 0, 3), ("$member_level_down", 3, 2), ("$member_level_down", 2, 1)]  # fmt: skip
    assert changes_since(store, saved.id, changes[1].id) == changes[2:]


def test_evaluating_one_member_leaves_the_others_alone(meta: tuple[MetaStore, Project]) -> None:
    store, project = meta
    saved = Programmes(store, project).create(programme_doc("UTC", {"kind": "lifetime"}, {"kind": "never"}, [0, 10]))
    a = join(store, saved, 1, START)
    b = join(store, saved, 2, START)
    _entries(store, saved, a.id, [(START, 10)])
    _entries(store, saved, b.id, [(START, 10)])
    done = levels.evaluate(store, saved, datetime(2025, 1, 1), members=[a.id])
    assert (done.members, done.up) == (1, 1)
    assert _state(store, saved)[1][0] == 1 and _state(store, saved)[2][0] == 0
