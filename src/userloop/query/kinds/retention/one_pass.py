"""First-time cohorts whose start and return are the same event, counted "on" period k, with no breakdown, values
or people, over at most 63 periods: one grouping of the events by person gives both the first event (the cohort)
and a bit per period with an event — ClickHouse's ``retention()`` shape. The counts are those of
:mod:`.first_time` (see **Cohort entries** and **Returned in period k** in :mod:`userloop.query.kinds.retention`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import col, sql
from userloop.query.kinds.retention.parts import Parts

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def one_pass_cells(q: RetentionQuery, p: Parts, u: exp.Expr | None = None) -> exp.Expr:
    """The first event is the earliest of the person's events, so no return of period 0 comes before it and
    shifting the person's period bits down by the cohort's index gives the periods after the start. ``u`` (one
    row per person: ``user_id``, ``t0``, ``m``) is the grouping of the events by person unless given (the fold's
    table, :mod:`.fold`).

    The shift is clamped at 0 though only events from ``lo`` on (index ≥ 0) take that branch: ClickHouse
    evaluates ``bitShiftLeft`` on every row of the block, and an earlier event's negative index was an error."""
    if u is None:
        u = sql(
            """SELECT e.user_id AS user_id, min(e.time) AS t0,
                 bit_or(CASE WHEN e.time >= $lo THEN CAST(1 AS UBIGINT) << CAST(greatest($i, 0) AS INTEGER) END) AS m
               FROM $events AS e WHERE e.time < $hi AND $start AND $filters GROUP BY 1""",
            **_events_read(p),
        )
    return sql(
        """WITH u AS ($u),
           masks AS (
             SELECT $ci AS ci, CAST(NULL AS VARCHAR) AS bd, m >> CAST($ci AS INTEGER) AS m
             FROM u WHERE u.t0 >= $lo AND u.t0 < $chi)
        SELECT 'cell' AS part, ci, bd, r.k AS k, count(*) AS n, CAST(NULL AS DOUBLE) AS v
        FROM masks, range(0, $top) AS r(k)
        WHERE ((m >> CAST(r.k AS INTEGER)) & CAST(1 AS UBIGINT)) = CAST(1 AS UBIGINT)
        GROUP BY ci, bd, r.k
        UNION ALL SELECT 'size', ci, bd, NULL, count(*), NULL FROM masks GROUP BY ci, bd""",
        u=u,
        ci=p.index_of(sql("u.t0")),
        lo=p.lo,
        chi=p.chi,
        top=q.periods + 1,
    )


def one_pass_rows(p: Parts) -> exp.Expr:
    """The rows the fold (:mod:`.fold`) groups by person instead of SQL: each event's person, time (epoch µs)
    and period bit (−1 before ``lo``, where it sets none)."""
    return sql(
        """SELECT e.user_id AS user_id, epoch_us(e.time) AS t,
             CASE WHEN e.time >= $lo THEN CAST(greatest($i, 0) AS SMALLINT) ELSE CAST(-1 AS SMALLINT) END AS b
           FROM $events AS e WHERE e.time < $hi AND $start AND $filters""",
        **_events_read(p),
    )


def _events_read(p: Parts) -> dict[str, exp.Expr | datetime]:
    """What the statements reading the events (``e``) put in: the period index of an event's time, the table,
    the range's start and end, the start condition and the filters."""
    return {"i": p.index_of(col("time", "e")), "events": p.events, "lo": p.lo, "hi": p.hi, "start": p.start,
            "filters": p.filters}  # fmt: skip
