"""The nightly maintenance job on a workspace whose events also live in ClickHouse (chdb): a batch left in the
outbox (its shipment failed) is sent, the person overrides are folded into the events, and every analysis kind
still gives DuckDB's numbers; at service start a waiting outbox is sent in the background."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.query.logs import fresh_project, load
from tests.store.test_clickhouse_writes import _bind, _check_same, _duck_persons, _event, _persons, _writes
from userloop.ingest import load_json_lines
from userloop.service.maintenance import maintenance, start_shipping
from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseStore
from userloop.store.clickhouse_writes import ProjectWrites, attach
from userloop.store.mirror import compare_counts


@pytest.fixture(scope="module")
def written(ws: Workspace, ch: ClickHouseStore) -> Workspace:
    attach(ws.events, ch.url, store=ch)
    return ws


def _fail_shipping(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(self: ProjectWrites) -> int:
        raise OSError("ClickHouse is down")

    monkeypatch.setattr(ProjectWrites, "ship", down)


def _lines(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r) for r in records]


def test_the_job_ships_a_waiting_outbox_and_squashes(
    written: Workspace, ch: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, duck = fresh_project(written)
    load(duck, [_event("a1", 0, "e1"), _event("a2", 1, "e2"), _event("a3", 2, "e3")])
    load(duck, [_bind("a3", "a2", 3)])  # overrides wait on ClickHouse: far fewer than a shipment squashes at
    writes = _writes(duck)
    assert writes.pending_overrides() == 1
    with monkeypatch.context() as m:
        _fail_shipping(m)  # the loader logs it; the batches stay in the outbox
        load_json_lines(duck, _lines([_bind("a2", "a1", 4), _event("a3", 5, "e4")]), source="test")
        load_json_lines(duck, _lines([_event("a4", 6, "e5")]), source="test")
    assert writes.pending() == 2
    done = maintenance(written, share=0.5, rows=1_000_000).fn(name)
    assert done["clickhouse"] == {"batches": 2, "events": 3, "persons_squashed": 2}
    assert done["clustered"] is True
    assert writes.pending() == 0 and writes.pending_overrides() == 0
    counts = compare_counts(duck, ch.project(duck.schema), ["events", "registry", "event_names"])
    assert all(c.equal for c in counts), counts
    assert _persons(ch, duck.schema) == _duck_persons(duck)
    _check_same(duck, ch)
    again = maintenance(written, share=0.5, rows=1_000_000).fn(name)  # nothing waits: nothing is sent
    assert again["clickhouse"] == {"batches": 0, "events": 0, "persons_squashed": 0}


def test_service_start_ships_a_waiting_outbox(
    written: Workspace, ch: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, duck = fresh_project(written)
    load(duck, [_event("a1", 0, "e1")])
    with monkeypatch.context() as m:
        _fail_shipping(m)
        load_json_lines(duck, _lines([_event("a1", 1, "e2"), _event("a2", 2, "e3")]), source="test")
    writes = _writes(duck)
    assert writes.pending() == 1
    assert start_shipping(written) is None  # the workspace's config names no events_url: nothing to send to
    monkeypatch.setattr(written.config, "events_url", ch.url)
    thread = start_shipping(written)
    assert thread is not None
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert writes.pending() == 0
    counts = {c.table: (c.duckdb, c.clickhouse) for c in compare_counts(duck, ch.project(duck.schema), ["events"])}
    assert counts["events"] == (3, 3)
    assert writes.pending_overrides() == 0  # nothing to squash here either way
