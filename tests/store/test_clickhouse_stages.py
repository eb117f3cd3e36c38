"""Materialized CTEs run on ClickHouse as the session's temporary tables (:func:`userloop.store.dialects.staged`):
a chain of CTEs each read several times by the next no longer grows ClickHouse's query tree as the product of the
reads, the answer is the statement's, and the tables are gone after it."""

from __future__ import annotations

from sqlglot import exp

from userloop.store.clickhouse import ClickHouseStore
from userloop.store.dialects import render, staged
from userloop.store.sqlbuild import sql


def chain(depth: int) -> exp.Expr:
    """``c0`` … ``c{depth-1}``, each reading the one before twice; the answer is 1000 rows."""
    bodies = [sql("SELECT number AS x FROM numbers(1000)")]
    for i in range(1, depth):
        bodies.append(
            sql(
                "SELECT p.x AS x FROM $prev AS p WHERE p.x IN (SELECT q.x FROM $prev AS q)",
                prev=exp.to_identifier(f"c{i - 1}"),
            )
        )
    ctes = [
        exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(f"c{i}")), materialized=True)
        for i, body in enumerate(bodies)
    ]
    query = sql("SELECT count(*) AS n, sum(l.x) AS s FROM $last AS l", last=exp.to_identifier(f"c{depth - 1}"))
    query.set("with_", exp.With(expressions=ctes))
    return query


def test_a_deep_chain_of_materialized_ctes_runs_once_each(ch: ClickHouseStore) -> None:
    with ch.session() as s:
        assert s.fetchall(chain(14)) == [(1000, 499500)]  # inlined, 2^13 copies of c0: "Query tree is too big"
        left = s.scalar(sql("SELECT count(*) FROM system.tables WHERE is_temporary AND name LIKE '_cte_%'"))
    assert left == 0


def test_stages_keep_the_plain_ctes_their_readers_need() -> None:
    tree = sql(
        "WITH a AS MATERIALIZED (SELECT 1 AS x), b AS (SELECT a.x FROM a), c AS MATERIALIZED (SELECT b.x FROM b) "
        "SELECT c.x, a.x FROM c, a"
    )
    stages, main = staged(tree, lambda name: f"t_{name}")
    assert [(name, render(q, "duckdb")) for name, q in stages] == [
        ("t_a", "SELECT 1 AS x"),
        ("t_c", "WITH b AS (SELECT a.x FROM t_a AS a) SELECT b.x FROM b"),
    ]
    assert render(main, "duckdb") == "WITH b AS (SELECT a.x FROM t_a AS a) SELECT c.x, a.x FROM t_c AS c, t_a AS a"
    plain = sql("WITH a AS (SELECT 1 AS x) SELECT a.x FROM a")
    assert staged(plain, lambda name: name) == ([], plain)
