"""Points liability and breakage against a plain-Python ledger, on random sequences of earnings (two wallets: one
lapsing 10 days after earning, one never lapsing but pending for 3 days), spendings, reversals of earnings and
expiry runs, read at a random instant.

The reference keeps its own lots, spends them earliest expiry first (never-lapsing last, ties by age), lapses a
member's due lots before each of that member's writes and at each expiry run, and reads the figures off its lots
by the definitions of :mod:`userloop.membership.diagnosis`: outstanding = what is left of live lots (spendable once
``spendable_at`` is reached, pending before); expiring within N days = live lots lapsing by ``as_of`` + N days;
breakage = expired ÷ credited over the lots not reversed that have nothing left or have lapsed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.store.metadb import meta_url
from userloop.membership.diagnosis import liability
from userloop.membership.ledger import InsufficientPointsError, Ledger
from userloop.membership.ledger import Programme as LedgerProgramme
from userloop.membership.ledger_types import Earn, Reverse, Spend
from userloop.membership.members import SavedProgramme
from userloop.membership.programme import Programme
from userloop.store.meta import MetaStore

ZONE = "Asia/Shanghai"
START = datetime(2026, 3, 1)
DEFINITION = Programme.model_validate({
    "name": "p", "title": {"zh": "会", "en": "P"}, "timezone": ZONE,
    "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
    "wallets": [
        {"name": "points", "unit_value": 0.01, "expiry": {"kind": "after_days", "days": 10}},
        {"name": "coins", "unit_value": 0.5, "pending": {"days": 3}},
    ],
})  # fmt: skip
WALLETS = {w.name: w for w in DEFINITION.wallets}
_PROGRAMMES = itertools.count(1)


@dataclass
class Lot:
    entry: int
    wallet: str
    original: int
    remaining: int
    spendable_at: datetime
    expires_at: datetime | None
    expired: int = 0
    swept: bool = False
    reversed: bool = False

    def live(self, at: datetime) -> bool:
        return self.remaining > 0 and not self.reversed and (self.expires_at is None or self.expires_at > at)


class Reference:
    def __init__(self) -> None:
        self.lots: dict[int, list[Lot]] = {}

    def sweep(self, person: int, at: datetime) -> None:
        for lot in self.lots.get(person, []):
            if not lot.reversed and lot.remaining and lot.expires_at is not None and lot.expires_at <= at:
                lot.expired, lot.remaining, lot.swept = lot.remaining, 0, True

    def earn(self, person: int, entry: int, wallet: str, amount: int, at: datetime) -> None:
        self.sweep(person, at)
        policy = WALLETS[wallet]
        lot = Lot(entry, wallet, amount, amount, policy.pending.spendable_at(at), policy.expiry.expires_at(at, ZONE))
        self.lots.setdefault(person, []).append(lot)

    def spend(self, person: int, wallet: str, amount: int, at: datetime) -> bool:
        self.sweep(person, at)
        usable = [lot for lot in self.lots.get(person, []) if lot.wallet == wallet and lot.live(at)
                  and lot.spendable_at <= at]  # fmt: skip
        if sum(lot.remaining for lot in usable) < amount:
            return False
        for lot in sorted(usable, key=lambda x: (x.expires_at is None, x.expires_at or at, x.entry)):
            take = min(amount, lot.remaining)
            lot.remaining, amount = lot.remaining - take, amount - take
        return True

    def reverse(self, person: int, entry: int, at: datetime) -> None:
        self.sweep(person, at)
        lot = next(x for x in self.lots[person] if x.entry == entry)
        lot.remaining, lot.reversed = 0, True

    def figures(self, wallet: str, at: datetime) -> tuple[int, ...]:
        lots = [lot for person in self.lots.values() for lot in person if lot.wallet == wallet]
        live = [lot for lot in lots if lot.live(at)]
        lapsing = [lot for lot in live if lot.expires_at is not None]
        settled = [lot for lot in lots if not lot.reversed and (lot.remaining == 0 or not lot.live(at))]
        return (
            sum(lot.remaining for lot in live if lot.spendable_at <= at),
            sum(lot.remaining for lot in live if lot.spendable_at > at),
            sum(lot.remaining for lot in lapsing if lot.expires_at <= at + timedelta(days=30)),  # type: ignore[operator]
            sum(lot.remaining for lot in lapsing if lot.expires_at <= at + timedelta(days=90)),  # type: ignore[operator]
            sum(lot.original for lot in settled),
            sum(lot.expired if lot.swept else lot.remaining for lot in settled),
        )


step = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 3), st.sampled_from(["points", "coins"]), st.integers(1, 50)),
    st.tuples(st.just("spend"), st.integers(1, 3), st.sampled_from(["points", "coins"]), st.integers(1, 60)),
    st.tuples(st.just("reverse"), st.integers(1, 3), st.just(""), st.integers(0, 5)),
    st.tuples(st.just("expire"), st.just(0), st.just(""), st.just(0)),
)
steps = st.lists(st.tuples(step, st.integers(1, 72)), max_size=25)


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaStore]:
    with meta_url("sqlite", tmp_path_factory.mktemp("liability")) as url:
        store = MetaStore(url)
        store.create_all()
        yield store
        store.dispose()


def _run(ledger: Ledger, ref: Reference, sequence: list[Any]) -> datetime:
    at, earned, n = START, {}, itertools.count()
    for (kind, person, wallet, amount), hours in sequence:
        at += timedelta(hours=hours)
        if kind == "earn":
            entry = ledger.post(Earn(person=person, wallet=wallet, amount=amount, request_id=f"r{next(n)}"), at)
            ref.earn(person, entry.entry_id, wallet, amount, at)
            earned.setdefault(person, []).append(entry.entry_id)
        elif kind == "spend":
            ok = ref.spend(person, wallet, amount, at)
            try:
                ledger.post(Spend(person=person, wallet=wallet, amount=amount, request_id=f"r{next(n)}"), at)
            except InsufficientPointsError:
                assert not ok
            else:
                assert ok
        elif kind == "reverse" and earned.get(person):
            entry_id = earned[person].pop(amount % len(earned[person]))
            ledger.post(Reverse(person=person, transfer_id=entry_id, request_id=f"r{next(n)}"), at)
            ref.reverse(person, entry_id, at)
        elif kind == "expire":
            ledger.expire(at)
            for person_id in ref.lots:
                ref.sweep(person_id, at)
    return at


@settings(max_examples=examples(40))
@given(sequence=steps, after=st.integers(0, 30 * 24))
def test_liability_and_breakage_equal_the_reference(meta: MetaStore, sequence: list[Any], after: int) -> None:
    project = meta.project("p") or meta.add_project("p", ZONE)
    programme_id = next(_PROGRAMMES)
    ledger = Ledger(meta.engine, LedgerProgramme(project.id, programme_id, ZONE, WALLETS.__getitem__))
    ref = Reference()
    as_of = _run(ledger, ref, sequence) + timedelta(hours=after)
    saved = SavedProgramme(programme_id, project.id, "p", "active", 1, DEFINITION, START, START)
    got = {w.wallet: w for w in liability(meta, saved, as_of)}
    for name, policy in WALLETS.items():
        w = got[name]
        spendable, pending, soon, later, credited, expired = ref.figures(name, as_of)
        assert (w.spendable, w.pending, w.expiring_30, w.expiring_90) == (spendable, pending, soon, later)
        assert (w.settled_credited, w.settled_expired) == (credited, expired)
        assert w.outstanding == spendable + pending
        assert w.liability_yuan == pytest.approx(round((spendable + pending) * policy.unit_value, 2))
        assert w.breakage == (expired / credited if credited else None)
