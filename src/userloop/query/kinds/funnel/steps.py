"""The ``step`` rows of the funnel's output: per step (and per breakdown value, with the totals as a grouping
set) the people reaching it and the average and median times from the previous step and from the first, taken
from each person's best attempt for that step (see **The attempt used for times and attribution** in
:mod:`userloop.query.kinds.funnel`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.funnel.breakdown import counted

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext


def steps_section(fc: FunnelContext) -> exp.Expr:
    if fc.q.breakdown is None:
        return counted(
            fc,
            sql(
                """SELECT 'step' AS section, CAST(NULL AS VARCHAR) AS bd, CAST(b.k AS BIGINT) AS k, count(*) AS n,
                     avg(struct_extract(b.s, 'g')) AS a, median(struct_extract(b.s, 'g')) AS b,
                     avg(struct_extract(b.s, 'd')) AS c, median(struct_extract(b.s, 'd')) AS d, 1 AS tot
                   FROM best AS b GROUP BY b.k"""
            ),
        )
    return sql(
        """SELECT 'step' AS section, m.bd AS bd, CAST(b.k AS BIGINT) AS k, count(*) AS n,
             avg(struct_extract(b.s, 'g')) AS a, median(struct_extract(b.s, 'g')) AS b,
             avg(struct_extract(b.s, 'd')) AS c, median(struct_extract(b.s, 'd')) AS d, grouping(m.bd) AS tot
           FROM best AS b JOIN lab AS m ON m.user_id = b.user_id
           GROUP BY GROUPING SETS ((m.bd, b.k), (b.k))"""
    )
