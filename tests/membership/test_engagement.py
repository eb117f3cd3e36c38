"""Daily check-ins and their rewards against a plain-Python reference, on SQLite and PostgreSQL.

The reference reads a member's check-in instants as local days of the programme's zone, keeps the first of each
day, and counts a streak as the run of consecutive days ending with it; the rewards are the daily one and the
streak rewards at the streak's position in its cycle. The instants are drawn around local midnights so that the
same instants give different days, and so different streaks, in Asia/Shanghai and in UTC.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from tests.conftest import examples
from tests.store.metadb import BACKENDS, meta_url
from userloop.benefits import BenefitRow, GrantRow
from userloop.core.errors import UserloopError
from userloop.membership import engagement
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement import check_in, check_ins, settle
from userloop.membership.engagement_tables import CheckInRow, RewardRow
from userloop.membership.members import GrowthEntry, Programmes, SavedProgramme, get_member, join, leave
from userloop.store.meta import MetaStore, Project

SECRET = b"s" * 32
START = datetime(2026, 3, 1, 12, 0)
STREAKS = [{"days": 3, "reward": {"points": 30}}, {"days": 7, "reward": {"points": 70, "benefits": ["pack"]}}]


def programme_doc(zone: str, cycle: str = "repeat") -> dict[str, Any]:
    return {
        "name": f"club_{zone.replace('/', '_').lower()}_{cycle}",
        "title": {"zh": "俱乐部", "en": "Club"},
        "timezone": zone,
        "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
        "check_in": {"points": 1, "growth": 2, "streaks": STREAKS, "cycle": cycle},
    }


def new_meta(url: str) -> tuple[MetaStore, Project]:
    meta = MetaStore(url)
    meta.create_all()
    project = meta.add_project("shop", "Asia/Shanghai")
    with meta.session.begin() as s:
        s.execute(insert(BenefitRow).values(project_id=project.id, name="pack", amount=10.0, threshold=0.0))
    return meta, project


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetaStore, Project]]:
    with meta_url("sqlite", tmp_path_factory.mktemp("engagement")) as url:
        meta, project = new_meta(url)
        yield meta, project
        meta.dispose()


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MetaStore, Project]]:
    with meta_url(request.param, tmp_path) as url:
        meta, project = new_meta(url)
        yield meta, project
        meta.dispose()


PEOPLE = itertools.count(1)


# the reference ---------------------------------------------------------------------------------------------------
def reference(instants: list[datetime], zone: str, cycle: str) -> tuple[dict[date, int], int, int]:
    """Streak by local day, points and benefits the check-ins earn, from first principles."""
    days = sorted({i.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date() for i in instants})
    streaks: dict[date, int] = {}
    points = benefits = 0
    for d in days:
        streaks[d] = streaks.get(d - timedelta(days=1), 0) + 1
        s = streaks[d]
        position = (s - 1) % 7 + 1 if cycle == "repeat" else s
        points += 1 + (30 if position == 3 else 0) + (70 if position == 7 else 0)
        benefits += position == 7
    return streaks, points, benefits


instants_st = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from([-9, -8, -1, 0, 1, 7, 8, 15, 16])),
    min_size=1,
    max_size=25,
).map(lambda pairs: sorted(START + timedelta(days=d, hours=h) for d, h in pairs))


@settings(max_examples=examples(25))
@given(instants=instants_st, zone=st.sampled_from(["Asia/Shanghai", "UTC"]), cycle=st.sampled_from(["repeat", "once"]))
def test_streaks_and_rewards_equal_the_reference(
    shared: tuple[MetaStore, Project], instants: list[datetime], zone: str, cycle: str
) -> None:
    meta, project = shared
    saved = _programme(meta, project, zone, cycle)
    person = next(PEOPLE)
    join(meta, saved, person, START - timedelta(days=1))
    for at in instants:
        check_in(meta, saved, person, at, secret=SECRET)
    check_in(meta, saved, person, instants[-1], secret=SECRET)  # a retry of the last one changes nothing
    streaks, points, packs = reference(instants, zone, cycle)
    with meta.session() as s:
        got = dict(s.execute(select(CheckInRow.day, CheckInRow.streak).where(
            CheckInRow.programme_id == saved.id, CheckInRow.person == person)).all())  # fmt: skip
        grants = s.scalar(select(func.count()).select_from(GrantRow).where(GrantRow.person == person))
        growth = s.scalar(select(func.sum(GrowthEntry.amount)).where(
            GrowthEntry.member_id == get_member(meta, saved, person).id, GrowthEntry.source == "check_in"))  # fmt: skip
    assert got == streaks
    assert ledger_of(meta, saved).balance(person, "points", instants[-1]).spendable == points
    assert grants == packs
    assert growth == 2 * len(streaks)


_PROGRAMMES: dict[tuple[int, str, str], SavedProgramme] = {}


def _programme(meta: MetaStore, project: Project, zone: str, cycle: str) -> SavedProgramme:
    key = (id(meta), zone, cycle)
    if key not in _PROGRAMMES:
        _PROGRAMMES[key] = Programmes(meta, project).create(programme_doc(zone, cycle))
    return _PROGRAMMES[key]


# idempotence, races, crashes -------------------------------------------------------------------------------------
def test_a_second_check_in_the_same_local_day_returns_the_first(fresh: tuple[MetaStore, Project]) -> None:
    meta, project = fresh
    saved = Programmes(meta, project).create(programme_doc("Asia/Shanghai"))
    join(meta, saved, 5, START)
    first = check_in(meta, saved, 5, datetime(2026, 3, 2, 16, 30), secret=SECRET)  # 00:30 on 3 March in Shanghai
    again = check_in(meta, saved, 5, datetime(2026, 3, 3, 15, 59), secret=SECRET)  # 23:59 the same local day
    assert (first.day, first.streak, first.new) == (date(2026, 3, 3), 1, True)
    assert (again.day, again.streak, again.new, again.at) == (first.day, 1, False, first.at)
    assert [r.key for r in again.rewards] == [r.key for r in first.rewards] and all(r.settled for r in again.rewards)
    assert ledger_of(meta, saved).balance(5, "points", START + timedelta(days=5)).spendable == 1
    shown = check_ins(meta, saved, 5, datetime(2026, 3, 4, 15, 0))  # 23:00 on the 4th: the streak still counts
    assert (shown.checked_in_today, shown.streak, len(shown.days)) == (False, 1, 1)
    assert check_ins(meta, saved, 5, datetime(2026, 3, 4, 16, 0)).streak == 0  # the 5th began: a day was missed


def test_rewards_are_booked_once_when_the_settle_crashes_and_the_check_in_is_retried(
    fresh: tuple[MetaStore, Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, project = fresh
    saved = Programmes(meta, project).create(programme_doc("UTC"))
    join(meta, saved, 9, START)
    for d in range(2):
        check_in(meta, saved, 9, START + timedelta(days=d), secret=SECRET)

    def crash(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("killed after the check-in committed")

    monkeypatch.setattr(engagement, "settle", crash)
    with pytest.raises(RuntimeError):
        check_in(meta, saved, 9, START + timedelta(days=2), secret=SECRET)  # the 3rd day: a streak reward
    monkeypatch.undo()
    ledger = ledger_of(meta, saved)
    assert ledger.balance(9, "points", START + timedelta(days=3)).spendable == 2  # written, not booked
    assert settle(meta, saved, secret=SECRET) == 2  # the sweep finishes the daily and the streak reward
    again = check_in(meta, saved, 9, START + timedelta(days=2, hours=1), secret=SECRET)
    assert not again.new and {r.reason for r in again.rewards} == {
        "每日签到 / daily check-in",
        "连续签到3天 / 3-day check-in streak",
    }
    assert settle(meta, saved, secret=SECRET) == 0
    assert ledger.balance(9, "points", START + timedelta(days=3)).spendable == 3 + 30


def test_a_used_up_benefit_keeps_the_reward_open_until_restocked(fresh: tuple[MetaStore, Project]) -> None:
    meta, project = fresh
    saved = Programmes(meta, project).create(programme_doc("UTC"))
    join(meta, saved, 3, START)
    with meta.session.begin() as s:
        s.execute(BenefitRow.__table__.update().values(stock=0))
    for d in range(7):
        check_in(meta, saved, 3, START + timedelta(days=d), secret=SECRET)
    with meta.session() as s:
        open_ = s.scalars(select(RewardRow).where(RewardRow.settled_at.is_(None))).all()
    assert [(r.points, r.error is not None) for r in open_] == [(70, True)]
    with meta.session.begin() as s:
        s.execute(BenefitRow.__table__.update().values(stock=1))
    assert settle(meta, saved, secret=SECRET) == 1
    assert settle(meta, saved, secret=SECRET) == 0
    assert ledger_of(meta, saved).balance(3, "points", START + timedelta(days=8)).spendable == 7 + 30 + 70


def test_check_in_refusals(fresh: tuple[MetaStore, Project]) -> None:
    meta, project = fresh
    saved = Programmes(meta, project).create(programme_doc("UTC"))
    with pytest.raises(UserloopError) as stranger:
        check_in(meta, saved, 77, START, secret=SECRET)
    assert stranger.value.code == "unknown_member"
    join(meta, saved, 77, START)
    check_in(meta, saved, 77, START + timedelta(days=2), secret=SECRET)
    with pytest.raises(UserloopError) as late:
        check_in(meta, saved, 77, START + timedelta(days=1), secret=SECRET)
    assert late.value.code == "check_in_late"
    leave(meta, saved, 77)
    with pytest.raises(UserloopError, match="has left"):
        check_in(meta, saved, 77, START + timedelta(days=3), secret=SECRET)
    plain = {**programme_doc("UTC"), "name": "plain"}
    del plain["check_in"]
    other = Programmes(meta, project).create(plain)
    with pytest.raises(UserloopError) as off:
        check_in(meta, other, 77, START, secret=SECRET)
    assert off.value.code == "check_in_disabled"


def test_racing_check_ins_of_one_member_make_one_check_in_and_book_once(fresh: tuple[MetaStore, Project]) -> None:
    meta, project = fresh
    saved = Programmes(meta, project).create(programme_doc("Asia/Shanghai"))
    join(meta, saved, 11, START)
    at = START + timedelta(days=1)
    barrier = threading.Barrier(8)

    def one(i: int) -> bool:
        barrier.wait()
        return check_in(meta, saved, 11, at + timedelta(seconds=i), secret=SECRET).new

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(one, range(8)))
    assert made.count(True) == 1
    with meta.session() as s:
        assert s.scalar(select(func.count()).select_from(CheckInRow).where(CheckInRow.person == 11)) == 1
    assert ledger_of(meta, saved).balance(11, "points", at + timedelta(days=1)).spendable == 1
