"""Several processes on ClickHouse + PostgreSQL: the service and two collector processes, each killed under load.

The deployment of issue #18's "many processes" on one machine: the workspace's metadata in a fresh PostgreSQL
database, its events written through to ClickHouse (the chdb HTTP endpoint in its own process, reached with
clickhouse-connect as a server is), the service (``userloop serve``) and two collector processes
(``userloop serve --collector-only NAME``), every one a real process on loopback. SDK clients post to both
collectors; collector ``a`` is SIGKILLed under load, then the service too while collector ``b`` keeps
acknowledging; both come back, the SDKs retry what was never acknowledged and send acknowledged batches again.

What must hold: every acknowledged event is stored exactly once, in DuckDB and in ClickHouse; nothing refused is
stored; the refusals are visible with their reasons. (Journeys' exactly-once delivery with two worker processes
on PostgreSQL is ``tests/engage/test_exactly_once.py``.)
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
import tomli_w

from tests.collect.serving import ONE_SHOT_TLS, Load, Server
from tests.collect.test_durability import BATCH
from tests.store.chdb_endpoint import chdb_endpoint
from tests.store.metadb import meta_url
from userloop.collect.door import MAX_RECORD_BYTES
from userloop.core.clock import utcnow
from userloop.store.clickhouse import ClickHouseStore
from userloop.store.duck import schema_for
from userloop.store.sqlbuild import sql, table
from userloop.store.workspace import CLICKHOUSE_PASSWORD_ENV, CONFIG_FILE, Workspace, WorkspaceConfig

USER = "userloop"
PASSWORD = "collect0rs"

COLLECTOR = """
import sys
from pathlib import Path
from userloop.service.runtime import ServiceConfig
from userloop.api.server import serve
serve(Path(sys.argv[1]), ServiceConfig(port=int(sys.argv[2])), announce=False, collector=sys.argv[3])
"""


@dataclass
class Collector(Server):
    """``userloop serve --collector-only NAME`` in its own process."""

    name: str = "a"

    def start(self) -> Collector:
        self.spawn(COLLECTOR, [str(self.path), str(self.port), self.name])
        return self


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, str]]:
    """A workspace on PostgreSQL whose events go to ClickHouse: (its service, not started; the ClickHouse URL)."""
    from typer.testing import CliRunner

    from userloop.cli.main import app

    with meta_url("postgresql", tmp_path) as url, chdb_endpoint(tmp_path, USER, PASSWORD) as (host, _port):
        path = tmp_path / "ws"
        path.mkdir(mode=0o700)
        (path / CONFIG_FILE).write_text(tomli_w.dumps(WorkspaceConfig(meta_url=url).to_toml()))
        ws = Workspace(path, WorkspaceConfig(meta_url=url))
        try:
            ws.meta.create_all()
            secrets = ws.create_project("default")
            _key, admin = ws.meta.add_key("admin", "collector tests", None)
        finally:
            ws.close()
        ch_url = f"clickhouse://{USER}:{PASSWORD}@{host}/default"
        args = ["migrate", "--to", "clickhouse", "--url", ch_url, "--switch", "-w", str(path)]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        monkeypatch.setenv(CLICKHOUSE_PASSWORD_ENV, PASSWORD)  # the processes' password (not kept in the toml)
        service = Server(path, secrets.write_key, admin)
        try:
            yield service, ch_url
        finally:
            service.stop()  # before its database is dropped


def _batch(client: int, n: int) -> dict[str, object]:
    """Good records with poison the door refuses alone: an oversized record, a case collision in one record."""
    stamp = utcnow().isoformat()
    base = {"type": "track", "event": "load", "timestamp": stamp}
    good = [
        {**base, "anonymousId": f"c{client}-{i % 7}", "messageId": f"c{client}-b{n}-{i}",
         "properties": {"client": client, "n": n}}
        for i in range(BATCH)
    ]  # fmt: skip
    poison: list[dict[str, Any]] = []
    if n % 3 == 1:
        blob = {"blob": "x" * (MAX_RECORD_BYTES + 10)}
        poison = [{**base, "anonymousId": "p", "messageId": f"c{client}-b{n}-big", "properties": blob}]
    elif n % 3 == 2:
        both = {"Casey": 1, "casey": 2}
        poison = [{**base, "anonymousId": "p", "messageId": f"c{client}-b{n}-both", "properties": both}]
    return {"batch": good[: BATCH // 2] + poison + good[BATCH // 2 :]}


def _settled(service: Server, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until the service has loaded everything in its spool and in every collector's."""
    deadline = time.monotonic() + timeout
    with httpx.Client(headers=service.admin, timeout=10) as client:
        while True:
            doc = client.get(service.url + "/api/v1/collector").json()
            spools = [doc, *doc["collectors"]]
            if all(s["durable"] == s["committed"] for s in spools) and len(doc["collectors"]) == 2:
                return doc
            if time.monotonic() > deadline:
                raise TimeoutError(doc)
            time.sleep(0.1)


def _clickhouse_counts(ch_url: str) -> dict[str, int]:
    schema = schema_for("default")
    store = ClickHouseStore(ch_url)
    try:
        with store.writer() as s:
            query = "SELECT e.event_id, count(*) FROM $e AS e WHERE e.event = 'load' GROUP BY e.event_id"
            rows = s.fetchall(sql(query, e=table(schema, "events")))
    finally:
        store.close()
    return {str(r[0]): int(r[1]) for r in rows}


@pytest.mark.slow
def test_killed_collectors_and_service_lose_nothing_acknowledged_and_store_it_once(
    deployment: tuple[Server, str],
) -> None:
    service, ch_url = deployment
    service.start()
    a = Collector(service.path, service.write_key, service.admin_token, name="a")
    b = Collector(service.path, service.write_key, service.admin_token, name="b")
    load = Load(_batch)
    try:
        a.start()
        b.start()
        for client, target in enumerate((a, a, b, b)):
            load.run(client, target)
        time.sleep(2.5)
        a.stop(signal.SIGKILL)  # a collector dies under load: its clients' last batches are never acknowledged
        time.sleep(1.0)
        service.stop(signal.SIGKILL)  # then the service: collector b keeps acknowledging into its spool
        taken_while_down = len(load.acked)
        time.sleep(1.5)
        load.join()
        assert len(load.acked) > taken_while_down, "collector b took nothing while the service was down"
        assert len(load.acked) >= 1000, "the load did not run long enough to mean anything"
        assert any(m.endswith("-big") for m in load.refused) and any(m.endswith("-both") for m in load.refused)

        service.start()
        a.start()
        with httpx.Client(auth=(service.write_key, ""), timeout=30) as http:
            for batch in load.unacked:  # the SDKs retry what was never acknowledged, on either collector
                reply = http.post(a.url + "/v1/batch", json=batch)
                assert reply.status_code == 200, reply.text
                load.record(batch, reply.json())
            for batch in load.first:  # and send acknowledged batches again
                assert http.post(b.url + "/v1/batch", json=batch).status_code == 200
        status = _settled(service)
        rows = service.sql("SELECT event_id, count(*) FROM events WHERE event = 'load' GROUP BY event_id")
        on_clickhouse = _clickhouse_counts(ch_url)
        rejects = httpx.get(
            service.url + "/api/v1/rejects",
            headers=service.admin,
            params={"project": "default", "limit": 10_000},
            verify=ONE_SHOT_TLS,
        ).json()
    finally:
        load.join()
        for process in (a, b, service):
            process.stop()
    on_duckdb = {str(r[0]): int(r[1]) for r in rows}
    for where, counts in (("DuckDB", on_duckdb), ("ClickHouse", on_clickhouse)):
        lost = load.acked - counts.keys()
        assert not lost, f"{len(lost)} acknowledged events are missing on {where}, e.g. {sorted(lost)[:3]}"
        assert set(counts.values()) == {1}, f"some event is stored twice on {where}"
        assert not (load.refused & counts.keys()), f"a refused record was stored on {where}"
    assert status["last_error"] is None and all(c["last_error"] is None for c in status["collectors"])
    assert {c["name"] for c in status["collectors"]} == {"a", "b"}
    reasons = {str(r["reason"]) for r in rejects}
    assert any("limit" in r and "bytes" in r for r in reasons)
    assert any("differs only in case" in r for r in reasons)


def test_a_collector_refuses_a_bad_name_and_a_second_process_under_its_name(tmp_path: Path) -> None:
    from userloop.collect.spool import Spool, SpoolBusyError
    from userloop.core.errors import ValidationError
    from userloop.service.collectors import check_name

    with pytest.raises(ValidationError, match="collector name"):
        check_name("../etc")
    first = Spool(tmp_path / "a", fsync=False)
    try:
        with pytest.raises(SpoolBusyError, match="another process is writing"):
            Spool(tmp_path / "a", fsync=False)
    finally:
        first.close()
    Spool(tmp_path / "a", fsync=False).close()  # free again once the first writer closed it


def test_the_backlog_counts_a_segment_removed_while_it_is_measured_as_loaded(tmp_path: Path) -> None:
    """The loader removes loaded segments while ``/api/v1/collector`` measures the backlog: a segment listed and
    then gone counts as nothing, where its size was a FileNotFoundError (a 500 from the status route)."""
    from userloop.collect.spool import Position, Spool

    spool = Spool(tmp_path / "s", fsync=False)
    try:
        spool.append(b'{"event": "x"}\n' * 3).result()
        listed = spool.segments()
        want = spool.backlog_bytes(Position(min(listed), 0))
        assert want > 0
        gone = max(listed) + 1  # a segment listed a moment ago, removed by the loader since
        with patch.object(Spool, "segments", lambda self: [*listed, gone]):
            assert spool.backlog_bytes(Position(min(listed), 0)) == want
            assert spool.backlog_bytes(Position(gone, 0)) == 0
    finally:
        spool.close()
