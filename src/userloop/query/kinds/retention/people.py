"""The people behind one cell of a period analysis (retention, lifecycle, stickiness): their person keys in
ascending order, capped, with how many there are; and for retention, which people a ``people`` request names — a
cohort's entries, or those counted in one of its periods (see **Returned in period k** in
:mod:`userloop.query.kinds.retention`)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import bucket_of, sql
from userloop.query.kinds.base import Frame, Result
from userloop.query.kinds.retention.clauses import attach_ctes
from userloop.query.kinds.retention.periods import PeriodGrid, PeriodInterval
from userloop.query.spec import NONE

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery

MAX_PEOPLE = 10_000


class People(Result):
    """The people behind one cell: their person keys (ascending, at most ``limit``) and how many there are."""

    total: int
    user_ids: list[int]


def people_from(frame: Frame) -> People:
    rows = frame.rows
    return People(total=int(rows[0][1]) if rows else 0, user_ids=[int(r[0]) for r in rows])


def people_statement(ctes: exp.Expr, chosen: exp.Expr, limit: int) -> exp.Expr:
    """``chosen`` (a query of ``user_id`` over the CTEs in ``ctes``), capped, with the full count."""
    query = sql(
        "SELECT user_id, count(*) OVER () AS total FROM ($chosen) AS c ORDER BY user_id LIMIT $limit",
        chosen=chosen,
        limit=limit,
    )
    return attach_ctes(ctes, query)


def retention_people(q: RetentionQuery, ctes: exp.Expr, grid: PeriodGrid) -> exp.Expr:
    """The ``people`` statement: the people behind the cell the request names, over the cohort CTEs."""
    p = q.people
    assert p is not None
    ci = _cohort_index(grid, p.cohort, q.interval)
    bd = _bd_match(p.breakdown) if p.breakdown is not None else exp.true()
    if p.period is None:
        chosen = sql("SELECT user_id FROM entries WHERE ci = $ci AND $bd", ci=ci, bd=bd)
    elif q.mode == "on":
        chosen = sql("SELECT user_id FROM hits WHERE ci = $ci AND k = $k AND $bd", ci=ci, k=p.period, bd=bd)
    else:
        chosen = sql("SELECT DISTINCT user_id FROM hits WHERE ci = $ci AND k >= $k AND $bd", ci=ci, k=p.period, bd=bd)
    return people_statement(ctes, chosen, p.limit)


def _cohort_index(grid: PeriodGrid, cohort: date, interval: PeriodInterval) -> int:
    if bucket_of(cohort, interval) != cohort:
        hint = {"week": "weeks start on Monday", "month": "months start on day 1"}.get(interval, "")
        raise ValidationError(
            f"people.cohort {cohort} is not the first day of a {interval}; {hint}, e.g. {bucket_of(cohort, interval)}"
        )
    j = grid.index(cohort)
    if not 0 <= j < grid.count:
        raise ValidationError(
            f"people.cohort {cohort} is outside the cohorts of the date range "
            f"({grid.start(0)} … {grid.start(grid.count - 1)})"
        )
    return j


def _bd_match(value: str) -> exp.Expr:
    """The folded breakdown label ``value`` as a condition on ``bd`` (``$none`` is no value)."""
    if value == NONE:
        return sql("bd IS NULL")
    return sql("bd = $v", v=value)
