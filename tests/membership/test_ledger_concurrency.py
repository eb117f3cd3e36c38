"""Concurrent earnings and spendings over real HTTP against the running service, with retries of the same request
ids (issue #16's acceptance): every balance exact, never negative, no entry twice.

16 client threads send earn and spend requests for 40 people (so many requests of one person race); a sixth of the
requests are sent twice, by two threads at once or one after the other, as a client retries after a lost answer.
Checked afterwards, in the database and through the API: each request id booked at most once, and every answer of
a booked one names that entry; a request only ever refused (409) booked nothing; each person's balance equals the
sum of their entries, their wallet row and their lots' remaining points; no entry left a negative balance; each
spending's allocations add up to it. ``make test`` sends 1,000 requests on PostgreSQL and 250 on SQLite;
``USERLOOP_MEMBERSHIP_REQUESTS=10000`` runs the issue's size (a quarter of it on SQLite).
"""

from __future__ import annotations

import os
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.membership.ledger_server import LedgerServer, ledger_server
from tests.store.metadb import meta_url
from userloop.membership.ledger_tables import PointsAllocation, PointsBalance, PointsEntry, PointsLot

pytestmark = pytest.mark.slow

REQUESTS = int(os.environ.get("USERLOOP_MEMBERSHIP_REQUESTS", "1000"))
THREADS = 16
PEOPLE = 40

Request = tuple[str, int, str, int]  # kind, person, request id, amount


def plan(n: int, seed: int) -> list[list[Request]]:
    """``n`` requests, a sixth of them twice, dealt to the threads (a repeat usually lands in another thread)."""
    rng = random.Random(seed)
    requests: list[Request] = []
    for i in range(n):
        kind = "earn" if rng.random() < 0.55 else "spend"
        requests.append((kind, rng.randrange(PEOPLE), f"c-{i}", rng.randint(1, 100 if kind == "earn" else 120)))
    sends = requests + [r for r in requests if rng.random() < 1 / 6]
    rng.shuffle(sends)
    return [sends[t::THREADS] for t in range(THREADS)]


def drive(server: LedgerServer, lanes: list[list[Request]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Send every lane from its own thread; the answers by request id."""
    answers: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    lock = threading.Lock()

    def lane(requests: list[Request]) -> None:
        with httpx.Client(timeout=60) as client:
            for kind, person, request_id, amount in requests:
                response = server.post(client, f"/api/v1/members/{person}/points/{kind}",
                                       {"amount": amount, "request_id": request_id})  # fmt: skip
                with lock:
                    answers[request_id].append((response.status_code, response.json()))

    threads = [threading.Thread(target=lane, args=(requests,)) for requests in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def check(server: LedgerServer, url: str, lanes: list[list[Request]], answers: dict[str, Any]) -> None:
    sent = {r[2]: r for lane in lanes for r in lane}
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            entries = {row.request_id: row for row in c.execute(select(PointsEntry))}
            rows = {row.person: row for row in c.execute(select(PointsBalance))}
            remaining = dict(
                c.execute(select(PointsLot.person, func.sum(PointsLot.remaining)).group_by(PointsLot.person)).all()
            )
            drawn = dict(
                c.execute(
                    select(PointsAllocation.entry_id, func.sum(PointsAllocation.amount)).group_by(
                        PointsAllocation.entry_id
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert set(entries) <= set(sent)
    for request_id, replies in answers.items():
        statuses = {status for status, _body in replies}
        assert statuses <= {201, 409}, replies
        booked = {body["entry_id"] for status, body in replies if status == 201}
        if request_id in entries:
            assert booked <= {entries[request_id].id}, replies
        else:
            assert not booked and all(body["error"]["code"] == "points_insufficient" for _s, body in replies)
    totals: dict[int, int] = defaultdict(int)
    for entry in entries.values():
        kind, person, _id, amount = sent[entry.request_id]
        assert (entry.kind, entry.person, entry.amount) == (kind, person, amount if kind == "earn" else -amount)
        assert entry.spendable_after >= 0
        if kind == "spend":
            assert drawn[entry.id] == amount
        totals[person] += entry.amount
    with httpx.Client(timeout=60) as client:
        for person in range(PEOPLE):
            balance = client.get(f"{server.url}/api/v1/members/{person}/points/balance", headers=server.admin,
                                 params={"programme": server.programme}).json()  # fmt: skip
            assert balance["spendable"] == totals[person] >= 0, person
            if person in rows:
                assert rows[person].spendable == totals[person] == remaining.get(person, 0)
    spends = sum(1 for e in entries.values() if e.kind == "spend")
    assert spends > len(sent) / 10  # the run exercised spending, not only refusals


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LedgerServer, str, int]]:
    with meta_url(request.param, tmp_path) as pg_url:
        if request.param == "sqlite":
            server = ledger_server(tmp_path).start()
            url, n = f"sqlite:///{server.path / 'meta.sqlite'}", REQUESTS // 4
        else:
            server = ledger_server(tmp_path, pg_url).start()
            url, n = pg_url, REQUESTS
        try:
            yield server, url, n
        finally:
            server.stop()


def test_concurrent_earnings_and_spendings_with_retries_stay_exact(backend: tuple[LedgerServer, str, int]) -> None:
    server, url, n = backend
    lanes = plan(n, seed=16)
    answers = drive(server, lanes)
    check(server, url, lanes, answers)
