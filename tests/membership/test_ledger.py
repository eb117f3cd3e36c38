"""The points ledger's rules, one by one, in process on SQLite (the HTTP faces are in test_ledger_api.py, random
sequences against the reference in test_ledger_reference.py)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.store.metadb import meta_url
from userloop.core.errors import UserloopError, ValidationError
from userloop.membership.ledger import Ledger, Programme, operation_of
from userloop.membership.ledger_tables import PointsEntry
from userloop.membership.ledger_types import Adjust, Earn, Reverse, Spend
from userloop.membership.policy import MAX_POINTS, AfterDays, EndOfMonth, Pending, WalletPolicy
from userloop.store.meta import MetaStore

ZONE = "Asia/Shanghai"
T0 = datetime(2026, 3, 10, 4, 0)
POLICIES = {
    "points": WalletPolicy(name="points", expiry=AfterDays(days=10)),
    "month": WalletPolicy(name="month", expiry=EndOfMonth(months=0), pending=Pending(days=3)),
}
_PROGRAMMES = itertools.count(1)


def _wallet(name: str) -> WalletPolicy:
    if name not in POLICIES:
        raise ValidationError(f"no wallet {name!r}", code="points_invalid", field="wallet")
    return POLICIES[name]


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaStore]:
    with meta_url("sqlite", tmp_path_factory.mktemp("ledger")) as url:
        store = MetaStore(url)
        store.create_all()
        store.add_project("p", ZONE)
        yield store
        store.dispose()


@pytest.fixture
def ledger(meta: MetaStore) -> Ledger:
    project = meta.project("p")
    assert project is not None
    return Ledger(meta.engine, Programme(project.id, next(_PROGRAMMES), ZONE, _wallet))


def _entries(ledger: Ledger) -> int:
    with ledger.session() as s:
        mine = PointsEntry.programme_id == ledger.programme.programme_id
        return int(s.scalar(select(func.count()).select_from(PointsEntry).where(mine)) or 0)


def _refused(ledger: Ledger, op: Any, now: datetime = T0) -> str:
    before = _entries(ledger)
    with pytest.raises(UserloopError) as caught:
        ledger.post(op, now)
    assert _entries(ledger) == before
    return caught.value.code


@pytest.mark.parametrize("amount", [0, -1, MAX_POINTS + 1, 1.5, 2.0, math.nan, math.inf, -math.inf, True, "7", None])
def test_an_amount_that_is_not_whole_points_in_range_is_refused(ledger: Ledger, amount: Any) -> None:
    for op in ("earn", "spend"):
        assert _refused(ledger, {"op": op, "person": 1, "amount": amount, "request_id": "x"}) == "points_invalid"
    with pytest.raises(UserloopError) as caught:
        operation_of({"op": "earn", "person": 1, "amount": amount, "request_id": "x"})
    assert caught.value.field == "amount"


def test_an_expiry_out_of_range_or_before_the_earning_is_refused(ledger: Ledger) -> None:
    for at in ("0001-01-01T00:30:00+01:00", "2026-03-10T03:00:00"):
        op = {"op": "earn", "person": 1, "amount": 1, "request_id": "x", "expires_at": at}
        assert _refused(ledger, op) == "points_invalid"


def test_a_retry_returns_the_first_result_and_other_content_is_a_conflict(ledger: Ledger) -> None:
    first = ledger.post(Earn(person=1, amount=50, request_id="e1"), T0)
    again = ledger.post(Earn(person=1, amount=50, request_id="e1"), T0 + timedelta(days=1))
    assert again == first.model_copy(update={"replayed": True})
    assert _refused(ledger, Earn(person=1, amount=51, request_id="e1")) == "points_request_conflict"
    assert _refused(ledger, Spend(person=1, amount=1, request_id="e1")) == "points_request_conflict"
    batch = ledger.batch([Spend(person=1, amount=5, request_id="s1"), Spend(person=1, amount=5, request_id="s1")], T0)
    one, two = (item.posted for item in batch.items)
    assert one is not None and two is not None and one.entry_id == two.entry_id and two.replayed
    assert ledger.balance(1, "points", T0).spendable == 45


def test_spending_takes_the_earliest_expiring_lot_first_and_never_expiring_last(ledger: Ledger) -> None:
    late = ledger.post(Earn(person=2, amount=10, request_id="late"), T0)  # lapses after 10 days
    soon = ledger.post(Earn(person=2, amount=10, request_id="soon", expires_at=T0 + timedelta(days=2)), T0)
    spent = ledger.post(Spend(person=2, amount=15, request_id="s"), T0 + timedelta(hours=1))
    assert [(a.lot_id, a.amount) for a in spent.allocations] == [(soon.lot_id, 10), (late.lot_id, 5)]
    assert _refused(ledger, Spend(person=2, amount=6, request_id="s2")) == "points_insufficient"


def test_pending_points_are_not_spendable_until_their_period_ends(ledger: Ledger) -> None:
    ledger.post(Earn(person=3, wallet="month", amount=40, request_id="m"), T0)
    assert (ledger.balance(3, "month", T0).spendable, ledger.balance(3, "month", T0).pending) == (0, 40)
    assert _refused(ledger, Spend(person=3, wallet="month", amount=1, request_id="ms")) == "points_insufficient"
    later = T0 + timedelta(days=3)
    assert ledger.post(Spend(person=3, wallet="month", amount=40, request_id="ms"), later).spendable_after == 0


def test_expiring_soon_is_by_the_last_local_day_and_the_job_is_idempotent(ledger: Ledger) -> None:
    ledger.post(Earn(person=4, wallet="month", amount=7, request_id="m4"), T0)
    # end of March in Shanghai is 2026-03-31 16:00 UTC: the last day to spend is 31 March there
    assert [(e.date, e.points) for e in ledger.balance(4, "month", T0, soon_days=30).expiring] == [
        (date(2026, 3, 31), 7)
    ]
    after = datetime(2026, 3, 31, 16, 0)
    assert ledger.balance(4, "month", after).pending == 0  # gone at once, before the job sweeps it
    run = ledger.expire(after)
    assert (run.lots, run.points) == (1, 7)
    assert ledger.expire(after).lots == 0
    assert [e.kind for e in ledger.history(4).entries] == ["expire", "earn"]


def test_reversing_an_earning_takes_back_what_remains_and_names_the_shortfall(ledger: Ledger) -> None:
    earned = ledger.post(Earn(person=5, amount=100, request_id="e"), T0)
    spent = ledger.post(Spend(person=5, amount=70, request_id="s"), T0)
    back = ledger.post(Reverse(person=5, transfer_id=earned.entry_id, request_id="r"), T0)
    assert (back.amount, back.shortfall, back.spendable_after) == (-30, 70, 0)
    assert (
        _refused(ledger, Reverse(person=5, transfer_id=earned.entry_id, request_id="r2")) == "points_already_reversed"
    )
    assert _refused(ledger, Reverse(person=5, transfer_id=back.entry_id, request_id="r3")) == "points_not_reversible"
    assert _refused(ledger, Reverse(person=6, transfer_id=spent.entry_id, request_id="r4")) == "points_unknown_transfer"
    # the spending drew on the reversed lot: undoing it gives nothing back (it settles the shortfall)
    undo = ledger.post(Reverse(person=5, transfer_id=spent.entry_id, request_id="r5"), T0)
    assert (undo.amount, undo.spendable_after) == (0, 0)


def test_reversing_a_spending_refills_live_lots_and_makes_a_new_lot_for_lapsed_ones(ledger: Ledger) -> None:
    short = ledger.post(Earn(person=7, amount=10, request_id="a", expires_at=T0 + timedelta(days=1)), T0)
    long = ledger.post(Earn(person=7, amount=10, request_id="b"), T0)
    spent = ledger.post(Spend(person=7, amount=15, request_id="s"), T0)
    later = T0 + timedelta(days=2)
    undo = ledger.post(Reverse(person=7, transfer_id=spent.entry_id, request_id="u"), later)
    assert undo.amount == 15 and [(a.lot_id, a.amount) for a in undo.allocations] == [(long.lot_id, -5)]
    assert undo.lot_id is not None and undo.lot_id != short.lot_id and undo.expires_at == later + timedelta(days=10)
    assert ledger.balance(7, "points", later).spendable == 20  # 5 left on the long lot, 5 back, 10 new


def test_an_adjustment_credits_a_lot_or_debits_like_a_spending(ledger: Ledger) -> None:
    credit = ledger.post(Adjust(person=8, amount=20, request_id="c"), T0)
    assert credit.lot_id is not None and credit.spendable_after == 20
    assert ledger.post(Adjust(person=8, amount=-5, request_id="d"), T0).spendable_after == 15
    assert _refused(ledger, Adjust(person=8, amount=-16, request_id="d2")) == "points_insufficient"
    assert _refused(ledger, {"op": "adjust", "person": 8, "amount": 0, "request_id": "z"}) == "points_invalid"


def test_a_batch_reports_each_reject_with_its_index_and_field(ledger: Ledger) -> None:
    result = ledger.batch(
        [
            {"op": "earn", "person": 9, "amount": 5, "request_id": "b1"},
            {"op": "earn", "person": 9, "amount": "lots", "request_id": "b2"},
            {"op": "spend", "person": 9, "amount": 6, "request_id": "b3"},
            {"op": "earn", "person": 9, "wallet": "gold", "amount": 1, "request_id": "b4"},
        ],
        T0,
    )
    assert (result.posted, result.rejected) == (1, 3)
    assert [(r.index, r.rejected.field) for r in result.items if r.rejected] == [
        (1, "operations.1.amount"), (2, "operations.2.amount"), (3, "operations.3.wallet"),
    ]  # fmt: skip


def test_history_pages_newest_first(ledger: Ledger) -> None:
    for i in range(5):
        ledger.post(Earn(person=10, amount=1 + i, request_id=f"h{i}"), T0 + timedelta(minutes=i))
    first = ledger.history(10, limit=2)
    second = ledger.history(10, before=first.next_before, limit=2)
    third = ledger.history(10, before=second.next_before, limit=2)
    amounts = [e.amount for page in (first, second, third) for e in page.entries]
    assert amounts == [5, 4, 3, 2, 1] and third.next_before is None
