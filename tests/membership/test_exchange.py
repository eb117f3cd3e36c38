"""The points exchange (积分兑换): points spent and a coupon granted once per request id, the level and the limit
enforced, points given back when the coupon cannot be granted; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.store.metadb import BACKENDS, meta_url
from userloop.benefits import BenefitRow, GrantRow
from userloop.core.errors import UserloopError
from userloop.membership import exchange
from userloop.membership.accounts import ledger_of
from userloop.membership.members import MemberRow, Programmes, SavedProgramme, join
from userloop.store.meta import MetaStore

NOW = datetime(2026, 5, 1, 4, 0)
SECRET = b"k" * 32
CLUB = {
    "name": "club",
    "title": {"zh": "俱乐部", "en": "Club"},
    "levels": [
        {"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
        {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 1000},
    ],
    "exchange": [
        {"name": "ten", "title": {"zh": "10元券", "en": "10 off"}, "benefit": "ten_off", "points": 300, "limit": 2},
        {"name": "vip", "title": {"zh": "贵宾券", "en": "VIP"}, "benefit": "vip_off", "points": 100, "min_level": 1},
    ],
}


@pytest.fixture(params=BACKENDS)
def club(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MetaStore, SavedProgramme]]:
    with meta_url(request.param, tmp_path) as url:
        meta = MetaStore(url)
        meta.create_all()
        project = meta.add_project("shop", "Asia/Shanghai")
        with meta.session.begin() as s:
            s.add(BenefitRow(project_id=project.id, name="ten_off", amount=10, threshold=50, valid_days=30))
            s.add(BenefitRow(project_id=project.id, name="vip_off", amount=50, threshold=0, valid_days=7, stock=1))
        saved = Programmes(meta, project).create(CLUB)
        for person in (1, 2):
            join(meta, saved, person, NOW)
        ledger_of(meta, saved).post({"op": "earn", "person": 1, "amount": 1000, "request_id": "seed-1"}, NOW)
        ledger_of(meta, saved).post({"op": "earn", "person": 2, "amount": 1000, "request_id": "seed-2"}, NOW)
        yield meta, saved
        meta.dispose()


def _spendable(meta: MetaStore, saved: SavedProgramme, person: int) -> int:
    return ledger_of(meta, saved).balance(person, "points", NOW).spendable


def _grants(meta: MetaStore) -> int:
    with meta.session() as s:
        return int(s.scalar(select(func.count()).select_from(GrantRow)) or 0)


def test_a_redemption_spends_once_and_grants_one_coupon(club: tuple[MetaStore, SavedProgramme]) -> None:
    meta, saved = club
    first = exchange.redeem(meta, saved, 1, "ten", "r1", NOW, secret=SECRET)
    again = exchange.redeem(meta, saved, 1, "ten", "r1", NOW, secret=SECRET)
    assert (first.points, first.amount, first.replayed, again.replayed) == (300, 10.0, False, True)
    assert (again.code, again.entry_id) == (first.code, first.entry_id)
    assert _spendable(meta, saved, 1) == 700
    assert _grants(meta) == 1
    exchange.redeem(meta, saved, 1, "ten", "r2", NOW, secret=SECRET)
    with pytest.raises(UserloopError) as limit:
        exchange.redeem(meta, saved, 1, "ten", "r3", NOW, secret=SECRET)
    assert limit.value.code == "exchange_refused"
    assert exchange.redeem(meta, saved, 1, "ten", "r2", NOW, secret=SECRET).replayed  # a replay is not refused
    assert (_spendable(meta, saved, 1), _grants(meta)) == (400, 2)


def test_the_level_the_balance_and_the_stock_are_enforced(club: tuple[MetaStore, SavedProgramme]) -> None:
    meta, saved = club
    with pytest.raises(UserloopError) as low:
        exchange.redeem(meta, saved, 1, "vip", "v1", NOW, secret=SECRET)
    assert low.value.code == "exchange_refused"
    with meta.session.begin() as s:
        s.execute(update(MemberRow).values(level=1))
    exchange.redeem(meta, saved, 1, "vip", "v1", NOW, secret=SECRET)
    with pytest.raises(UserloopError) as gone:  # one in stock: the second member's points come back
        exchange.redeem(meta, saved, 2, "vip", "v2", NOW, secret=SECRET)
    assert gone.value.code == "benefit_exhausted"
    assert (_spendable(meta, saved, 1), _spendable(meta, saved, 2), _grants(meta)) == (900, 1000, 1)
    ledger_of(meta, saved).post({"op": "spend", "person": 2, "amount": 900, "request_id": "big"}, NOW)
    with pytest.raises(UserloopError) as short:
        exchange.redeem(meta, saved, 2, "ten", "t1", NOW, secret=SECRET)
    assert short.value.code == "points_insufficient"
    with pytest.raises(UserloopError) as unknown:
        exchange.redeem(meta, saved, 2, "nope", "t2", NOW, secret=SECRET)
    assert unknown.value.code == "unknown_exchange_item"
    assert (_spendable(meta, saved, 2), _grants(meta)) == (100, 1)
