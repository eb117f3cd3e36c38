"""Recurring cohorts: a person enters the cohort of every period in the range in which they did the start event
(see **Cohort entries** in :mod:`userloop.query.kinds.retention`).

One scan grouped by (person, period) — first start and last return per period, and the period's value sum —
gives ``pp``; each entry is joined to the same person's next ``periods`` rows. Value retention whose return event
differs from the start event needs period 0's value apart (``v0``): only return events at or after the start
time count there, which the per-period sums cannot tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import col, sql
from userloop.query.kinds.retention.parts import Parts

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def recurring(q: RetentionQuery, p: Parts) -> list[tuple[str, exp.Expr]]:
    """One scan grouped by (person, period): the first start event (in cohort periods) and the last return
    event of each; then each entry joined to the same person's next ``periods`` periods."""
    pp = sql(
        """SELECT e.user_id AS user_id, $i AS i, min($skey) FILTER (WHERE $start AND e.time < $chi) AS s,
             max(e.time) FILTER (WHERE $ret) AS r_last, $v AS r_sum
           FROM $events AS e WHERE e.time >= $lo AND e.time < $hi AND ($start OR $ret) AND $filters
           GROUP BY 1, 2""",
        i=p.index_of(col("time", "e")),
        skey=p.skey,
        start=p.start,
        ret=p.ret,
        chi=p.chi,
        v=sql("sum($v) FILTER (WHERE $ret)", v=p.value, ret=p.ret) if q.value else p.value,
        events=p.events,
        lo=p.lo,
        hi=p.hi,
        filters=p.filters,
    )
    en = sql("SELECT user_id, i AS ci, $t0 AS t0, $bd AS bd FROM pp WHERE s IS NOT NULL", t0=p.t0, bd=p.s_bd)
    hits = sql(
        """SELECT x.user_id AS user_id, x.ci AS ci, x.bd AS bd, pp.i - x.ci AS k, pp.r_sum AS v
           FROM entries AS x JOIN pp ON pp.user_id = x.user_id AND pp.i BETWEEN x.ci AND x.ci + $n
           WHERE pp.r_last IS NOT NULL AND (pp.i > x.ci OR pp.r_last >= x.t0)""",
        n=q.periods,
    )
    return [("pp", pp), ("en", en), ("hits", hits)]


def value_at_start(p: Parts) -> exp.Expr:
    """Period-0 value of recurring entries when the return event differs from the start event: only return
    events at or after the entry's start time count, which the per-period sums in ``pp`` cannot tell."""
    return sql(
        """SELECT x.ci AS ci, x.bd AS bd, sum($v) AS v
           FROM entries AS x JOIN $events AS e ON e.user_id = x.user_id
           WHERE e.time >= $lo AND e.time < $chi AND e.time >= x.t0 AND $ret AND $filters AND $i = x.ci
           GROUP BY x.ci, x.bd""",
        v=p.value,
        events=p.events,
        lo=p.lo,
        chi=p.chi,
        ret=p.ret,
        filters=p.filters,
        i=p.index_of(col("time", "e")),
    )
