"""SIGKILL during sustained load: every acknowledged event is stored exactly once, retries add nothing.

The load carries poison too: records over the size limit, property names that differ only in case from
existing ones (or from another in the same record), and records with a thousand new property names (past the
project's cap soon). Those are refused, alone, and never stored; everything else acknowledged is stored once.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collect.serving import Load, new_server
from userloop.collect.door import MAX_RECORD_BYTES

CLIENTS = 4
BATCH = 50


def _poison(client: int, n: int, stamp: str) -> list[dict[str, Any]]:
    """Hostile messages for batch ``n``: oversized, case collisions, or many new property names, in turn."""
    base = {"type": "track", "event": "load", "anonymousId": f"c{client}-p", "timestamp": stamp}
    kind = n % 4
    if kind == 1:
        return [{**base, "messageId": f"c{client}-b{n}-big", "properties": {"blob": "x" * (MAX_RECORD_BYTES + 10)}}]
    if kind == 2:
        return [
            {**base, "messageId": f"c{client}-b{n}-upper", "properties": {"CLIENT": client}},
            {**base, "messageId": f"c{client}-b{n}-both", "properties": {"Casey": 1, "casey": 2}},
        ]
    if kind == 3:
        names = {f"w{client}_{n}_{i}": i for i in range(1000)}
        return [{**base, "messageId": f"c{client}-b{n}-wide", "properties": names}]
    return []


def _batch(client: int, n: int) -> dict[str, object]:
    stamp = datetime.now(UTC).isoformat()
    good = [
        {
            "type": "track",
            "event": "load",
            "anonymousId": f"c{client}-{i % 7}",
            "messageId": f"c{client}-b{n}-{i}",
            "timestamp": stamp,
            "properties": {"client": client, "n": n},
        }
        for i in range(BATCH)
    ]
    poison = _poison(client, n, stamp)
    return {"batch": good[: BATCH // 2] + poison + good[BATCH // 2 :]}


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event_and_retries_do_not_duplicate(tmp_path: Path) -> None:
    server = new_server(tmp_path).start()
    load = Load(_batch)
    for c in range(CLIENTS):
        load.run(c, server)
    time.sleep(2.5)
    server.stop(signal.SIGKILL)
    load.join()
    acked, refused = load.acked, load.refused
    assert len(acked) >= 1000, "the load did not run long enough to mean anything"
    assert any(m.endswith("-big") for m in refused) and any(m.endswith("-upper") for m in refused)

    server.start()
    try:
        with httpx.Client(auth=(server.write_key, ""), timeout=30) as http:
            for batch in load.unacked:  # the SDK retries what was never acknowledged
                reply = http.post(server.url + "/v1/batch", json=batch)
                assert reply.status_code == 200
                load.record(batch, reply.json())
            for batch in load.first:  # and a retry of acknowledged batches
                assert http.post(server.url + "/v1/batch", json=batch).status_code == 200
        rows = server.sql("SELECT event_id, count(*) FROM events WHERE event = 'load' GROUP BY event_id")
        status = server.settle()
        rejects = httpx.get(
            server.url + "/api/v1/rejects", headers=server.admin, params={"project": "default", "limit": 10_000}
        ).json()
    finally:
        server.stop()
    counts = {str(r[0]): int(r[1]) for r in rows}
    lost = acked - counts.keys()
    assert not lost, f"{len(lost)} acknowledged events were lost, e.g. {sorted(lost)[:3]}"
    assert set(counts.values()) == {1}, "some event is stored twice"
    assert not (refused & counts.keys()), "a refused record was stored"
    assert status["last_error"] is None
    reasons = {str(r["reason"]) for r in rejects}
    assert any("limit" in r and "bytes" in r for r in reasons)
    assert any("differs only in case" in r for r in reasons)
    assert any("past its limit of 2000 event properties" in r for r in reasons)
