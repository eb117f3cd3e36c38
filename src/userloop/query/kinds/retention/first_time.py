"""First-time cohorts: a person enters the cohort of the period holding their first ever start event (see
**Cohort entries** in :mod:`userloop.query.kinds.retention`).

One scan of the start events grouped by person only gives the first one (``f``) and the entries (``en``); the
return events of the people in cohorts are then joined to their single entry and grouped by (person, period
offset) into ``hits`` — or, counted "on" period k without values, folded into one bit mask per person
(``masks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import col, sql
from userloop.query.kinds.retention.parts import Parts

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def first_time(q: RetentionQuery, p: Parts) -> list[tuple[str, exp.Expr]]:
    """``f``, ``en`` and ``hits``: each person's first start event up to the end of the cohorts, the entries in
    the cohorts, and the return events of the people in cohorts joined to their entry (one per person, hence the
    grouping by person and period only): a return counts in period ``k`` of the entry when it is at or after the
    start time and at most ``periods`` periods later."""
    first = sql(
        """SELECT e.user_id AS user_id, min($skey) AS s FROM $events AS e
           WHERE e.time < $chi AND $start AND $filters GROUP BY 1""",
        skey=p.skey,
        events=p.events,
        chi=p.chi,
        start=p.start,
        filters=p.filters,
    )
    en = sql(
        "SELECT user_id, $ci AS ci, $t0 AS t0, $bd AS bd FROM f WHERE $t0 >= $lo",
        ci=p.index_of(p.t0),
        t0=p.t0,
        bd=p.s_bd,
        lo=p.lo,
    )
    hits = sql(
        """SELECT x.user_id AS user_id, any_value(x.ci) AS ci, any_value(x.bd) AS bd, $i - x.ci AS k, $v AS v
           FROM $events AS e JOIN entries AS x ON x.user_id = e.user_id
           WHERE e.time >= $lo AND e.time < $hi AND $ret AND $filters AND e.time >= x.t0 AND $i <= x.ci + $n
           GROUP BY 1, 4""",
        **_returns(q, p),
    )
    return [("f", first), ("en", en), ("hits", hits)]


def masks(q: RetentionQuery, p: Parts) -> exp.Expr:
    """``masks (user_id, ci, bd, m)``: bit ``k`` of ``m`` is set when the person returned in period ``k`` of
    their entry — the same returns ``hits`` lists, folded per person."""
    return sql(
        """SELECT x.user_id AS user_id, any_value(x.ci) AS ci, any_value(x.bd) AS bd,
             bit_or(CAST(1 AS UBIGINT) << CAST($i - x.ci AS INTEGER)) AS m
           FROM $events AS e JOIN entries AS x ON x.user_id = e.user_id
           WHERE e.time >= $lo AND e.time < $hi AND $ret AND $filters AND e.time >= x.t0 AND $i <= x.ci + $n
           GROUP BY 1""",
        **_returns(q, p),
    )


def _returns(q: RetentionQuery, p: Parts) -> dict[str, object]:
    """What both templates over the return events substitute: the return events of the people in cohorts,
    joined to their (single, first-time) entry, at or after the start and at most ``periods`` periods later."""
    return {
        "i": p.index_of(col("time", "e")),
        "v": p.value_sum,
        "events": p.events,
        "lo": p.lo,
        "hi": p.hi,
        "ret": p.ret,
        "filters": p.filters,
        "n": q.periods,
    }
