"""Tasks count events once by event id, per local period of the programme's zone, for members from when they joined;
a task completes once per period and at most its limit; reading the events again changes nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from tests.conftest import examples, rows
from tests.membership.stores import beside
from tests.store.metadb import BACKENDS
from userloop.core.clock import utcnow
from userloop.ingest.api import load_table
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement import count_tasks, period_start, task_progress
from userloop.membership.engagement_tables import TaskMarkRow
from userloop.membership.members import Programmes, join
from userloop.store import ProjectStore, Workspace
from userloop.store.meta import MetaStore, Project

SECRET = b"s" * 32
#: 00:00 in Shanghai a month back (16:00 UTC the day before): event times the loader accepts whenever it runs.
T0 = utcnow().replace(hour=16, minute=0, second=0, microsecond=0) - timedelta(days=30)


def share(store: ProjectStore, who: str, at: datetime, channel: str, n: int, tag: str) -> None:
    ms = int((at - datetime(1970, 1, 1)).total_seconds() * 1000)
    load_table(store, pa.table({"type": ["track"] * n, "event": ["share"] * n, "distinct_id": [who] * n,
                                "time": [ms + i for i in range(n)], "event_id": [f"{tag}{i}" for i in range(n)],
                                "channel": [channel] * n}), source="test")  # fmt: skip


@pytest.fixture(params=BACKENDS)
def metadb(request: pytest.FixtureRequest, workspace: Workspace, tmp_path: Path) -> Iterator[tuple[MetaStore, Project]]:
    with beside(workspace, request.param, tmp_path) as found:
        yield found


def test_tasks_complete_once_per_local_day_up_to_their_limit(
    metadb: tuple[MetaStore, Project], project: ProjectStore
) -> None:
    meta, info = metadb
    saved = Programmes(meta, info).create({
        "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
        "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
        "tasks": [
            {"name": "share", "title": {"zh": "分享", "en": "Share"}, "event": "share", "times": 2, "period": "day",
             "where": [{"property": "channel", "op": "eq", "value": "wechat"}], "limit": 3, "reward": {"points": 10}},
            {"name": "first_share", "title": {"zh": "首次分享", "en": "First share"}, "event": "share",
             "period": "ever", "reward": {"points": 1, "growth": 5}},
        ],
    })  # fmt: skip
    share(project, "member", T0 - timedelta(hours=1), "wechat", 3, "before")  # before joining: not counted
    share(project, "other", T0, "wechat", 4, "other")  # not a member
    person = int(str(rows(project, "SELECT user_id FROM {users} WHERE first_id = 'member'")[0][0]))
    join(meta, saved, person, T0)
    share(project, "member", T0 + timedelta(hours=1), "weibo", 3, "weibo")  # filtered out by the channel
    share(project, "member", T0 + timedelta(hours=2), "wechat", 1, "d0a")
    share(project, "member", T0 + timedelta(hours=23, minutes=59), "wechat", 1, "d0b")  # 23:59 local: same day
    share(project, "member", T0 + timedelta(hours=24), "wechat", 1, "d1a")  # the next local day: alone
    for day in (2, 3, 4):
        share(project, "member", T0 + timedelta(days=day, hours=5), "wechat", 3, f"d{day}")
    now = utcnow()  # the events' load times bound what is read
    done = count_tasks(meta, project, saved, now, secret=SECRET)
    # share: days 0, 2 and 3 complete, day 4 is over the limit of 3; first_share: once, ever
    assert (done.completed, len(done.rewards)) == (4, 4)
    ledger = ledger_of(meta, saved)
    assert ledger.balance(person, "points", now).spendable == 3 * 10 + 1
    assert count_tasks(meta, project, saved, now, secret=SECRET).events == 0
    with meta.session.begin() as s:  # read everything again from the start: each event counted once already
        s.execute(update(TaskMarkRow).values(received_ms=0, after_id=""))
    again = count_tasks(meta, project, saved, now, secret=SECRET)
    assert again.events > 0 and (again.counted, again.completed) == (0, 0)
    assert ledger.balance(person, "points", now).spendable == 31
    progress = {p.task: p for p in task_progress(meta, saved, person, T0 + timedelta(days=4, hours=1))}
    assert (progress["share"].count, progress["share"].completed, progress["share"].completions) == (3, False, 3)
    assert (progress["first_share"].completed, progress["first_share"].period_start) == (True, None)


def test_periods_are_local_weeks_from_monday_and_months() -> None:
    sunday = datetime(2026, 3, 8).date()
    assert period_start("week", sunday) == datetime(2026, 3, 2).date()
    assert period_start("week", sunday + timedelta(days=1)) == sunday + timedelta(days=1)
    assert period_start("month", sunday) == datetime(2026, 3, 1).date()
    assert period_start("day", sunday) == sunday


# a plain-Python reference over random events -----------------------------------------------------------------------
def reference_completions(times_: list[datetime], zone: str, period: str, need: int, limit: int | None) -> list[str]:
    """The periods (first local day) in which the task completes, events taken in time order."""
    counts: dict[str, int] = {}
    done: list[str] = []
    for at in times_:
        day = at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
        year, week, _ = day.isocalendar()
        key = {"day": day, "week": date.fromisocalendar(year, week, 1), "month": date(day.year, day.month, 1)}[period]
        counts[str(key)] = counts.get(str(key), 0) + 1
        if counts[str(key)] >= need and str(key) not in done and (limit is None or len(done) < limit):
            done.append(str(key))
    return done


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws, _ = Workspace.init(tmp_path_factory.mktemp("tasks") / "ws")
    yield ws
    ws.close()


EXAMPLE = itertools.count()


@settings(max_examples=examples(12))
@given(
    hours=st.lists(st.integers(0, 24 * 70), min_size=1, max_size=30),
    zone=st.sampled_from(["Asia/Shanghai", "UTC"]),
    period=st.sampled_from(["day", "week", "month"]),
    need=st.integers(1, 3),
    limit=st.sampled_from([None, 1, 2]),
)
def test_task_completions_equal_the_reference(
    shared_ws: Workspace, hours: list[int], zone: str, period: str, need: int, limit: int | None
) -> None:
    n = next(EXAMPLE)
    meta, store = shared_ws.meta, shared_ws.project()
    info = meta.project("default")
    assert info is not None
    saved = Programmes(meta, info).create({
        "name": f"p{n}", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": zone,
        "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
        "tasks": [{"name": "t", "title": {"zh": "任务", "en": "Task"}, "event": f"act{n}", "times": need,
                   "period": period, "limit": limit, "reward": {"points": 10}}],
    })  # fmt: skip
    start = T0 - timedelta(days=25, hours=7)
    times_ = sorted(start + timedelta(hours=h, minutes=i) for i, h in enumerate(hours))
    ms = [int((t - datetime(1970, 1, 1)).total_seconds() * 1000) for t in times_]
    who = f"p{n}"
    load_table(store, pa.table({"type": ["track"] * len(ms), "event": [f"act{n}"] * len(ms),
                                "distinct_id": [who] * len(ms), "time": ms,
                                "event_id": [f"{who}-{i:03d}" for i in range(len(ms))]}), source="test")  # fmt: skip
    person = int(str(rows(store, "SELECT user_id FROM {users} WHERE first_id = ?", [who])[0][0]))
    join(meta, saved, person, start)
    done = count_tasks(meta, store, saved, utcnow(), secret=SECRET)
    expected = reference_completions(times_, zone, period, need, limit)
    assert done.completed == len(expected)
    assert sorted(k[-10:] for k in done.rewards) == sorted(expected)  # a reward's key ends with its period
    assert ledger_of(meta, saved).balance(person, "points", utcnow()).spendable == 10 * len(expected)
