"""Hostile definitions: whatever JSON arrives, the engine answers or refuses with a reason — it never fails with
an internal error, never runs unbounded, and names and values never change a statement's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.query.logs import fresh_project, load
from userloop.core.errors import QueryError, ValidationError
from userloop.query.engine import Engine
from userloop.query.kinds import KINDS, kind_names
from userloop.store import Workspace

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
    st.sampled_from(["day", "week", "month", "hour", "eq", "in", "between", "sum", "users", "2026-01-05", "2026-01-25"]),
)


def _json(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(keys), inner, max_size=5)
        ),
        max_leaves=25,
    )


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    keys = _field_names()
    doc = draw(st.dictionaries(st.sampled_from(keys), _json(keys), max_size=8))
    doc["kind"] = draw(st.sampled_from([*kind_names(), "nope"]))
    return doc


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from tests.query.test_trends import _ev

    ws, _ = Workspace.init(tmp_path_factory.mktemp("hostile") / "ws")
    _, project = fresh_project(ws)
    load(project, [_ev(1, "a0", "view", 0, channel="a", amount=3.0), _ev(2, "L0", "pay", 1, amount=9.0)])
    yield Engine(project, "Asia/Shanghai")
    ws.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=definitions())
def test_any_json_is_answered_or_refused_with_a_reason(engine: Engine, definition: dict[str, Any]) -> None:
    try:
        engine.run(definition, timeout_s=10, use_cache=False)
    except ValidationError as exc:
        assert exc.message and "Traceback" not in exc.message
    except QueryError as exc:  # only a timeout is acceptable here; an engine error would be a compile bug
        assert exc.code == "query_timeout", exc.message
    # the tables are intact
    assert engine.project.con.execute(f"SELECT count(*) FROM {engine.project.table('events')}").fetchall() == [(2,)]
