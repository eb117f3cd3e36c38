"""The ``ttc`` rows of the funnel's output: the histogram of the time to convert — the duration of the attempt
reaching the last step (see **The attempt used for times and attribution** in :mod:`userloop.query.kinds.funnel`)
— over the people who converted. Adds the CTEs ``conv`` (their durations) and ``lim`` (the bins' start and
width)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.funnel.breakdown import counted
from userloop.query.kinds.funnel.ctes import Ctes
from userloop.query.kinds.funnel.spec import MICROS

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext


def time_to_convert_section(fc: FunnelContext, ctes: Ctes) -> exp.Expr:
    """Histogram of the time to convert (first to last step) over people who converted: bins of whole seconds
    from the whole second at or below the shortest time, ``time_to_convert_bins`` bins wide enough to hold the
    longest."""
    ctes.add(
        "conv",
        counted(fc, sql("SELECT struct_extract(b.s, 'd') AS d FROM best AS b WHERE b.k = $last", last=fc.n)),
        shared=True,
    )
    ctes.add(
        "lim",
        sql(
            """SELECT (min(c.d) // 1000000) * 1000000 AS lo,
                 ((max(c.d) - (min(c.d) // 1000000) * 1000000 + $span) // $span) * 1000000 AS w
               FROM conv AS c""",
            span=fc.q.time_to_convert_bins * MICROS,
        ),
    )
    return sql(
        """SELECT 'ttc' AS section, CAST(NULL AS VARCHAR) AS bd, (c.d - l.lo) // l.w AS k, count(*) AS n,
             CAST(any_value(l.lo) AS DOUBLE) AS a, CAST(any_value(l.w) AS DOUBLE) AS b,
             CAST(NULL AS DOUBLE) AS c, CAST(NULL AS DOUBLE) AS d, 0 AS tot
           FROM conv AS c, lim AS l GROUP BY (c.d - l.lo) // l.w"""
    )
