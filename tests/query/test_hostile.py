"""Hostile definitions: whatever JSON arrives, the engine answers or refuses with a reason — it never fails with
an internal error, never runs unbounded, and names and values never change a statement's shape."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import fresh_project, load
from userloop.core.errors import QueryError, ValidationError
from userloop.query.engine import Engine
from userloop.query.kinds import KINDS, kind_names
from userloop.store import Workspace
from userloop.store.sqlbuild import sql

NASTY = [
    "view",
    "$any",
    "amount",
    "channel",
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "x\\'",
    "ʼ",
    "\x00",
    "a" * 300,
    "$os",
    "event",
    "user_id",
]


def _field_names() -> list[str]:
    names: set[str] = set()
    for kind in KINDS:
        for name, f in kind.model_fields.items():
            names.add(f.alias or name)
    return sorted(names | {"event", "filters", "property", "op", "value", "source", "from", "to", "last", "step",
                           "unit", "math", "name", "bins", "limit", "status"})  # fmt: skip


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY),
    st.sampled_from(
        ["day", "week", "month", "hour", "eq", "in", "between", "sum", "users", "2026-01-05", "2026-01-25"]
    ),
)


def _json(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(keys), inner, max_size=5)),
        max_leaves=25,
    )


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    keys = _field_names()
    doc = draw(st.dictionaries(st.sampled_from(keys), _json(keys), max_size=8))
    doc["kind"] = draw(st.sampled_from([*kind_names(), "nope"]))
    return doc


#: One valid definition per kind over the fixture's events (view, pay; amount, channel).
BASES: list[dict[str, Any]] = [
    {"kind": "trends", "series": [{"event": "view", "math": "sum", "property": "amount"}],
     "breakdown": {"property": "channel"}, "filters": [{"property": "amount", "op": "gt", "value": 1}]},
    {"kind": "funnel", "steps": [{"event": "view"}, {"event": "pay", "filters": [{"property": "amount",
     "op": "between", "value": [1, 50]}]}], "window": {"value": 1, "unit": "day"},
     "breakdown": {"property": "channel"}},
    {"kind": "retention", "start": {"event": "view"}, "return_event": {"event": "$any"}, "interval": "week",
     "periods": 4},
    {"kind": "paths", "start": {"event": "view"}, "steps": 3},
    {"kind": "lifecycle", "event": {"event": "$any"}, "interval": "day"},
    {"kind": "stickiness", "event": {"event": "view"}, "interval": "day"},
    {"kind": "distribution", "event": {"event": "view"}, "measure": "sum", "property": "amount"},
    {"kind": "interval", "from_event": {"event": "view"}, "to_event": {"event": "pay"}},
    {"kind": "attribution", "target": {"event": "pay"}, "touches": [{"event": "view"}], "model": "all",
     "lookback": {"value": 7, "unit": "day"}},
    {"kind": "ltv", "value_event": {"event": "pay"}, "math": "sum", "value_property": "amount", "days": [1, 7]},
    {"kind": "drilldown", "series": {"event": "view", "math": "users"}, "current": {"last": 7},
     "dimensions": [{"property": "channel"}]},
]  # fmt: skip


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [path] + [p for k, v in doc.items() for p in _leaves(v, (*path, k))]
    if isinstance(doc, list):
        return [path] + [p for i, v in enumerate(doc) for p in _leaves(v, (*path, i))]
    return [path]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid definition with one part replaced by something hostile."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    path = draw(st.sampled_from([p for p in _leaves(doc) if p and p != ("kind",)]))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(_json(_field_names()))
    return doc


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from tests.query.test_trends import _ev

    ws, _ = Workspace.init(tmp_path_factory.mktemp("hostile") / "ws")
    _, project = fresh_project(ws)
    load(project, [_ev(1, "a0", "view", 0, channel="a", amount=3.0), _ev(2, "L0", "pay", 1, amount=9.0)])
    yield Engine(project, "Asia/Shanghai")
    ws.close()


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=definitions())
def test_any_json_is_answered_or_refused_with_a_reason(engine: Engine, definition: dict[str, Any]) -> None:
    refused: Exception | None = None
    try:
        engine.run(definition, timeout_s=10, use_cache=False)
    except (ValidationError, QueryError) as exc:
        refused = exc
    if isinstance(refused, ValidationError):
        assert refused.message and "Traceback" not in refused.message
    elif isinstance(refused, QueryError):  # only a timeout is acceptable; an engine error would be a compile bug
        assert refused.code == "query_timeout", refused.message
    # the tables are intact
    assert engine.project.scalar(sql("SELECT count(*) FROM $events", events=engine.project.ref("events"))) == 2


def test_every_base_definition_runs(engine: Engine) -> None:
    assert {b["kind"] for b in BASES} == set(kind_names())
    for base in BASES:
        engine.run(base, timeout_s=30, use_cache=False)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=mutated())
def test_hostile_parts_in_valid_definitions_are_answered_or_refused(engine: Engine, definition: dict[str, Any]) -> None:
    test_any_json_is_answered_or_refused_with_a_reason.hypothesis.inner_test(engine, definition)  # type: ignore[attr-defined]
