"""Birthday packs against a plain-Python reference, on SQLite and PostgreSQL: swept hour by hour across the end
of February of a common year (2027) and of a leap year (2028), each member gets their pack once per year, at the
first hour whose local date in their zone (theirs, else the programme's) is the day the birthday is kept — 29
February on 28 February in 2027 — with its points booked once even when the pass dies between the points and the
coupons."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select

from tests.store.metadb import BACKENDS, meta_url
from userloop.benefits import BenefitRow, GrantRow
from userloop.membership import benefit_grants
from userloop.membership.accounts import ledger_of
from userloop.membership.benefit_grants import birthday_packs
from userloop.membership.members import Programmes, SavedProgramme, join
from userloop.store.meta import MetaStore

SECRET = b"b" * 32
#: person → (birthday, zone or None for the programme's Asia/Shanghai)
MEMBERS: dict[int, tuple[date, str | None]] = {
    1: (date(2000, 2, 29), "Asia/Shanghai"),
    2: (date(2000, 2, 29), "America/Los_Angeles"),
    3: (date(1990, 2, 28), None),
    4: (date(1990, 3, 1), "America/Los_Angeles"),
    5: (date(1995, 2, 27), "Pacific/Kiritimati"),  # UTC+14: its day starts before the UTC date does
}


@pytest.fixture(scope="module", params=BACKENDS)
def club(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MetaStore, SavedProgramme]]:
    with meta_url(request.param, tmp_path_factory.mktemp("birthdays")) as url:
        meta = MetaStore(url)
        meta.create_all()
        project = meta.add_project("shop", "Asia/Shanghai")
        with meta.session.begin() as s:
            s.execute(insert(BenefitRow).values(project_id=project.id, name="cake", amount=20.0))
        saved = Programmes(meta, project).create({
            "name": "club", "title": {"zh": "俱乐部", "en": "Club"}, "timezone": "Asia/Shanghai",
            "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0,
                        "benefits": [{"kind": "birthday_pack", "benefits": ["cake"], "points": 88}]}],
        })  # fmt: skip
        for person, (birthday, zone) in MEMBERS.items():
            join(meta, saved, person, datetime(2026, 1, 1), birthday=birthday, zone=zone)
        yield meta, saved
        meta.dispose()


def reference_first_hour(birthday: date, zone: str, hours: list[datetime]) -> datetime | None:
    """The first swept hour whose local date is the day the birthday is kept that local year."""
    for at in hours:
        local = at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
        try:
            kept = birthday.replace(year=local.year)
        except ValueError:
            kept = date(local.year, 2, 28)
        if local == kept:
            return at
    return None


def grant_counts(meta: MetaStore) -> dict[int, int]:
    with meta.session() as s:
        found = s.execute(select(GrantRow.person, func.count()).group_by(GrantRow.person)).all()
    return {int(p): int(n) for p, n in found}


def balance(meta: MetaStore, saved: SavedProgramme, person: int) -> int:
    return ledger_of(meta, saved).balance(person, "points", datetime(2040, 1, 1)).spendable


@pytest.mark.parametrize("year", [2027, 2028])
def test_each_birthday_pack_once_on_the_local_day_it_is_kept(club: tuple[MetaStore, SavedProgramme], year: int) -> None:
    meta, saved = club
    hours = [datetime(year, 2, 26, 0) + timedelta(hours=h) for h in range(5 * 24)]
    before = grant_counts(meta)
    points = {p: balance(meta, saved, p) for p in MEMBERS}
    first: dict[int, datetime] = {}
    for at in hours:
        birthday_packs(meta, saved, at, secret=SECRET)
        now = grant_counts(meta)
        first.update((p, at) for p in MEMBERS if p not in first and now.get(p, 0) > before.get(p, 0))
    expected = {p: reference_first_hour(b, z or "Asia/Shanghai", hours) for p, (b, z) in MEMBERS.items()}
    assert first == {p: at for p, at in expected.items() if at is not None}
    assert set(first) == set(MEMBERS)
    # 29 February: Shanghai's 28 February begins 16 h before Los Angeles' (2027), 29 February in 2028
    assert first[1] == datetime(year, 2, 27 if year == 2027 else 28, 16)
    assert first[2] == datetime(year, 2, 28 if year == 2027 else 29, 8)
    after = grant_counts(meta)
    assert {p: after[p] - before.get(p, 0) for p in MEMBERS} == dict.fromkeys(MEMBERS, 1)
    assert {p: balance(meta, saved, p) - points[p] for p in MEMBERS} == dict.fromkeys(MEMBERS, 88)


def test_a_pass_killed_between_the_points_and_the_coupons_books_each_once(
    club: tuple[MetaStore, SavedProgramme], monkeypatch: pytest.MonkeyPatch
) -> None:
    meta, saved = club
    at = datetime(2031, 2, 28, 9, 0)  # 28 Feb in Shanghai (17:00) and in Los Angeles (01:00)
    before, points = grant_counts(meta), {p: balance(meta, saved, p) for p in MEMBERS}

    def killed(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("killed after the points, before the coupons")

    monkeypatch.setattr(benefit_grants.benefits, "grant", killed)
    with pytest.raises(RuntimeError):
        birthday_packs(meta, saved, at, secret=SECRET)
    monkeypatch.undo()
    first = birthday_packs(meta, saved, at, secret=SECRET)
    again = birthday_packs(meta, saved, at + timedelta(hours=1), secret=SECRET)
    assert (first.causes, again.causes) == (3, 0)  # persons 1, 2 and 3 keep their birthday that day
    after = grant_counts(meta)
    assert [balance(meta, saved, p) - points[p] for p in (1, 2, 3, 4)] == [88, 88, 88, 0]
    assert [after.get(p, 0) - before.get(p, 0) for p in (1, 2, 3, 4)] == [1, 1, 1, 0]
