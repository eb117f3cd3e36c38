"""Points ledger benchmark: ledger operations per second through the API of a running ``userloop`` server on
PostgreSQL, single requests and the batch endpoint, against bare INSERTs of the same rows in the same run.

    python -m bench.membership.ledger [--requests 10000] [--threads 16] [--batch 500] [--quick]

Figures (one JSON line each, see bench/harness.py), each with the load average when it was taken:

- ``single_ops_per_s``: ``--requests`` earn (55%) and spend (45%) requests for 2,000 people, one operation per
  HTTP request (``POST /api/v1/members/{person}/points/{earn|spend}``), from ``--threads`` client threads with
  a connection each; refused spends (409, beyond the balance) count as operations, as they were answered.
- ``batch_ops_per_s``: the same mix of operations (new request ids) through ``POST /api/v1/members/points/batch``
  in batches of ``--batch``, from four client threads.
- the reference of each: the very rows the run booked (its entries, lots and allocations, read back afterwards)
  inserted bare into the same tables of a fresh database of the same schema, ``psycopg`` ``executemany`` in
  transactions of ``--batch`` operations; ``ratio`` = bare operations/s ÷ the API's. Bar (issue #16): >= 2,000
  operations/s through the API.

``--quick``: 2,000 requests (a smoke run). Exactness under this load (balances, no duplicate, never negative) is
the test ``USERLOOP_MEMBERSHIP_REQUESTS=10000 pytest tests/membership/test_ledger_concurrency.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bench.harness import report
from sqlalchemy import create_engine, select
from tests.membership.ledger_server import LedgerServer, ledger_server
from tests.store.metadb import meta_url

from userloop.membership.ledger_tables import PointsAllocation, PointsEntry, PointsLot
from userloop.store.meta import Base

PEOPLE = 2000


def _operations(n: int, prefix: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    ops = []
    for i in range(n):
        kind = "earn" if rng.random() < 0.55 else "spend"
        ops.append({"op": kind, "person": rng.randrange(PEOPLE), "amount": rng.randint(1, 100),
                    "request_id": f"{prefix}-{i}"})  # fmt: skip
    return ops


def _in_threads(threads: int, work: Sequence[Any], fn: Any) -> float:
    """Run ``fn(client, item)`` over ``work`` from ``threads`` threads; the wall time in seconds."""
    lanes = [work[t::threads] for t in range(threads)]

    def lane(items: Sequence[Any]) -> None:
        with httpx.Client(timeout=120) as client:
            for item in items:
                fn(client, item)

    workers = [threading.Thread(target=lane, args=(items,)) for items in lanes]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def run_single(server: LedgerServer, ops: list[dict[str, Any]], threads: int) -> float:
    statuses: list[int] = []

    def send(client: httpx.Client, op: dict[str, Any]) -> None:
        body = {"amount": op["amount"], "request_id": op["request_id"]}
        statuses.append(server.post(client, f"/api/v1/members/{op['person']}/points/{op['op']}", body).status_code)

    seconds = _in_threads(threads, ops, send)
    assert set(statuses) <= {201, 409}, set(statuses)
    return seconds


def run_batches(server: LedgerServer, ops: list[dict[str, Any]], size: int) -> float:
    batches = [ops[i : i + size] for i in range(0, len(ops), size)]

    def send(client: httpx.Client, batch: list[dict[str, Any]]) -> None:
        response = server.post(client, "/api/v1/members/points/batch", {"operations": batch})
        assert response.status_code == 200, response.text

    return _in_threads(4, batches, send)


def bare_inserts(url: str, fresh_url: str, prefix: str, size: int) -> tuple[int, float]:
    """Insert the rows the run booked under ``prefix`` into a fresh database: (operations, seconds)."""
    engine = create_engine(url)
    with engine.connect() as c:
        entries = c.execute(select(PointsEntry.__table__).where(PointsEntry.request_id.like(f"{prefix}-%"))).all()
        ids = [e.id for e in entries]
        lots = c.execute(select(PointsLot.__table__).where(PointsLot.entry_id.in_(ids))).all()
        allocations = c.execute(select(PointsAllocation.__table__).where(PointsAllocation.entry_id.in_(ids))).all()
    engine.dispose()
    target = create_engine(fresh_url)
    names = ("projects", "points_entries", "points_lots", "points_allocations")
    Base.metadata.create_all(target, tables=[t for t in Base.metadata.sorted_tables if t.name in names])
    target.dispose()
    raw = fresh_url.replace("postgresql+psycopg://", "postgresql://", 1)
    tables = [("points_entries", entries), ("points_lots", lots), ("points_allocations", allocations)]
    with psycopg.connect(raw) as conn:
        conn.execute("INSERT INTO projects (id, name, timezone, max_future_seconds, max_past_days, created_at) "
                     "VALUES (1, 'p', 'UTC', 0, 0, now())")  # fmt: skip
        # a spending of this run may draw on a lot of the other run: the foreign keys are not checked here
        conn.execute("SET session_replication_role = replica")
        conn.commit()
        start = time.perf_counter()
        for table, rows in tables:
            if not rows:
                continue
            columns = list(rows[0]._fields)
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
            values = [tuple(1 if k == "project_id" else v for k, v in zip(columns, row, strict=True)) for row in rows]
            with conn.cursor() as cur:
                for i in range(0, len(values), size):
                    cur.executemany(sql, values[i : i + size])
                    conn.commit()
        seconds = time.perf_counter() - start
    return len(entries), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else args.requests
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        with meta_url("postgresql", tmp) as url, meta_url("postgresql", tmp) as fresh_single, \
                meta_url("postgresql", tmp) as fresh_batch:  # fmt: skip
            server = ledger_server(tmp, url).start()
            try:
                figures = [
                    ("single_ops_per_s", "s", run_single(server, _operations(n, "s", 1), args.threads), fresh_single),
                    ("batch_ops_per_s", "b", run_batches(server, _operations(n, "b", 2), args.batch), fresh_batch),
                ]
            finally:
                server.stop()
            for figure, prefix, seconds, fresh in figures:
                booked, bare_seconds = bare_inserts(url, fresh, prefix, args.batch)
                api, bare = n / seconds, booked / bare_seconds
                report("membership_ledger", figure, api, "ops/s", requests=n, booked=booked,
                       reference="bare executemany of the booked rows", reference_value=bare,
                       ratio=bare / api, target=">= 2000", load=os.getloadavg()[0])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
