"""Retention's ClickHouse-native shape, for a backend with :attr:`~userloop.store.backend.Capability.RETENTION_FN`.

It applies where :mod:`.one_pass` does (first-time cohorts whose start and return are the same event, counted
"on" period k, no breakdown, values or people) and keeps that statement's ``u`` and ``masks`` CTEs as they are:
one row per person with the cohort index ``ci`` and the bit mask ``m`` of the periods (counted from the cohort's)
with an event. Only the counting changes. The generic statement crosses ``masks`` with the period numbers and reads
``masks`` a second time for the cohort sizes, so ClickHouse (which inlines a CTE at each reference) computes the
per-person grouping twice; here one grouping by cohort gives both, as ClickHouse's ``retention()`` is summed: the
size is ``count()`` and the cells are ``sumForEach`` over each person's array of period bits (the
``-ForEach`` combinator: https://clickhouse.com/docs/en/sql-reference/aggregate-functions/combinators#-foreach),
unnested into the same ``(part, ci, bd, k, n, v)`` rows. A cell with nobody is left out, as the generic
statement's grouping leaves it out. ``bench/clickhouse_native.py`` measures both shapes on the same data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import Context, sql
from userloop.query.kinds.retention.one_pass import one_pass_cells
from userloop.query.kinds.retention.parts import Parts
from userloop.query.kinds.retention.periods import PeriodGrid
from userloop.store.backend import Capability

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def native_statements(q: RetentionQuery, ctx: Context, grid: PeriodGrid, one_pass: bool) -> dict[str, exp.Expr] | None:
    """The ``cells`` statement in the native shape, or None where it does not apply (the backend lacks
    ``RETENTION_FN``, or the definition is not one :mod:`.one_pass` counts): then the generic shape runs."""
    if Capability.RETENTION_FN not in ctx.capabilities or not one_pass:
        return None
    generic = one_pass_cells(q, Parts.of(q, ctx, grid))
    ks = exp.Array(expressions=[exp.Literal.number(k) for k in range(q.periods + 1)])
    counted = sql(
        """SELECT tupleElement(r.x, 1) AS part, r.ci AS ci, r.bd AS bd, tupleElement(r.x, 2) AS k,
             tupleElement(r.x, 3) AS n, CAST(NULL AS DOUBLE) AS v
           FROM (SELECT g.ci AS ci, g.bd AS bd,
                   arrayJoin(arrayPushFront(
                     arrayFilter(y -> tupleElement(y, 3) > 0,
                       arrayMap((h, k) -> ('cell', CAST(k AS BIGINT), CAST(h AS BIGINT)), g.hits, $ks)),
                     ('size', CAST(NULL AS BIGINT), CAST(g.size AS BIGINT)))) AS x
                 FROM (SELECT ci, bd, count(*) AS size,
                         sumForEach(arrayMap(k -> (coalesce(m, 0) >> k) & 1, $ks)) AS hits
                       FROM masks GROUP BY ci, bd) AS g) AS r""",
        ks=ks,
    )
    counted.set("with_", generic.args["with_"])
    return {"cells": counted}
