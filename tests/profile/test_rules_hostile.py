"""Hostile segment rules: whatever JSON arrives, the compiler answers with a statement that runs (bounded by a
timeout) or refuses with a ValidationError that says why — never another error — and names and values never
change the statement's shape."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.profile.profile_logs import load_profile_log
from tests.profile.reference_rules import Snapshots, TagRef, World, install
from tests.profile.test_rules import NAMED_LOG, TAGS, TIERS, profile, track
from tests.query.logs import fresh_project
from userloop.core.errors import ValidationError
from userloop.profile.rules import MAX_RAW_DEPTH
from userloop.profile.rulesql import RuleContext, TagInfo, compile_rule, model_fields
from userloop.query.compile import render
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

TODAY = date(2026, 3, 10)
NASTY = [
    "view",
    "pay",
    "$any",
    "amount",
    "channel",
    "city",
    "tier",
    "test",
    "'; DROP TABLE events; --",
    '"; DROP TABLE users; --',
    '" OR 1=1 --',
    "x\\'",
    "ʼ",
    "上海",
    "\x00",
    "a\x00b",
    "a" * 1001,
    "🙂",
    "event",
    "user_id",
    "2026-03-01",
    "0001-01-01",
    "9999-12-31",
    "2026-03-01 10:00:00",
]
KEYS = sorted(
    {"all", "any", "not", "type", "property", "op", "value", "tag", "on", "days_ago", "model", "field", "segment",
     "member", "event", "filters", "source", "did", "count", "sum", "window", "from", "to", "last", "include_today",
     "steps", "within", "unit", "weeks", "min", "of", "days", "gap_days", "name"}
)  # fmt: skip
WORDS = ["property", "tag", "model", "segment", "event", "first_time", "sequence", "regular", "stopped",
         "restarted", "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "is_set",
         "in_last_days", "anniversary_in_next_days", "minute", "hour", "day", "user"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.integers(-5, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
        max_leaves=20,
    )


#: One valid rule per condition type over the fixture's data.
BASES: list[dict[str, Any]] = [
    {"type": "property", "property": "city", "op": "in", "value": ["上海", "北京"]},
    {"type": "property", "property": "birthday", "op": "anniversary_in_next_days", "value": 7},
    {"type": "tag", "tag": "tier", "op": "gte", "value": "mid", "on": {"days_ago": 3}},
    {"type": "model", "model": "test", "field": "prob", "op": "between", "value": [0.1, 0.9]},
    {"type": "segment", "segment": 7, "member": False, "on": "2026-03-05"},
    {"type": "event", "event": "pay", "filters": [{"property": "amount", "op": "gt", "value": 10}],
     "sum": {"property": "amount", "op": "gte", "value": 50}, "window": {"last": 30}},
    {"type": "first_time", "event": "view", "window": {"from": "2026-03-01", "to": "2026-03-10"}},
    {"type": "sequence", "steps": [{"event": "cart"}, {"event": "pay", "filters": [{"property": "channel",
     "op": "neq", "value": "a"}]}], "within": {"value": 2, "unit": "hour"}, "window": {"last": 7}},
    {"type": "regular", "event": "$any", "weeks": {"min": 2, "of": 4}},
    {"type": "stopped", "event": "view", "days": 20},
    {"type": "restarted", "event": "view", "days": 7, "gap_days": 30},
    {"all": [{"any": [{"not": {"type": "property", "property": "vip", "value": True}}]}]},
]  # fmt: skip


def _paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [path] + [p for k, v in doc.items() for p in _paths(v, (*path, k))]
    if isinstance(doc, list):
        return [path] + [p for i, v in enumerate(doc) for p in _paths(v, (*path, i))]
    return [path]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid rule with one part replaced by something hostile (or one key added)."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    how = draw(st.integers(0, 9))
    paths = [p for p in _paths(doc) if p]
    if how < 6:  # most often a hostile scalar where a scalar was, so the rule still compiles and runs
        paths = [p for p in paths if not isinstance(_at(doc, p), dict | list)]
    if how < 4:  # and most often where a value or an event name goes, which reaches the SQL
        paths = [p for p in paths if {"value", "event"} & set(p)] or paths
    path = draw(st.sampled_from(paths))
    target = _at(doc, path[:-1])
    if how == 9 and isinstance(target, dict):
        target[draw(st.sampled_from(KEYS))] = draw(json_values())
    else:
        target[path[-1]] = draw(_like(target[path[-1]]) if how < 6 else json_values())
    return doc


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Hostile scalars of the same kind as ``value`` (so the rule often still compiles)."""
    if isinstance(value, str):
        return st.one_of(st.sampled_from(NASTY), st.text(max_size=8))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return st.one_of(st.integers(-(10**30), 10**30), st.integers(-5, 40), st.floats())
    return SCALARS


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def random_rules(draw: st.DrawFn) -> Any:
    """Groups and conditions of random shape, with random JSON where values go."""
    leaf = st.fixed_dictionaries(
        {"type": st.sampled_from([*WORDS[:10], "nope"])},
        optional={k: json_values() for k in ("property", "op", "value", "tag", "event", "window", "count", "on",
                                             "model", "field", "segment", "steps", "within", "weeks", "days")},
    )  # fmt: skip
    return draw(
        st.recursive(
            st.one_of(leaf, json_values()),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3).map(lambda xs: {"all": xs}),
                st.lists(inner, max_size=3).map(lambda xs: {"any": xs}),
                inner.map(lambda x: {"not": x}),
            ),
            max_leaves=6,
        )
    )


# the fixture project ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProjectStore, RuleContext]]:
    ws, _ = Workspace.init(tmp_path_factory.mktemp("hostile_rules") / "ws")
    _, project = fresh_project(ws, "Asia/Shanghai")
    log = copy.deepcopy(NAMED_LOG)
    log.events.append(track("a7", "pay", "2026-03-02 10:00", "e99", amount=5, channel="a"))
    log.profiles.append(profile("a7", 9, city="'; DROP TABLE users; --"))
    load_profile_log(project, log)
    w = World("Asia/Shanghai", TODAY, [], {})
    w.tags = {"tier": TagRef("enum", TIERS, Snapshots([(date(2026, 3, 1), {"L1": "low"})]))}
    w.models = {"test": [(date(2026, 3, 1), {"L1": {"prob": 0.5, "tier": "x", "flag": True}})]}
    w.model_kinds = {"test": {"prob": "number", "tier": "string", "flag": "bool"}}
    w.segments = {7: Snapshots([(date(2026, 3, 1), {"L1": True})])}
    install(project, w)
    rctx = RuleContext(
        ctx=Engine(project, "Asia/Shanghai").context(TODAY),
        tags={"tier": TAGS["tier"]},
        models=model_fields(project),
        segments={7},
    )
    yield project, rctx
    ws.close()


def tables(project: ProjectStore) -> list[tuple[Any, ...]]:
    with project.store.lock:
        return project.con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = ? ORDER BY 1", [project.schema]
        ).fetchall()


def run_bounded(project: ProjectStore, text: str, seconds: float = 10.0) -> None:
    """Run ``text`` on a cursor that a timer interrupts after ``seconds`` (an interrupted run is bounded)."""
    with project.store.lock:
        cursor = project.con.cursor()
    timer = threading.Timer(seconds, cursor.interrupt)
    timer.start()
    try:
        cursor.execute(text).fetchall()
    except duckdb.InterruptException:
        pass
    finally:
        timer.cancel()
        cursor.close()


def answered_or_refused(project: ProjectStore, rctx: RuleContext, rule: Any) -> str | None:
    """The SQL the rule ran, or None when it was refused (with a message)."""
    try:
        tree = compile_rule(rule, rctx)
    except ValidationError as exc:
        refused: ValidationError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.message and "Traceback" not in refused.message
        return None
    text = render(tree)
    assert len(sqlglot.parse(text, read="duckdb")) == 1, text
    run_bounded(project, text)
    return text


SETTINGS = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rule=mutated())
def test_hostile_parts_in_valid_rules(hostile: tuple[ProjectStore, RuleContext], rule: dict[str, Any]) -> None:
    project, rctx = hostile
    before = tables(project)
    answered_or_refused(project, rctx, rule)
    assert tables(project) == before


@SETTINGS
@given(rule=random_rules())
def test_random_json_is_answered_or_refused(hostile: tuple[ProjectStore, RuleContext], rule: Any) -> None:
    project, rctx = hostile
    answered_or_refused(project, rctx, rule)


def test_every_base_rule_runs(hostile: tuple[ProjectStore, RuleContext]) -> None:
    project, rctx = hostile
    for rule in BASES:
        assert answered_or_refused(project, rctx, rule) is not None, rule


INJECTIONS = ["'; DROP TABLE events; --", '"; DROP TABLE users; --', "x' OR '1'='1", "\x00", "\\'"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_values_and_event_names_stay_literals(hostile: tuple[ProjectStore, RuleContext], text: str) -> None:
    project, rctx = hostile
    before = tables(project)
    for rule in (
        {"type": "property", "property": "city", "op": "in", "value": [text, "北京"]},
        {"type": "property", "property": "city", "op": "contains", "value": text},
        {"type": "event", "event": text, "window": {"last": 30}},
        {"type": "event", "event": "pay", "filters": [{"property": "channel", "value": text}], "window": {"last": 9}},
        {"type": "tag", "tag": "tier", "op": "not_in", "value": [text]},
        {"type": "model", "model": "test", "field": "tier", "op": "eq", "value": text},
        {"type": "sequence", "steps": [{"event": text}, {"event": "pay"}], "within": {"value": 1, "unit": "day"},
         "window": {"last": 9}},
    ):  # fmt: skip
        assert answered_or_refused(project, rctx, rule) is not None
    assert tables(project) == before


def test_the_stored_hostile_value_is_found_as_a_value(hostile: tuple[ProjectStore, RuleContext]) -> None:
    project, rctx = hostile
    rule = {"type": "property", "property": "city", "value": "'; DROP TABLE users; --"}
    names = dict(
        project.con.execute(f"SELECT user_id, first_id FROM {project.table('users')}").fetchall()
    )  # fmt: skip
    with project.store.lock:
        rows = project.con.execute(render(compile_rule(rule, rctx))).fetchall()
    assert [names[r[0]] for r in rows] == ["a7"]


@pytest.mark.parametrize("text", INJECTIONS)
def test_names_are_refused_or_quoted(hostile: tuple[ProjectStore, RuleContext], text: str) -> None:
    _, rctx = hostile
    for rule in (
        {"type": "property", "property": text, "value": 1},
        {"type": "tag", "tag": text, "value": 1},
        {"type": "model", "model": text, "field": "prob", "value": 1},
        {"type": "model", "model": "test", "field": text, "value": 1},
        {"type": "event", "event": "pay", "filters": [{"property": text, "value": 1}], "window": {"last": 9}},
        {"type": "event", "event": "pay", "sum": {"property": text, "value": 1}, "window": {"last": 9}},
    ):
        with pytest.raises(ValidationError):
            compile_rule(rule, rctx)
    # a context that knows odd names (a lead's bug, say) still quotes them: the statement keeps its shape
    odd = RuleContext(
        ctx=rctx.ctx, tags={text: TagInfo("string")}, models={text: {text: "string"}}, segments=rctx.segments
    )
    tree = compile_rule({"type": "model", "model": text, "field": text, "value": "x"}, odd)
    assert len(sqlglot.parse(render(tree), read="duckdb")) == 1
    with pytest.raises(ValidationError, match="history table"):
        compile_rule({"type": "tag", "tag": text, "value": "x"}, odd)


def test_deep_and_wide_input_is_refused_before_it_is_read(hostile: tuple[ProjectStore, RuleContext]) -> None:
    _, rctx = hostile
    deep: Any = {"type": "segment", "segment": 7}
    for _ in range(10_000):
        deep = {"not": deep}
    with pytest.raises(ValidationError, match="nests more than"):
        compile_rule(deep, rctx)
    nested_value: Any = 1
    for _ in range(MAX_RAW_DEPTH + 1):
        nested_value = [nested_value]
    with pytest.raises(ValidationError, match="nests more than"):
        compile_rule({"type": "property", "property": "city", "op": "in", "value": nested_value}, rctx)
    with pytest.raises(ValidationError, match="at most 1000"):
        compile_rule({"type": "property", "property": "city", "op": "in", "value": ["x"] * 1001}, rctx)
    with pytest.raises(ValidationError, match="finite"):
        compile_rule({"type": "property", "property": "age", "value": float("nan")}, rctx)
    with pytest.raises(ValidationError, match="at most 1e"):
        compile_rule({"type": "property", "property": "age", "value": 10**40}, rctx)
