"""The ``people`` and ``people_total`` rows of the funnel's output: who reached a step (``converted``) or reached
the previous required step but not this one (``dropped``), optionally of one breakdown value, by person key, capped
at ``limit``, with their full count (see **Counts** in :mod:`userloop.query.kinds.funnel`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import col, sql

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext


def people_sections(fc: FunnelContext) -> list[exp.Expr]:
    p = fc.q.people
    assert p is not None
    reached = sql("(m.rm & $bit) <> 0", bit=1 << (p.step - 1))
    if p.status == "converted":
        cond = reached
    else:
        prev = sql("(m.rm & $bit) <> 0", bit=1 << (fc.q.previous_required(p.step) - 1))
        cond = exp.and_(prev, exp.Not(this=exp.paren(reached)))
    if p.breakdown is not None:
        cond = exp.and_(cond, exp.EQ(this=col("bd", "m"), expression=exp.Literal.string(p.breakdown)))
    listed = sql(
        """SELECT * FROM (
             SELECT 'people' AS section, CAST(NULL AS VARCHAR) AS bd, CAST(NULL AS BIGINT) AS k,
               m.user_id AS n, CAST(NULL AS DOUBLE) AS a, CAST(NULL AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c,
               CAST(NULL AS DOUBLE) AS d, 0 AS tot
             FROM lab AS m WHERE $cond ORDER BY m.user_id LIMIT $limit) AS listed""",
        cond=cond,
        limit=p.limit,
    )
    total = sql(
        """SELECT 'people_total' AS section, CAST(NULL AS VARCHAR) AS bd, CAST(NULL AS BIGINT) AS k,
             count(*) AS n, CAST(NULL AS DOUBLE) AS a, CAST(NULL AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c,
             CAST(NULL AS DOUBLE) AS d, 0 AS tot
           FROM lab AS m WHERE $cond""",
        cond=cond,
    )
    return [listed, total]
