"""The write path into ClickHouse: random logs with identity merges loaded the normal way into a DuckDB workspace
whose events also live in ClickHouse (chdb), every analysis kind equal on both before and after the squash;
chains of merges resolve to the last person; a batch sent twice adds nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from tests.profile.profile_logs import ProfileLog, load_profile_log, profile_logs
from tests.query.logs import event_logs, fresh_project, load, shift
from tests.store.test_clickhouse_parity import DEFINITIONS, SETTINGS, _run, same
from userloop.ingest import load_json_lines
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace
from userloop.store.clickhouse import ClickHouseStore
from userloop.store.clickhouse_ddl import OVERRIDES
from userloop.store.clickhouse_writes import ProjectWrites, attach, writes_of
from userloop.store.mirror import compare_counts
from userloop.store.settings import set_money_property
from userloop.store.sqlbuild import sql, table


@pytest.fixture(scope="module")
def written(ws: Workspace, ch: ClickHouseStore) -> Workspace:
    """The module's workspace with its events written to the module's chdb store as well."""
    attach(ws.events, ch.url, store=ch)
    return ws


def _writes(project: ProjectStore) -> ProjectWrites:
    writes = writes_of(project)
    assert writes is not None
    return writes


def _check_same(duck: ProjectStore, ch: ClickHouseStore) -> None:
    on_duck = Engine(duck, "Asia/Shanghai")
    on_ch = Engine(ch.project(duck.schema), "Asia/Shanghai")
    for definition in DEFINITIONS:
        got, want = _run(on_ch, definition), _run(on_duck, definition)
        assert same(got, want), (definition, got, want)


@SETTINGS
@given(records=event_logs(max_events=40, days=14), days=st.integers(0, 7), chunks=st.integers(1, 4))
def test_every_kind_gives_the_same_numbers_before_and_after_the_squash(
    written: Workspace, ch: ClickHouseStore, records: list, days: int, chunks: int
) -> None:
    _, duck = fresh_project(written)
    load(duck, shift(records, days), chunks=chunks)
    set_money_property(duck, "amount")
    writes = _writes(duck)
    writes.refresh()  # a setting changed outside a load
    assert writes.pending() == 0
    counts = compare_counts(duck, ch.project(duck.schema), ["events", "registry", "event_names"])
    assert all(c.equal for c in counts), counts
    _check_same(duck, ch)
    writes.squash()
    assert writes.pending_overrides() == 0
    _check_same(duck, ch)


def _event(who: str, at: int, eid: str) -> dict[str, Any]:
    props = {"$is_login_id": True} if who.startswith("L") else {}
    return {"type": "track", "event": "view", "distinct_id": who, "time": 1767600000000 + at, "event_id": eid,
            "properties": props}  # fmt: skip


def _bind(who: str, other: str, at: int) -> dict[str, Any]:
    """``who`` and ``other`` (anonymous ids) are one person: the younger person is merged into the older."""
    return {"type": "track_id_bind", "event": "$BindID", "distinct_id": who, "time": 1767600000000 + at,
            "event_id": f"b_{who}_{other}", "identities": {"$identity_anonymous_id": other},
            "properties": {}}  # fmt: skip


def _persons(ch: ClickHouseStore, schema: str) -> dict[str, int]:
    with ch.writer() as s:
        rows = s.fetchall(sql("SELECT event_id, user_id FROM $e ORDER BY event_id", e=table(schema, "events")))
    return dict(rows)


def _duck_persons(duck: ProjectStore) -> dict[str, int]:
    return dict(duck.fetchall(sql("SELECT event_id, user_id FROM $e ORDER BY event_id", e=duck.ref("events"))))


def test_a_chain_of_merges_resolves_to_the_last_person(written: Workspace, ch: ClickHouseStore) -> None:
    _, duck = fresh_project(written)
    # persons by first appearance: a1 → 1, a2 → 2, a3 → 3
    load(duck, [_event("a1", 0, "e1"), _event("a2", 1, "e2"), _event("a3", 2, "e3")])
    load(duck, [_bind("a3", "a2", 3)])  # 3 merged into 2
    load(duck, [_bind("a2", "a1", 4)])  # 2 merged into 1: 3's events now belong to 1
    want = _duck_persons(duck)
    assert set(want.values()) == {1}
    assert _persons(ch, duck.schema) == want
    with ch.writer() as s:  # the events themselves still name their first persons: the overrides resolve them
        stored = dict(s.fetchall(sql("SELECT event_id, user_id FROM $e", e=table(duck.schema, "event_parts"))))
        overrides = s.fetchall(sql("SELECT old_person, argMax(new_person, version) FROM $o GROUP BY 1 ORDER BY 1",
                                   o=table(duck.schema, OVERRIDES)))  # fmt: skip
    assert stored["e3"] == 3 and stored["e2"] == 2
    assert overrides == [(2, 1), (3, 1)]
    assert _writes(duck).squash() == 2
    assert _persons(ch, duck.schema) == want
    with ch.writer() as s:
        stored = dict(s.fetchall(sql("SELECT event_id, user_id FROM $e", e=table(duck.schema, "event_parts"))))
    assert set(stored.values()) == {1}


def test_a_batch_sent_again_adds_nothing(
    written: Workspace, ch: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, duck = fresh_project(written)
    load(duck, [_event("a1", 0, "e1")])
    writes = _writes(duck)
    # a crash after ClickHouse took the batch and before the outbox forgot it: the batch is sent again
    crashed = {"n": 0}
    forget = ProjectWrites._shipped

    def crash(self: ProjectWrites, batch: int) -> None:
        crashed["n"] += 1
        raise OSError("the process ended here")

    monkeypatch.setattr(ProjectWrites, "_shipped", crash)
    lines = [json.dumps(_event("a1", i, f"x{i}")) for i in range(1, 6)]
    load_json_lines(duck, lines, source="test")  # the shipment fails: logged, the batch stays in the outbox
    assert crashed["n"] == 1 and writes.pending() == 1
    monkeypatch.setattr(ProjectWrites, "_shipped", forget)
    assert writes.ship() == 5  # sent again: ClickHouse keeps the first copy only
    assert writes.pending() == 0
    # the same records loaded again (a spool replay) are duplicates for the loader: nothing more is written
    load_json_lines(duck, lines, source="test")
    counts = {c.table: (c.duckdb, c.clickhouse) for c in compare_counts(duck, ch.project(duck.schema), ["events"])}
    assert counts["events"] == (6, 6)


def test_new_properties_reach_clickhouse(written: Workspace, ch: ClickHouseStore) -> None:
    _, duck = fresh_project(written)
    load(duck, [_event("a1", 0, "e1")])
    record = _event("a1", 1, "e2")
    record["properties"]["plan"] = "gold"
    load(duck, [record])
    with ch.writer() as s:
        rows = s.fetchall(sql("SELECT event_id, plan FROM $e ORDER BY event_id", e=table(duck.schema, "events")))
    assert rows == [("e1", None), ("e2", "gold")]


def test_migrate_switch_moves_the_events_and_the_loader_follows(tmp_path: Path, ch: ClickHouseStore) -> None:
    from typer.testing import CliRunner

    from userloop.cli.main import app

    workspace, _ = Workspace.init(tmp_path / "ws")
    load(workspace.project(), [_event("a1", 0, "e1")])
    workspace.close()
    args = ["migrate", "--to", "clickhouse", "--url", ch.url, "--switch", "-w", str(tmp_path / "ws")]
    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["switched"] is True
    with Workspace.open(tmp_path / "ws") as reopened:
        assert reopened.config.events_url == ch.url
        duck = reopened.project()
        load(duck, [_event("a1", 1, "e2"), _event("a2", 2, "e3")])
        assert _persons(ch, duck.schema) == _duck_persons(duck) == {"e1": 1, "e2": 1, "e3": 2}


def _rows(fetch: Any, ref: exp.Table) -> list[tuple[Any, ...]]:
    return sorted(fetch(sql("SELECT * FROM $t", t=ref)), key=repr)


@SETTINGS
@given(log=profile_logs(max_events=30), chunks=st.integers(1, 3))
def test_people_and_identities_match_after_the_squash(
    written: Workspace, ch: ClickHouseStore, log: ProfileLog, chunks: int
) -> None:
    _, duck = fresh_project(written)
    load_profile_log(duck, log, chunks=chunks)
    _writes(duck).squash()
    copy = ch.project(duck.schema)
    for name in ("users", "identities"):
        assert _rows(copy.fetchall, copy.ref(name)) == _rows(duck.fetchall, duck.ref(name)), name


def test_a_load_that_fails_records_nothing(
    written: Workspace, ch: ClickHouseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, duck = fresh_project(written)
    record = ProjectWrites.record

    def fail_after(self: ProjectWrites, *args: Any) -> int:
        record(self, *args)
        raise RuntimeError("the load fails after its batch was recorded")

    monkeypatch.setattr(ProjectWrites, "record", fail_after)
    with pytest.raises(RuntimeError):
        load_json_lines(duck, [json.dumps(_event("a1", 0, "e1"))], source="test")
    monkeypatch.setattr(ProjectWrites, "record", record)
    assert _writes(duck).pending() == 0  # rolled back with the load
    load(duck, [_event("a1", 0, "e1"), _event("a2", 1, "e2")])
    counts = {c.table: (c.duckdb, c.clickhouse) for c in compare_counts(duck, ch.project(duck.schema), ["events"])}
    assert counts["events"] == (2, 2)
