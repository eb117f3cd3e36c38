"""SIGKILL the server during a run of batch earnings and during the expiry job, restart it, send the same requests
again: no entry lost, none doubled (issue #16's crash criterion), on the embedded SQLite metadata database.

Each batch is one transaction and each member's sweep another, so a kill loses at most what was not yet
acknowledged; the request ids (the batch's own, ``$expire:<lot>`` for the job's) make the re-run book exactly what
is missing.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from tests.membership.ledger_server import LedgerServer, ledger_server
from userloop.core.clock import utcnow
from userloop.membership.ledger_tables import PointsEntry, PointsLot

pytestmark = pytest.mark.slow

BATCHES = 12
SIZE = 100


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LedgerServer]:
    srv = ledger_server(tmp_path).start()
    yield srv
    srv.stop()


def _count(server: LedgerServer, *where: Any) -> int:
    engine = create_engine(f"sqlite:///{server.path / 'meta.sqlite'}")
    try:
        with engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(PointsEntry).where(*where)) or 0)
    finally:
        engine.dispose()


def _batch(b: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"op": "earn", "person": (b * SIZE + i) % 700, "amount": 1 + i, "request_id": f"k-{b}-{i}", **extra}
            for i in range(SIZE)]  # fmt: skip


def _send(server: LedgerServer, batches: list[list[dict[str, Any]]], acked: dict[int, list[int]]) -> None:
    """Send the batches in turn until the server stops answering; ``acked``: entry ids by batch."""
    with httpx.Client(timeout=60) as client:
        for b, operations in enumerate(batches):
            try:
                response = server.post(client, "/api/v1/members/points/batch", {"operations": operations})
            except httpx.HTTPError:
                return
            acked[b] = [item["posted"]["entry_id"] for item in response.json()["items"]]


def test_a_kill_during_batch_earnings_loses_and_doubles_nothing(server: LedgerServer) -> None:
    batches = [_batch(b) for b in range(BATCHES)]
    acked: dict[int, list[int]] = {}
    sender = threading.Thread(target=_send, args=(server, batches, acked))
    sender.start()
    while len(acked) < 5 and sender.is_alive():
        time.sleep(0.01)
    server.stop(signal.SIGKILL)
    sender.join()
    assert 5 <= len(acked) < BATCHES, "the kill came after the last batch"
    survived = _count(server)
    assert len(acked) * SIZE <= survived < BATCHES * SIZE
    server.start()
    again: dict[int, list[int]] = {}
    _send(server, batches, again)
    assert len(again) == BATCHES
    assert all(again[b] == ids for b, ids in acked.items())  # the acknowledged ones are the same entries
    assert _count(server) == BATCHES * SIZE
    balance = httpx.get(f"{server.url}/api/v1/members/3/points/balance", headers=server.admin,
                        params={"programme": server.programme}).json()  # fmt: skip
    expected = sum(op["amount"] for ops in batches for op in ops if op["person"] == 3)
    assert balance["spendable"] == expected


def _expire(server: LedgerServer) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/v1/members/points/expire", json={"programme": server.programme},
                          headers=server.admin, timeout=120)  # fmt: skip
    return dict(response.json())


def test_a_kill_during_the_expiry_job_loses_and_doubles_nothing(server: LedgerServer) -> None:
    lapse = utcnow() + timedelta(seconds=6)
    batches = [_batch(b, expires_at=lapse.isoformat()) for b in range(BATCHES)]
    sent: dict[int, list[int]] = {}
    _send(server, batches, sent)
    assert len(sent) == BATCHES and _count(server) == BATCHES * SIZE, "the earnings took longer than their lapse"
    time.sleep(max(0.0, (lapse - utcnow()).total_seconds()) + 0.2)
    expired = PointsEntry.kind == "expire"

    def job() -> None:
        try:
            _expire(server)
        except httpx.HTTPError:
            return  # killed

    running = threading.Thread(target=job)
    running.start()
    while _count(server, expired) == 0 and running.is_alive():
        time.sleep(0.005)
    server.stop(signal.SIGKILL)
    running.join()
    partial = _count(server, expired)
    assert 0 < partial < BATCHES * SIZE, "the kill came after the job ended"
    server.start()
    assert _expire(server)["lots"] == BATCHES * SIZE - partial  # the re-run lapses exactly the rest
    assert _expire(server) == {"members": 0, "lots": 0, "points": 0}
    engine = create_engine(f"sqlite:///{server.path / 'meta.sqlite'}")
    try:
        with engine.connect() as c:
            left = c.scalar(select(func.sum(PointsLot.remaining)))
            lapsed = c.scalar(select(func.sum(PointsEntry.amount)).where(expired))
            lots = c.scalar(select(func.count(func.distinct(PointsEntry.transfer_id))).where(expired))
    finally:
        engine.dispose()
    earned = sum(op["amount"] for ops in batches for op in ops)
    assert (left, -int(lapsed or 0), lots, _count(server, expired)) == (0, earned, BATCHES * SIZE, BATCHES * SIZE)
