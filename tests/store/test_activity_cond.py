"""The one condition "an event is active" (:func:`userloop.store.activity.active_cond`) and the one default flag
(:func:`userloop.schema.activity.default_active`), run in a real DuckDB against a plain-Python count."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from userloop.schema.activity import DEFAULT_PASSIVE_EVENTS, default_active
from userloop.store.activity import active_cond
from userloop.store.dialects import render
from userloop.store.sqlbuild import sql, table

#: Names a person may send, including ones that would break a statement if they were spliced in as text.
NAMES = ("view", "pay", "push_received", "it's", 'say "hi"', "a') OR (1=1", "名字", "")


@settings(max_examples=examples(40), deadline=None)
@given(
    rows=st.lists(st.sampled_from(NAMES), max_size=30),
    passive=st.lists(st.sampled_from(NAMES), max_size=6),
)
def test_active_cond_counts_the_events_not_named_passive(rows: list[str], passive: list[str]) -> None:
    con = duckdb.connect()
    con.execute('CREATE SCHEMA "p_t"')
    con.execute('CREATE TABLE "p_t"."events" (event VARCHAR NOT NULL)')
    if rows:
        con.executemany('INSERT INTO "p_t"."events" VALUES (?)', [[r] for r in rows])
    stmt = sql("SELECT count(*) FROM $events AS e WHERE $active", events=table("p_t", "events"),
               active=active_cond(passive, "e"))  # fmt: skip
    (count,) = con.execute(render(stmt, "duckdb")).fetchone() or (None,)
    assert count == sum(1 for r in rows if r not in set(passive))


def test_no_passive_event_is_true_and_the_same_set_is_the_same_condition() -> None:
    assert active_cond([]).sql(dialect="duckdb") == "TRUE"
    once = active_cond(["b", "a"], "e").sql(dialect="duckdb")
    assert once == active_cond(("a", "b", "a"), "e").sql(dialect="duckdb") == """NOT "e"."event" IN ('a', 'b')"""


def test_default_flag() -> None:
    assert all(not default_active(n) for n in DEFAULT_PASSIVE_EVENTS)
    # exact names only: a person's own event that merely looks like a delivery stays active
    assert default_active("order_received") and default_active("comment_sent") and default_active("view")
