"""A large batch on PostgreSQL books what the same operations book one by one.

A transaction with many new rows takes their ids from the sequences up front and flushes them without
``RETURNING`` (:func:`userloop.membership.ledger._number`); one request keeps ``RETURNING``. Both must give the same
balances, the same lots drawn in the same (FEFO) order, and ids in the order the rows were made.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.store.metadb import meta_url
from userloop.membership.ledger import Ledger, Programme
from userloop.membership.ledger_types import BatchResult, Posted
from userloop.membership.policy import AfterDays, WalletPolicy
from userloop.store.meta import MetaStore

ZONE = "Asia/Shanghai"
T0 = datetime(2026, 3, 10, 4, 0)
_PROGRAMMES = itertools.count(1)


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetaStore]:
    with meta_url("postgresql", tmp_path_factory.mktemp("ledger-batch")) as url:
        store = MetaStore(url)
        store.create_all()
        store.add_project("p", ZONE)
        yield store
        store.dispose()


def _ledger(meta: MetaStore) -> Ledger:
    project = meta.project("p")
    assert project is not None
    policy = WalletPolicy(name="points", expiry=AfterDays(days=10))
    return Ledger(meta.engine, Programme(project.id, next(_PROGRAMMES), ZONE, lambda _name: policy))


def _operations(seed: int) -> list[dict[str, Any]]:
    """Earnings with shared and distinct expiries (FEFO ties), spendings across lots, a retried request id."""
    rng = random.Random(seed)
    ops: list[dict[str, Any]] = []
    for i in range(60):
        person = rng.randrange(3)
        if rng.random() < 0.6:
            lapse = T0 + timedelta(hours=rng.choice([1, 5, 5, 48]))
            ops.append({"op": "earn", "person": person, "amount": rng.randint(1, 30), "request_id": f"o{i}",
                        "expires_at": lapse.isoformat()})  # fmt: skip
        else:
            ops.append({"op": "spend", "person": person, "amount": rng.randint(1, 40), "request_id": f"o{i}"})
    ops.append(dict(ops[3]))
    return ops


def _shape(posted: list[Posted | None]) -> list[Any]:
    """The results without their ids: each allocation names the request that earned its lot."""
    lots = {p.lot_id: p.request_id for p in posted if p is not None and p.lot_id is not None}

    def one(p: Posted) -> Any:
        drawn = [(lots.get(a.lot_id, "?"), a.amount) for a in p.allocations]
        return p.request_id, p.kind, p.amount, p.spendable_after, p.pending_after, p.replayed, drawn

    return [None if p is None else one(p) for p in posted]


def _one_by_one(ledger: Ledger, ops: list[dict[str, Any]], now: datetime) -> list[Posted | None]:
    return [item.posted for op in ops for item in ledger.batch([op], now).items]


def _posted(result: BatchResult) -> list[Posted | None]:
    return [item.posted for item in result.items]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_large_batch_on_postgresql_equals_the_same_operations_one_by_one(meta: MetaStore, seed: int) -> None:
    ops = _operations(seed)
    batched, single = _ledger(meta), _ledger(meta)
    together = _posted(batched.batch(ops, T0))
    assert _shape(together) == _shape(_one_by_one(single, ops, T0))
    fresh = [p for p in together if p is not None and not p.replayed]
    assert [p.entry_id for p in fresh] == sorted(p.entry_id for p in fresh)  # ids in the order booked
    made = [p.lot_id for p in fresh if p.lot_id is not None]
    assert made == sorted(made) and len(set(made)) == len(made)
    # later, past most expiries: each member's sweep writes its lapses (many rows in one transaction) first
    later = T0 + timedelta(hours=6)
    spends = [{"op": "spend", "person": p, "amount": 1, "request_id": f"late{p}"} for p in range(3)]
    swept = _posted(batched.batch(spends, later))
    assert _shape(swept) == _shape(_one_by_one(single, spends, later))
    for person in range(3):
        assert batched.balance(person, "points", later) == single.balance(person, "points", later)
        kinds = [(e.kind, e.amount) for e in batched.history(person, limit=500).entries]
        assert kinds == [(e.kind, e.amount) for e in single.history(person, limit=500).entries]
