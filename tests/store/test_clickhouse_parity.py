"""The ClickHouse backend gives the same numbers as DuckDB: random logs loaded into DuckDB through the real ingest
path, mirrored into ClickHouse's engine in process (chdb), and every analysis kind run on both through the same
Engine; every cell of every result must be equal. Also the mirror's counts and the ClickHouse DDL."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import event_logs, fresh_project, load, shift
from userloop.core.errors import QueryError, ValidationError
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.backend import deadline
from userloop.store.clickhouse import ChSession, ClickHouseStore, chdb_path
from userloop.store.clickhouse_ddl import Column, project_ddl
from userloop.store.mirror import copy_project, duck_columns
from userloop.store.settings import set_money_property
from userloop.store.sqlbuild import sql, table

TODAY = date(2026, 1, 26)
RANGE = {"from": "2026-01-04", "to": "2026-01-25"}
WEEK = {"from": "2026-01-05", "to": "2026-01-11"}
STEPS = [
    {"event": "view"},
    {"event": "cart"},
    {"event": "pay", "filters": [{"property": "amount", "op": "gt", "value": 20}]},
]

#: A few definitions of every kind, over the random logs' events (view, cart, pay, push, other; amount, channel).
DEFINITIONS: list[dict[str, Any]] = [
    {"kind": "trends", "date_range": RANGE, "series": [{"event": "view"}, {"event": "$any", "math": "dau"}]},
    {"kind": "trends", "date_range": RANGE, "interval": "week", "series": [{"event": "pay", "math": "sum",
     "property": "amount"}, {"event": "pay", "math": "median", "property": "amount"}],
     "breakdown": {"property": "channel"}},
    {"kind": "trends", "date_range": RANGE, "series": [{"event": "view", "math": "users"}],
     "filters": [{"property": "channel", "op": "neq", "value": "b"}], "breakdown": {"property": "amount"}},
    {"kind": "funnel", "date_range": WEEK, "steps": STEPS, "window": {"value": 1, "unit": "day"}},
    {"kind": "funnel", "date_range": WEEK, "steps": STEPS, "order": "strict", "window": {"value": 6, "unit": "hour"},
     "breakdown": {"property": "channel"}},
    {"kind": "funnel", "date_range": RANGE, "steps": [{"event": "view"}, {"event": "pay"}, {"event": "cart"}],
     "order": "any", "window": {"value": 3, "unit": "day"}},
    {"kind": "funnel", "date_range": RANGE, "steps": STEPS, "window": {"value": 1, "unit": "week"},
     "people": {"step": 2, "status": "dropped"}, "trend_interval": "week"},
    {"kind": "funnel", "date_range": RANGE, "steps": STEPS, "window": {"value": 3, "unit": "day"},
     "exclusions": [{"event": "push", "from_step": 1, "to_step": 2}, {"event": "other", "from_step": 2, "to_step": 3}]},
    {"kind": "funnel", "date_range": WEEK, "steps": STEPS, "order": "strict", "window": {"value": 1, "unit": "day"},
     "exclusions": [{"event": "push", "from_step": 1, "to_step": 3}], "breakdown": {"property": "channel"}},
    {"kind": "retention", "date_range": RANGE, "start": {"event": "view"}, "return_event": {"event": "$any"},
     "interval": "day", "periods": 7},
    {"kind": "retention", "date_range": RANGE, "start": {"event": "cart"}, "return_event": {"event": "pay"},
     "interval": "week", "periods": 3},
    # first-time cohorts of one event, counted "on" period k: ClickHouse's native retention shape (RETENTION_FN)
    {"kind": "retention", "date_range": RANGE, "start": {"event": "view"}, "interval": "day", "periods": 7},
    {"kind": "retention", "date_range": RANGE, "start": {"event": "$any"}, "interval": "week", "periods": 2,
     "filters": [{"property": "channel", "op": "neq", "value": "b"}]},
    {"kind": "lifecycle", "date_range": RANGE, "event": {"event": "$any"}, "interval": "day"},
    {"kind": "lifecycle", "date_range": RANGE, "event": {"event": "view"}, "interval": "week"},
    {"kind": "stickiness", "date_range": RANGE, "event": {"event": "view"}, "interval": "day"},
    {"kind": "distribution", "date_range": RANGE, "event": {"event": "view"}, "measure": "sum", "property": "amount"},
    {"kind": "distribution", "date_range": RANGE, "event": {"event": "$any"}, "measure": "count"},
    {"kind": "interval", "date_range": RANGE, "from_event": {"event": "view"}, "to_event": {"event": "pay"}},
    {"kind": "ltv", "date_range": RANGE, "value_event": {"event": "pay"}, "math": "sum", "value_property": "amount",
     "days": [1, 7]},
    # the project's money property (set to amount): read from the mirrored settings table
    {"kind": "ltv", "date_range": RANGE, "value_event": {"event": "pay"}, "math": "sum", "days": [3]},
    {"kind": "paths", "date_range": RANGE, "start": {"event": "view"}, "steps": 3},
    {"kind": "attribution", "date_range": RANGE, "target": {"event": "pay"}, "touches": [{"event": "view"},
     {"event": "push"}], "model": "all", "lookback": {"value": 7, "unit": "day"}},
    {"kind": "drilldown", "series": {"event": "view", "math": "users"}, "current": {"last": 7},
     "dimensions": [{"property": "channel"}]},
]  # fmt: skip
SETTINGS = settings(
    max_examples=examples(4), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _run(engine: Engine, definition: dict[str, Any]) -> tuple[Any, Any]:
    try:
        out = engine.run(definition, today=TODAY, use_cache=False)
    except (QueryError, ValidationError) as exc:
        return "error", exc.code
    return out.result, out.warnings


def same(got: Any, want: Any) -> bool:
    """Equal cell by cell. One allowance: two floats may differ in their last bits (relative 1e-12), because a
    sum of floats depends on the order rows are added in, which neither engine fixes (a time-decay credit summed
    over touches: 3.082537943339264 against 3.0825379433392635; a week's GMV of one-decimal amounts: 1469.0
    against 1469.0000000000002 — the order can land one engine exactly on an integer). Counts (integers),
    labels, orders and NULLs are exact, and an integer never equals a float."""
    if isinstance(got, float) and isinstance(want, float):
        if got == want or (math.isnan(got) and math.isnan(want)):
            return True
        return math.isclose(got, want, rel_tol=1e-12)
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(same(got[k], want[k]) for k in got)
    if isinstance(got, list | tuple) and isinstance(want, list | tuple):
        return type(got) is type(want) and len(got) == len(want) and all(map(same, got, want))
    return type(got) is type(want) and got == want


def test_same_is_exact_but_for_the_last_bits_of_fractions() -> None:
    assert same({"a": [1.0, "x", None]}, {"a": [1.0, "x", None]})
    assert same(3.082537943339264, 3.0825379433392635)
    assert same(1469.0, 1469.0000000000002) and not same(3.0, 3.0000001) and not same(3.08, 3.09)
    assert not same(1, 1.0) and not same(1469, 1469.0000000000002) and not same(float("nan"), 0.0)
    assert not same({"a": None}, {"a": 0.0}) and not same(["a"], ["b"]) and not same([1.5], [1.5, 2.0])


@SETTINGS
@given(records=event_logs(max_events=40, days=14), days=st.integers(0, 7))
def test_every_kind_gives_the_same_numbers(ws: Workspace, ch: ClickHouseStore, records: list, days: int) -> None:
    _, duck = fresh_project(ws)
    load(duck, shift(records, days))
    set_money_property(duck, "amount")
    copy_project(duck, ch)
    on_duck = Engine(duck, "Asia/Shanghai")
    on_ch = Engine(ch.project(duck.schema), "Asia/Shanghai")
    for definition in DEFINITIONS:
        got, want = _run(on_ch, definition), _run(on_duck, definition)
        assert same(got, want), (definition, got, want)


def test_the_mirror_counts_every_table_and_month(ws: Workspace, ch: ClickHouseStore) -> None:
    _, duck = fresh_project(ws)
    records = [
        {"type": "track", "event": "view", "distinct_id": f"a{i}", "time": ms, "event_id": f"e{i}",
         "properties": {"amount": float(i), "channel": "a"}}
        for i, ms in enumerate((1767225600000, 1769904000000, 1769904000001))  # 2026-01-01, 2026-02-01 (twice)
    ]  # fmt: skip
    load(duck, records)
    counts = {c.table: (c.duckdb, c.clickhouse) for c in copy_project(duck, ch)}
    assert counts["events"] == (3, 3)
    assert counts["events 2026-01"] == (1, 1) and counts["events 2026-02"] == (2, 2)
    assert counts["identities"] == (3, 3) and counts["registry"][0] >= 2
    # a row the copy lacks is a mismatch, in both languages
    copy = ch.project(duck.schema)
    with ch.writer() as s:
        s.execute(sql("DELETE FROM $t WHERE event_id = 'e0'", t=table(duck.schema, "events")))
    from userloop.store.mirror import compare_counts

    wrong = [c for c in compare_counts(duck, copy, ["events"]) if not c.equal]
    assert [(c.table, c.duckdb, c.clickhouse) for c in wrong] == [("events", 3, 2), ("events 2026-01", 1, 0)]


def test_bound_parameters_become_literals(ch: ClickHouseStore) -> None:
    with ch.session() as s:
        row = s.fetchone(sql("SELECT ? AS a, ? AS b, ? AS c"), ["x'); DROP TABLE t; --", 2, None])
    assert row == ("x'); DROP TABLE t; --", 2, None)


def test_a_url_must_name_an_absolute_folder() -> None:
    assert chdb_path("chdb:///srv/ch") == Path("/srv/ch")
    for bad in ("chdb://relative/x", "clickhouse:///x", "chdb:///"[:-1]):
        with pytest.raises(ValidationError):
            chdb_path(bad)


def test_the_cluster_layout_shards_by_person(ws: Workspace) -> None:
    _, duck = fresh_project(ws)
    tables = duck_columns(duck)
    texts = [s.sql("clickhouse") for s in project_ddl("p_x", tables, cluster="main")]
    for text in texts:
        sqlglot.parse_one(text, read="clickhouse")
    events = [t for t in texts if "`events" in t or '"events' in t]
    assert len(events) == 2, events
    local, front = events
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events', '{replica}')" in local
    assert "PARTITION BY toYYYYMM" in local and "ON CLUSTER" in local
    assert "Distributed('main', 'p_x', 'events_local', cityHash64(" in front and "user_id" in front
    users = next(t for t in texts if "ReplicatedReplacingMergeTree" in t and "/users'" in t)
    assert "users_local" in users
    registry = next(t for t in texts if "/registry'" in t)
    assert "/clickhouse/tables/all/{database}/registry" in registry and "Distributed" not in registry
    # the single-node layout has no replication and no Distributed table
    single = [s.sql("clickhouse") for s in project_ddl("p_x", tables)]
    assert not any("Replicated" in t or "Distributed" in t for t in single)
    assert Column("time", "TIMESTAMP", False) in tables["events"]


def test_the_migrate_command_prints_the_counts(tmp_path: Path, ch: ClickHouseStore) -> None:
    from typer.testing import CliRunner

    from userloop.cli.main import app

    workspace, _ = Workspace.init(tmp_path / "ws")
    load(workspace.project(), [{"type": "track", "event": "view", "distinct_id": "a1", "time": 1767225600000,
                               "event_id": "e1", "properties": {"amount": 2.5}}])  # fmt: skip
    workspace.close()
    # chdb serves one folder per process while any connection is open: the module's store's
    args = ["migrate", "--to", "clickhouse", "--url", ch.url, "-w", str(tmp_path / "ws")]
    result = CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    tables = {r["table"]: (r["duckdb"], r["clickhouse"]) for r in orjson.loads(result.output)["tables"]}
    assert tables["events"] == (1, 1) and tables["events 2026-01"] == (1, 1) and tables["users"] == (1, 1)
    text = CliRunner().invoke(app, args, catch_exceptions=False)
    assert text.exit_code == 0 and "行数一致" in text.output
    bad = CliRunner().invoke(app, [*args[:4], "chdb://relative", *args[5:], "--json"], catch_exceptions=False)
    assert bad.exit_code == 2 and orjson.loads(bad.output)["error"]["code"] == "invalid"


def test_the_migrate_command_prints_the_ddl_of_a_server_or_a_cluster(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from userloop.cli.main import app

    Workspace.init(tmp_path / "ws")[0].close()
    args = ["migrate", "--to", "clickhouse", "-w", str(tmp_path / "ws"), "--ddl-only"]
    single = CliRunner().invoke(app, args, catch_exceptions=False)
    assert single.exit_code == 0, single.output
    assert "ENGINE=MergeTree" in single.output.replace(" = ", "=") and "Replicated" not in single.output
    lines = single.output.splitlines()
    assert lines[0] == 'CREATE DATABASE IF NOT EXISTS "p_default";'
    assert all(line.startswith("CREATE TABLE IF NOT EXISTS") and line.endswith(";") for line in lines[1:])
    cluster = CliRunner().invoke(app, [*args, "--cluster", "main", "--json"], catch_exceptions=False)
    statements = orjson.loads(cluster.output)["statements"]
    events = [t for t in statements if '"events' in t.split("(")[0]]
    assert any("ReplicatedMergeTree" in t and "ON CLUSTER" in t for t in events)
    assert any("Distributed" in t and "cityHash64" in t for t in events)
    missing = CliRunner().invoke(app, [*args[:-1], "--json"], catch_exceptions=False)
    assert missing.exit_code == 2 and orjson.loads(missing.output)["error"]["code"] == "invalid"


def _under_deadline(session: ChSession, timeout_s: float, statement: str, *, watched: bool = True) -> None:
    with deadline(timeout_s) as watch:
        if watched:
            watch.watch(session)
        session.execute(sql(statement))


def test_a_deadline_stops_a_clickhouse_session(ch: ClickHouseStore) -> None:
    """chdb cannot stop a running statement: the one running finishes, its result is dropped, and the user reads
    the timeout, as on DuckDB; the session runs nothing after."""
    with ch.session() as s:
        with pytest.raises(QueryError) as caught:
            _under_deadline(s, 0.2, "SELECT sleep(1)")
        assert caught.value.code == "query_timeout"
        with pytest.raises(QueryError) as again:
            _under_deadline(s, 5, "SELECT 1", watched=False)
        assert again.value.code == "query"


def test_a_funnel_exclusion_at_the_same_instant_as_a_step(ws: Workspace, ch: ClickHouseStore) -> None:
    _, duck = fresh_project(ws)
    at = 1767950000000
    load(duck, [
        {"type": "track", "event": e, "distinct_id": "a1", "time": at + dt, "event_id": eid, "properties": {}}
        for e, dt, eid in (("view", 0, "e1"), ("cart", 60_000, "e2"), ("pay", 120_000, "e3"), ("push", 120_000, "e4"))
    ])  # fmt: skip
    copy_project(duck, ch)
    definition = {"kind": "funnel", "date_range": RANGE, "steps": [*STEPS[:2], {"event": "pay"}],
                  "exclusions": [{"event": "push", "from_step": 1, "to_step": 3}]}  # fmt: skip
    want = _run(Engine(duck, "Asia/Shanghai"), definition)
    assert want[0]["converted"] == 1
    assert same(_run(Engine(ch.project(duck.schema), "Asia/Shanghai"), definition), want)


def test_the_native_retention_shape_is_chosen_by_capability(ws: Workspace, ch: ClickHouseStore) -> None:
    """ClickHouse counts first-time retention of one event with ``sumForEach`` (Capability.RETENTION_FN), DuckDB
    with its own statement; any other retention stays generic on both (the random parity above holds the numbers
    equal)."""
    from userloop.query.kinds import parse_definition

    _, duck = fresh_project(ws)
    copy_project(duck, ch)
    on_ch = Engine(ch.project(duck.schema), "Asia/Shanghai")
    one_event = {"kind": "retention", "date_range": RANGE, "start": {"event": "$any"}, "interval": "day"}
    two_events = {**one_event, "return_event": {"event": "$any", "filters": [{"property": "event", "op": "eq",
                                                                              "value": "view"}]}}  # fmt: skip
    native = parse_definition(one_event).statements(on_ch.context(TODAY))["cells"]
    assert "sumForEach" in ch.render(native)
    assert "sumForEach" not in ch.render(parse_definition(two_events).statements(on_ch.context(TODAY))["cells"])
    assert "sumForEach" not in "".join(Engine(duck, "Asia/Shanghai").compile(one_event, today=TODAY).values())


def test_native_retention_at_period_edges(ws: Workspace, ch: ClickHouseStore) -> None:
    """The native retention's edges, named: a first event at a local midnight (a period's first instant) and one an
    instant before it, two events at one instant, a person whose first event lies before the range (in no cohort),
    a return in the last followed period and one just after it."""
    _, duck = fresh_project(ws)
    midnight = 1767542400000  # 2026-01-05 00:00 Asia/Shanghai: a Monday, the first day of RANGE's second week
    day = 86_400_000
    at = [("a", midnight), ("a", midnight), ("a", midnight + 7 * day - 1), ("a", midnight + 14 * day),
          ("b", midnight - 1), ("b", midnight + day), ("c", midnight - 10 * day), ("c", midnight + 2 * day),
          ("d", midnight + 21 * day - 1), ("d", midnight + 21 * day)]  # fmt: skip
    load(duck, [{"type": "track", "event": "view", "distinct_id": who, "time": ms, "event_id": f"e{i}",
                 "properties": {}} for i, (who, ms) in enumerate(at)])  # fmt: skip
    copy_project(duck, ch)
    for interval, periods in (("day", 7), ("week", 2), ("week", 1), ("month", 1)):
        definition = {"kind": "retention", "date_range": {"from": "2026-01-01", "to": "2026-01-25"},
                      "start": {"event": "view"}, "interval": interval, "periods": periods}  # fmt: skip
        want = _run(Engine(duck, "Asia/Shanghai"), definition)
        assert sum(c["size"] for c in want[0]["cohorts"]) == 3, want  # a, b, d; c started before the range
        assert same(_run(Engine(ch.project(duck.schema), "Asia/Shanghai"), definition), want), (definition, want)
