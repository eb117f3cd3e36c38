"""Every statement the product builds renders for every backend, with no DuckDB-only function left over.

The statements are the trees of every SQL snapshot of ``tests/query`` (compiled from their recorded inputs), the
segment rules of ``tests/profile/test_rules.py`` compiled by :mod:`userloop.profile.rulesql`, and the reads of
every per-user model (:mod:`userloop.models`). Each renders for DuckDB (the snapshot's own text) and for every
other dialect of :data:`userloop.store.dialects.DIALECTS`, and :meth:`Dialect.unportable` must find nothing: a
function sqlglot leaves untranslated needs an entry in the dialect's table the day it is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, ClassVar

import numpy as np
import pytest
from sqlglot import exp

from tests.profile.test_rules import MODEL_KINDS, NAMED, SEGMENTS, SHANGHAI, TAGS, TODAY
from tests.query.snapshot import SNAPSHOTS, snapshot_statements
from userloop.models.activity import ActivityModel
from userloop.models.base import RunContext
from userloop.models.churn_features import ChurnFeatures, read_features, read_labels
from userloop.models.clv_model import CLVRunModel
from userloop.models.lifecycle import LifecycleConfig, read_lifecycle_inputs
from userloop.models.preference import DEFAULT_DIMENSIONS, AssociationConfig, _top_values, read_associations
from userloop.models.purchases import LineFilter, PurchaseSource
from userloop.models.rfm import read_rfm
from userloop.models.value import ValueModel
from userloop.models.value_jump import ValueJumpConfig, _behaviour_counts
from userloop.profile.rulesql import RuleContext, compile_rule, count_rule
from userloop.query.compile import Context
from userloop.schema.types import PropertyType
from userloop.store.dialects import CLICKHOUSE, DIALECTS, DUCKDB, render
from userloop.store.sqlbuild import sql, table

SCHEMA = "p_project"
OTHER_DIALECTS = [d for d in DIALECTS.values() if d is not DUCKDB]


# query snapshots ------------------------------------------------------------------------------------------------
def _snapshots() -> list[tuple[str, exp.Expr]]:
    return [(f"query:{snap}:{key}", tree) for snap, key, tree in snapshot_statements()]


def test_every_snapshot_is_recorded_and_compiles_to_its_text() -> None:
    """The recorded inputs give back each snapshot's exact text, so the trees below are the snapshots' trees."""
    texts: dict[str, str] = {}
    for snap, key, tree in snapshot_statements():
        texts[snap] = texts.get(snap, "") + f"-- {key}\n{render(tree, 'duckdb')};\n"
    assert sorted(texts) == sorted(p.stem for p in SNAPSHOTS.glob("*.sql"))
    for snap, text in texts.items():
        assert (SNAPSHOTS / f"{snap}.sql").read_text() == text, snap


# segment rules --------------------------------------------------------------------------------------------------
def _rules() -> list[tuple[str, exp.Expr]]:
    ctx = Context(
        schema=SCHEMA,
        timezone=SHANGHAI,
        today=TODAY,
        event_props={"amount": PropertyType.NUMBER},
        user_props={"city": PropertyType.STRING, "age": PropertyType.NUMBER, "vip": PropertyType.BOOL},
        event_names={"pay", "view", "cart"},
    )
    rctx = RuleContext(ctx=ctx, tags=dict(TAGS), models={"test": dict(MODEL_KINDS)}, segments=set(SEGMENTS))
    cases = [(f"rule:{name}", compile_rule(rule, rctx)) for name, (rule, _) in NAMED.items()]
    first = next(iter(NAMED.values()))[0]
    return [*cases, ("rule:count", count_rule(first, rctx))]


# models ---------------------------------------------------------------------------------------------------------
class _Recorded(Exception):  # noqa: N818 - not an error: the statement a model would run
    def __init__(self, stmt: exp.Expr) -> None:
        super().__init__("recorded")
        self.stmt = stmt


class _RecordingSession:
    def execute(self, stmt: exp.Expr, params: Any = None) -> Any:
        raise _Recorded(stmt)


class _Project:
    """What a model reads of a project before its first statement: names, the registry, a session."""

    schema = SCHEMA
    _props: ClassVar[dict[str, dict[str, PropertyType]]] = {
        "events": {
            "order_amount": PropertyType.NUMBER,
            "category": PropertyType.STRING,
            "price": PropertyType.NUMBER,
            "page": PropertyType.STRING,
            "order_id": PropertyType.STRING,
            "product_id": PropertyType.STRING,
            "channel": PropertyType.STRING,
        },
        "users": {"push_enabled": PropertyType.BOOL},
    }

    def ref(self, name: str, alias: str | None = None) -> exp.Table:
        return table(self.schema, name, alias)

    def properties(self, table_: str) -> dict[str, PropertyType]:
        return self._props.get(table_, {})

    def event_names(self) -> set[str]:
        return {"order_paid", "order_item", "page_view", "app_start"}

    def passive_events(self) -> frozenset[str]:
        return frozenset({"push_received", "coupon_received"})

    @contextmanager
    def session(self) -> Iterator[_RecordingSession]:
        yield _RecordingSession()


def _first_statement(read: Callable[[RunContext], object]) -> exp.Expr:
    ctx = RunContext(_Project(), date(2026, 3, 31), SHANGHAI)  # type: ignore[arg-type]
    with pytest.raises(_Recorded) as recorded:
        read(ctx)
    return recorded.value.stmt


def _models() -> list[tuple[str, exp.Expr]]:
    line = PurchaseSource(line=LineFilter(name="app", property="channel", value="app"))
    start = date(2026, 1, 1)
    reads: dict[str, Callable[[RunContext], object]] = {
        "activity": lambda ctx: ActivityModel().compute(ctx),
        "rfm": lambda ctx: read_rfm(ctx, PurchaseSource(), 90),
        "rfm_line": lambda ctx: read_rfm(ctx, line, 90),
        "lifecycle": lambda ctx: read_lifecycle_inputs(ctx, LifecycleConfig()),
        "value": lambda ctx: ValueModel().compute(ctx),
        "value_jump": lambda ctx: _behaviour_counts(ctx, ValueJumpConfig()),
        "clv": lambda ctx: CLVRunModel()._purchases(ctx),
        "churn_features": lambda ctx: read_features(ctx, ChurnFeatures()),
        "churn_labels": lambda ctx: read_labels(ctx, ChurnFeatures(), np.zeros(0, np.int64), 30),
        "associations": lambda ctx: read_associations(ctx, AssociationConfig(), start),
        **{
            f"preference_{d.name}": (lambda ctx, d=d: _top_values(ctx, d, start))  # type: ignore[misc]
            for d in DEFAULT_DIMENSIONS
        },
    }
    return [(f"model:{name}", _first_statement(read)) for name, read in reads.items()]


STATEMENTS = [*_snapshots(), *_rules(), *_models()]


@pytest.mark.parametrize(("name", "tree"), STATEMENTS, ids=[name for name, _ in STATEMENTS])
def test_statement_renders_for_every_dialect(name: str, tree: exp.Expr) -> None:
    assert render(tree, "duckdb")
    for dialect in OTHER_DIALECTS:
        assert dialect.unportable(tree) == [], f"{name} on {dialect.name}"
        assert dialect.render(tree)


def test_statements_cover_queries_rules_and_models() -> None:
    kinds = {name.split(":")[0] for name, _ in STATEMENTS}
    assert kinds == {"query", "rule", "model"}
    assert len(STATEMENTS) > 80


def test_an_unknown_duckdb_function_is_reported() -> None:
    tree = exp.select(exp.func("list_reverse_sort", exp.column("x"))).from_("t")
    assert CLICKHOUSE.unportable(tree) == ["function list_reverse_sort()"]


def test_rowid_of_a_stored_table_but_not_of_a_cte() -> None:
    """A stored table's ``rowid`` is its part offsets on ClickHouse; a CTE passing ``rowid`` on (a sequence
    rule's events up to today) has it as a column, read as such."""
    stored = sql("SELECT e.rowid AS rid FROM $events AS e", events=table(SCHEMA, "events"))
    assert '"e"."_part_starting_offset" + "e"."_part_offset" AS "rid"' in CLICKHOUSE.render(stored)
    passed = sql(
        "WITH capped AS (SELECT *, rowid AS rowid FROM $events) SELECT e.rowid AS rid FROM capped AS e",
        events=table(SCHEMA, "events"),
    )
    text = CLICKHOUSE.render(passed)
    assert '"_part_starting_offset" + "_part_offset" AS "rowid"' in text and '"e"."rowid" AS "rid"' in text
    assert render(passed, "duckdb").count("rowid") == 3


def test_strftime_only_with_specifiers_that_mean_the_same() -> None:
    day = exp.func("strftime", exp.column("d"), exp.Literal.string("%m-%d"))
    assert CLICKHOUSE.render(exp.select(day)) == "SELECT formatDateTime(\"d\", '%m-%d')"
    minute = exp.func("strftime", exp.column("d"), exp.Literal.string("%H:%M"))
    with pytest.raises(ValueError, match="no checked ClickHouse equivalent"):
        CLICKHOUSE.render(exp.select(minute))
