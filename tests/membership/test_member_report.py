"""Membership facts reach the events table exactly once: run twice, crash between the load and the marks, a row
with a smaller id that commits after a larger one; lots expiring soon are announced once, with their points."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import func, insert, select

from tests.conftest import rows
from tests.membership.stores import beside
from tests.store.metadb import BACKENDS
from userloop.core.clock import utcnow
from userloop.ingest.api import load_table
from userloop.membership import report as report_module
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement_tables import CheckInRow, ReportCursorRow, ReportMarkRow
from userloop.membership.ledger_types import Earn, Reverse, Spend
from userloop.membership.members import LevelChange, Programmes, SavedProgramme, get_member, join
from userloop.membership.report import SETTLE, report
from userloop.schema.activity import DEFAULT_PASSIVE_EVENTS
from userloop.store import ProjectStore, Workspace
from userloop.store.meta import MetaStore, Project

#: A day boundary a month back: event times the loader accepts whenever the test runs.
T0 = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)


def people(store: ProjectStore, n: int) -> list[int]:
    """``n`` people the event store knows (their first events loaded), by user id."""
    load_table(store, pa.table({"type": ["track"] * n, "event": ["app_start"] * n,
                                "distinct_id": [f"d{i}" for i in range(n)],
                                "time": [int((T0 - datetime(1970, 1, 1)).total_seconds() * 1000)] * n,
                                "event_id": [f"start{i}" for i in range(n)]}), source="test")  # fmt: skip
    found = rows(store, "SELECT user_id FROM {users} ORDER BY first_id")
    return [int(r[0]) for r in found]  # type: ignore[call-overload]


def counts(store: ProjectStore) -> dict[str, tuple[int, int]]:
    """Events of the member system by name: how many, and how many distinct ids."""
    found = rows(store, "SELECT event, count(*), count(DISTINCT event_id) FROM {events} "
                        "WHERE event_id LIKE 'membership:%' GROUP BY event")  # fmt: skip
    return {str(e): (int(n), int(d)) for e, n, d in found}  # type: ignore[call-overload]


@pytest.fixture(params=BACKENDS)
def metadb(request: pytest.FixtureRequest, workspace: Workspace, tmp_path: Path) -> Iterator[tuple[MetaStore, Project]]:
    with beside(workspace, request.param, tmp_path) as found:
        yield found


def programme(meta: MetaStore, project: Project) -> SavedProgramme:
    return Programmes(meta, project).create({
        "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
        "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
                   {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 100}],
    })  # fmt: skip


def test_every_fact_once_through_repeats_and_a_crash_between_load_and_marks(
    metadb: tuple[MetaStore, Project], project: ProjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, info = metadb
    saved = programme(meta, info)
    a, b = people(project, 2)
    for p in (a, b):
        join(meta, saved, p, T0 + timedelta(hours=1))
    join(meta, saved, 10**12, T0 + timedelta(hours=1))  # a member the event store has never seen
    ledger = ledger_of(meta, saved)
    at = T0 + timedelta(hours=2)
    earned = ledger.post(Earn(person=a, request_id="o1", amount=100, ref="order-1"), at)
    spent = ledger.post(Spend(person=a, request_id="s1", amount=30), at + timedelta(hours=1))
    ledger.post(Reverse(person=a, request_id="r1", transfer_id=spent.entry_id), at + timedelta(hours=2))
    ledger.post(Earn(person=b, request_id="o2", amount=5, expires_at=at + timedelta(days=1)), at)
    ledger.expire(at + timedelta(days=2))
    with meta.session.begin() as s:
        member = get_member(meta, saved, a)
        s.add(LevelChange(programme_id=saved.id, member_id=member.id, person=a, from_level=0, to_level=1,
                          at=at, reason="upgrade"))  # fmt: skip
        s.add(LevelChange(programme_id=saved.id, member_id=member.id, person=a, from_level=1, to_level=0,
                          at=at + timedelta(days=3), reason="grace"))  # fmt: skip
        s.add(CheckInRow(project_id=info.id, programme_id=saved.id, person=b, day=at.date(), at=at, streak=1))
    now = at + timedelta(days=4)
    done = report(meta, info, project, now=now)
    expected = {"$points_earned": (2, 2), "$points_spent": (1, 1), "$points_reversed": (1, 1),
                "$points_expired": (1, 1), "$member_joined": (2, 2), "$member_level_up": (1, 1),
                "$member_level_down": (1, 1), "$checked_in": (1, 1)}  # fmt: skip
    assert counts(project) == expected
    assert (done.unknown_people, done.written, done.duplicates) == (1, 10, 0)
    assert sum(report(meta, info, project, now=now).events.values()) == 0

    ledger.post(Earn(person=a, request_id="o3", amount=7), now)

    def crash(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("killed after the load committed")

    monkeypatch.setattr(report_module, "_mark", crash)
    with pytest.raises(RuntimeError):
        report(meta, info, project, now=now)
    monkeypatch.undo()
    assert counts(project)["$points_earned"] == (3, 3)  # loaded, not marked
    again = report(meta, info, project, now=now)  # loaded again: the id is a duplicate
    assert (again.written, again.duplicates) == (0, 1)
    assert counts(project)["$points_earned"] == (3, 3)

    first = rows(project, "SELECT points, change, balance, ref, programme_id FROM {events} WHERE event_id = ?",
                 [f"membership:points:{earned.entry_id}"])  # fmt: skip
    assert first == [(100, 100, 100, "order-1", saved.id)]
    level = rows(project, "SELECT level, previous_level, reason FROM {events} WHERE event = '$member_level_up'")
    assert level == [("gold", "base", "upgrade")]
    flags = dict(project.con.execute(f"SELECT event, active FROM {project.table('event_names')}").fetchall())
    assert flags.pop("$checked_in") is True
    assert all(flags[e] is False for e in expected if e != "$checked_in")
    assert set(report_module.ENTRY_EVENTS.values()) | {"$points_expiring"} <= DEFAULT_PASSIVE_EVENTS


def test_points_expiring_soon_once_per_lot_dated_when_the_window_opens(
    metadb: tuple[MetaStore, Project], project: ProjectStore
) -> None:
    meta, info = metadb
    saved = programme(meta, info)
    (a,) = people(project, 1)
    join(meta, saved, a, T0)
    ledger = ledger_of(meta, saved)
    lapse = T0 + timedelta(days=20)
    ledger.post(Earn(person=a, request_id="e1", amount=50, expires_at=lapse), T0)
    ledger.post(Earn(person=a, request_id="e2", amount=9), T0)  # never lapses
    ledger.post(Spend(person=a, request_id="s1", amount=20), T0 + timedelta(hours=1))  # FEFO: from e1's lot
    assert report(meta, info, project, now=lapse - timedelta(days=8)).events["$points_expiring"] == 0
    for day in (6, 5, 1):
        report(meta, info, project, now=lapse - timedelta(days=day))
    found = rows(project, "SELECT points, expires_at, time, expiring_days FROM {events} "
                          "WHERE event = '$points_expiring'")  # fmt: skip
    assert found == [(30, lapse, lapse - timedelta(days=7), 7)]
    assert report(meta, info, project, now=lapse - timedelta(days=2), expiring_days=3).events["$points_expiring"] == 1
    with meta.session() as s:  # once the lot lapsed its marks go
        report(meta, info, project, now=lapse + timedelta(seconds=1))
        report(meta, info, project, now=lapse + timedelta(seconds=1), expiring_days=3)
        assert s.scalar(select(func.count()).select_from(ReportMarkRow).where(
            ReportMarkRow.source.like("expiring:%"))) == 0  # fmt: skip


def test_a_row_committed_late_below_the_largest_id_is_still_written(
    metadb: tuple[MetaStore, Project], project: ProjectStore
) -> None:
    meta, info = metadb
    (a,) = people(project, 1)

    def check_in_row(row_id: int) -> None:
        with meta.session.begin() as s:
            s.execute(insert(CheckInRow).values(id=row_id, project_id=info.id, programme_id=1, person=a,
                                                day=(T0 + timedelta(days=row_id)).date(),
                                                at=T0 + timedelta(days=row_id), streak=1))  # fmt: skip

    for i in (1, 2, 4):
        check_in_row(i)
    now = T0 + timedelta(days=10)
    assert report(meta, info, project, now=now).written == 3
    check_in_row(3)  # a transaction that took id 3 before id 4 commits after the pass read 4
    assert report(meta, info, project, now=now + timedelta(minutes=1)).written == 1
    assert report(meta, info, project, now=now + SETTLE + timedelta(minutes=2)).written == 0
    with meta.session() as s:
        cursor = s.get(ReportCursorRow, (info.id, "check_ins"))
        marks = s.scalar(select(func.count()).select_from(ReportMarkRow).where(ReportMarkRow.source == "check_ins"))
    assert cursor is not None and cursor.low == 4 and marks == 0
    check_in_row(5)
    assert report(meta, info, project, now=now + SETTLE * 3).written == 1
    assert counts(project) == {"$checked_in": (5, 5)}
