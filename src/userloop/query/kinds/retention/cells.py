"""The ``cells`` statement: per cohort (and breakdown value) and period, the people counted — exactly in period k
(``on``), or in period k or later (``on_or_after``, from each entry's last period with a return) — with the value
sums, and each cohort's size (see **Returned in period k** and **Value retention** in
:mod:`userloop.query.kinds.retention`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.retention.clauses import attach_ctes, cte_names

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def cells(q: RetentionQuery, ctes: exp.Expr) -> exp.Expr:
    if q.masked():
        counted = sql(
            """SELECT ci, bd, r.k AS k, count(*) AS n, CAST(NULL AS DOUBLE) AS v
               FROM masks, range(0, $top) AS r(k)
               WHERE ((m >> CAST(r.k AS INTEGER)) & CAST(1 AS UBIGINT)) = CAST(1 AS UBIGINT)
               GROUP BY ci, bd, r.k""",
            top=q.periods + 1,
        )
    elif q.mode == "on":
        counted = sql("SELECT ci, bd, k, count(*) AS n, sum(v) AS v FROM hits GROUP BY ci, bd, k")
    else:
        counted = sql(
            """SELECT ci, bd, k, count(*) AS n, CAST(NULL AS DOUBLE) AS v
               FROM (SELECT user_id, ci, bd, max(k) AS k FROM hits GROUP BY user_id, ci, bd) AS m
               GROUP BY ci, bd, k"""
        )
    body = sql(
        """SELECT 'cell' AS part, ci, bd, k, n, v FROM ($counted) AS c
           UNION ALL SELECT 'size', ci, bd, NULL, count(*), NULL FROM entries GROUP BY ci, bd""",
        counted=counted,
    )
    if "v0" in cte_names(ctes):
        body = exp.union(body, sql("SELECT 'value0', ci, bd, 0, NULL, v FROM v0"), distinct=False)
    return attach_ctes(ctes, body)
