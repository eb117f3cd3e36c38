"""The ``trend`` rows of the funnel's output: per bucket of ``trend_interval``, the people whose first step-1
event in the range falls in it (``n``) and how many of them reached the last step (``k``; see **Counts** in
:mod:`userloop.query.kinds.funnel`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import sql

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext


def trend_section(fc: FunnelContext) -> exp.Expr:
    interval = fc.q.trend_interval
    assert interval is not None
    bucket = fc.ctx.bucket(sql("make_timestamp(m.entry)"), interval, fc.first, fc.last)
    return sql(
        """SELECT 'trend' AS section, CAST(x.bucket AS VARCHAR) AS bd,
             count(*) FILTER (WHERE x.depth = $last) AS k, count(*) AS n,
             CAST(NULL AS DOUBLE) AS a, CAST(NULL AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c,
             CAST(NULL AS DOUBLE) AS d, 0 AS tot
           FROM (SELECT $bucket AS bucket, m.depth AS depth FROM lab AS m) AS x GROUP BY x.bucket""",
        bucket=bucket,
        last=fc.n,
    )
