"""SIGKILL during sustained load: every acknowledged event is stored exactly once, retries add nothing."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.collect.serving import new_server

CLIENTS = 4
BATCH = 50


def _batch(client: int, n: int) -> dict[str, object]:
    stamp = datetime.now(UTC).isoformat()
    return {
        "batch": [
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
    }


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event_and_retries_do_not_duplicate(tmp_path: Path) -> None:
    server = new_server(tmp_path).start()
    acked: set[str] = set()
    unacked: list[dict[str, object]] = []
    first: list[dict[str, object]] = []  # acknowledged batches to send again, byte for byte, as an SDK retry does
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(auth=(server.write_key, ""), timeout=10) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                batch = _batch(c, n)
                try:
                    ok = http.post(server.url + "/v1/batch", json=batch).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok and n == 0:
                        first.append(batch)
                    if ok:
                        acked.update(str(m["messageId"]) for m in batch["batch"])  # type: ignore[attr-defined]
                    else:
                        unacked.append(batch)
                if not ok:
                    return

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    server.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 1000, "the load did not run long enough to mean anything"

    server.start()
    try:
        with httpx.Client(auth=(server.write_key, ""), timeout=30) as http:
            for batch in unacked:  # the SDK retries what was never acknowledged
                assert http.post(server.url + "/v1/batch", json=batch).status_code == 200
            for batch in first:  # and a retry of acknowledged batches
                assert http.post(server.url + "/v1/batch", json=batch).status_code == 200
        rows = server.sql("SELECT event_id, count(*) FROM events WHERE event = 'load' GROUP BY event_id")
    finally:
        server.stop()
    counts = {str(r[0]): int(r[1]) for r in rows}
    assert acked <= counts.keys(), f"{len(acked - counts.keys())} acknowledged events were lost"
    assert set(counts.values()) == {1}, "some event is stored twice"
    retried = {str(m["messageId"]) for b in unacked for m in b["batch"]}  # type: ignore[attr-defined]
    assert retried <= counts.keys()
