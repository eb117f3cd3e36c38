"""Retention: of the people who did a start event in a period, how many came back in each later period.

Definitions follow PostHog's retention insight (https://posthog.com/docs/product-analytics/retention) and
Mixpanel's (https://docs.mixpanel.com/docs/reports/retention), made exact:

- **Periods** are local days, weeks (Monday to Sunday) or calendar months in the project's time zone. The date
  range is widened to whole periods: the cohorts are every period that overlaps the range, each taken in full.
- **Cohort entries.** ``start_type: "first_time"``: a person enters the cohort of the period holding their first
  ever start event — first in *all* stored data up to today, not just in the date range (so a person whose first
  start event came before the range is in no cohort). ``"recurring"``: a person enters the cohort of every period
  in the range in which they did the start event. An entry's *start time* is its first start event in the
  period (for first-time cohorts, the first ever).
- **Returned in period k** (k = 0…``periods``, counted from the cohort period): the person did the return event
  (by default the start event itself) in the k-th period after the cohort period. For **period 0** the return
  event must come at or after the entry's start time (same instant included), so with the default return event
  period 0 is always 100 %, as in PostHog, and with another return event it is "returned in the same period,
  after starting".
  ``mode: "on"`` counts returns in period k exactly; ``"on_or_after"`` counts a person in period k when they
  returned in period k or any later period up to ``periods`` (PostHog's cumulative retention).
- **Breakdown** by an event property takes the value on the entry's first start event (among start events at the
  same instant, the smallest value; a value beats no value), or by a profile property the person's current value;
  the ``limit`` most frequent values (by cohort entries) are kept, the rest is ``$other``, no value is ``$none``.
- **Incomplete cells.** A cell whose period has not started by today is ``None``; ``complete`` tells whether
  every period the cell depends on (period k; up to period ``periods`` for ``on_or_after``) has ended before
  today. The **average** row weights cohorts by size and uses complete cells only.
- **Value retention** (``value: {"property": "amount", "math": "sum"}``): per cell, the sum of the property over
  the return events that count for that period (period 0: at or after the start time), divided by the cohort's
  size — revenue per cohort member per period.

Return events are looked for up to ``periods`` periods after the last cohort, and never after today.

Statements (set-based, sized by people and periods, never by events per person): first-time cohorts scan the
start events once grouped by person (the first one), then join the return events of the people in cohorts to
their entry and group by (person, period offset). Recurring cohorts scan once grouped by (person, period) — first
start and last return per period — and join each entry to the same person's next ``periods`` rows. Both are the
work ClickHouse's ``retention()`` aggregate does per person
(https://clickhouse.com/docs/en/sql-reference/aggregate-functions/parametric-functions#retention); on 20M events
and 1M people (weekly, 8 cohorts, 12 periods) they ran in 0.4–0.6× the time of that function under chdb.

The period helpers here (:class:`PeriodGrid`, :func:`period_index`) are shared with lifecycle and stickiness.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, bucket_of, col, literal, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.spec import NONE, OTHER, Breakdown, EventRef, Name, Spec
from userloop.schema.types import PropertyType

PeriodInterval = Literal["day", "week", "month"]
#: At most this many cohorts (a year of days); more would be a result nobody can read.
MAX_COHORTS = 400
MAX_PEOPLE = 10_000

_US_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)


# periods ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodGrid:
    """``count`` consecutive local periods of one interval; period 0 starts on ``first`` (a period start)."""

    interval: PeriodInterval
    first: date
    count: int

    @classmethod
    def covering(cls, interval: PeriodInterval, first_day: date, last_day: date) -> PeriodGrid:
        """The periods that overlap the local days ``first_day``…``last_day``."""
        first = bucket_of(first_day, interval)
        return cls(interval, first, period_number(interval, first, bucket_of(last_day, interval)) + 1)

    def start(self, i: int) -> date:
        """The first local day of period ``i`` (any integer, also outside the grid)."""
        if self.interval == "day":
            return self.first + timedelta(days=i)
        if self.interval == "week":
            return self.first + timedelta(days=7 * i)
        months = self.first.year * 12 + self.first.month - 1 + i
        return date(months // 12, months % 12 + 1, 1)

    def end(self, i: int) -> date:
        """The last local day of period ``i``."""
        return self.start(i + 1) - timedelta(days=1)

    def index(self, day: date) -> int:
        """The period a local day falls in."""
        return period_number(self.interval, self.first, bucket_of(day, self.interval))

    def extended(self, extra: int) -> PeriodGrid:
        return PeriodGrid(self.interval, self.first, self.count + extra)


def period_number(interval: PeriodInterval, first: date, start: date) -> int:
    """How many periods after the period starting on ``first`` the period starting on ``start`` is."""
    if interval == "day":
        return (start - first).days
    if interval == "week":
        return (start - first).days // 7
    return (start.year - first.year) * 12 + start.month - first.month


def period_index(ctx: Context, column: exp.Expr, grid: PeriodGrid) -> exp.Expr:
    """The grid index of the local period that ``column`` (naive UTC) falls in, for times inside the grid.

    Local time is UTC plus the zone's offset, and the offset is a ``CASE`` over the instants where it changes in
    the grid (none for most zones, two a year under daylight saving): a few comparisons per row instead of a
    per-row time-zone conversion, which costs 30 times more on DuckDB. Days and weeks are then integer division
    of local microseconds; months are a month difference of the local date.
    """
    origin = (grid.first - _EPOCH).days * _US_PER_DAY
    lo = _midnight_utc(grid.first, ctx.timezone) - timedelta(days=1)
    hi = _midnight_utc(grid.start(grid.count), ctx.timezone) + timedelta(days=1)
    pieces = zone_offsets(ctx.timezone, lo, hi)
    width = {"day": _US_PER_DAY, "week": 7 * _US_PER_DAY}.get(grid.interval)
    # days and weeks: fold the origin into the offsets so each row costs one add and one division
    shift = -origin if width is not None else 0
    offset: exp.Expr = exp.convert(pieces[0][1] * 1_000_000 + shift)
    if len(pieces) > 1:
        case = exp.Case()
        for (_, off), (until, _) in itertools.pairwise(pieces):
            case = case.when(
                exp.LT(this=column.copy(), expression=literal(until)), exp.convert(off * 1_000_000 + shift)
            )
        offset = case.else_(exp.convert(pieces[-1][1] * 1_000_000 + shift))
    local_us = exp.Add(this=exp.func("epoch_us", column.copy()), expression=offset)
    if width is not None:
        return exp.IntDiv(this=exp.paren(local_us), expression=exp.convert(width))
    return sql("date_diff('month', $first, CAST(make_timestamp($us) AS DATE))", first=grid.first, us=local_us)


@functools.lru_cache(maxsize=256)
def zone_offsets(timezone: str, lo: datetime, hi: datetime) -> tuple[tuple[datetime, int], ...]:
    """The zone's UTC offset (seconds) over the naive UTC span ``lo``…``hi``: ``((from, offset), …)``, where
    each piece holds from its instant (the first piece from ``lo``) up to the next piece's."""
    zone = ZoneInfo(timezone)

    def offset_at(second: int) -> int:
        delta = datetime.fromtimestamp(second, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = int(lo.replace(tzinfo=UTC).timestamp())
    stop = int(hi.replace(tzinfo=UTC).timestamp())
    pieces = [(lo, offset_at(start))]
    at = start
    while at < stop:
        step = min(at + 86_400, stop)
        if offset_at(step) != offset_at(at):
            low, high = at, step  # offset_at(low) is the old offset, offset_at(high) the new one
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if offset_at(mid) == offset_at(at) else (low, mid)
            pieces.append((datetime.fromtimestamp(high, UTC).replace(tzinfo=None), offset_at(high)))
        at = step
    return tuple(pieces)


def grouped(condition: exp.Expr) -> exp.Expr:
    """``condition`` in parentheses when it is an AND/OR, so that it keeps its meaning wherever a template puts it
    (a substituted node is not re-parenthesised: ``x AND $c`` with ``c = a OR b`` would print ``x AND a OR b``)."""
    return exp.paren(condition.copy()) if isinstance(condition, exp.Connector) else condition


def _midnight_utc(day: date, timezone: str) -> datetime:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def scan_bounds(ctx: Context, grid: PeriodGrid, first: int, last: int) -> tuple[datetime, datetime]:
    """Naive UTC bounds of periods ``first``…``last`` of the grid, never past the end of today."""
    end_day = min(grid.end(last), ctx.today)
    lo = _midnight_utc(grid.start(first), ctx.timezone)
    return lo, max(lo, _midnight_utc(end_day + timedelta(days=1), ctx.timezone))


def breakdown_value(ctx: Context, b: Breakdown, alias: str) -> exp.Expr:
    """The breakdown property of row ``alias`` (an event or a person), checked: single values only, no bins."""
    if b.bins is not None:
        raise ValidationError("this analysis breaks down by property values; numeric 'bins' are not supported here")
    ptype = ctx.prop_type(b.source, b.property)
    if ptype == PropertyType.LIST:
        raise ValidationError(f"{b.property!r} is a list; break down by a single-valued property")
    return ctx.prop(b.source, b.property, alias)


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


def attach_ctes(ctes: exp.Expr, body: exp.Expr) -> exp.Expr:
    """``body`` with the ``WITH`` clause of ``ctes`` in front of it (CTEs are built once, used by several
    statements)."""
    with_ = ctes.args.get("with_")
    assert isinstance(with_, exp.With)
    out = body.copy()
    out.set("with_", with_.copy())
    return out


def cte_names(query: exp.Expr) -> set[str]:
    with_ = query.args.get("with_")
    return {cte.alias for cte in with_.expressions} if isinstance(with_, exp.With) else set()


# the definition -----------------------------------------------------------------------------------------------
class RetentionValue(Spec):
    """Value retention: the sum of a numeric event property of the return events, per cohort member."""

    property: Name
    math: Literal["sum"] = "sum"


class RetentionPeople(Spec):
    """Ask for the people behind one cell: a cohort (its period's first day), a period k (``None``: the whole
    cohort) and, with a breakdown, one of its values (``$other`` and ``$none`` included; ``None``: all values)."""

    cohort: date
    period: int | None = Field(None, ge=0, le=60)
    breakdown: str | None = None
    limit: int = Field(100, ge=1, le=MAX_PEOPLE)


class RetentionQuery(Analysis):
    kind: Literal["retention"] = "retention"
    start: EventRef
    return_event: EventRef | None = Field(None, description="The event that counts as coming back; the start event.")
    start_type: Literal["first_time", "recurring"] = "first_time"
    interval: PeriodInterval = "week"
    periods: int = Field(8, ge=1, le=60, description="How many periods after the cohort period to follow.")
    mode: Literal["on", "on_or_after"] = "on"
    breakdown: Breakdown | None = None
    value: RetentionValue | None = None
    people: RetentionPeople | None = None

    @model_validator(mode="after")
    def _options_agree(self) -> RetentionQuery:
        if self.value is not None and self.mode == "on_or_after":
            raise ValueError("value retention sums each period's return events; use mode 'on' with 'value'")
        if self.people is not None:
            if self.people.period is not None and self.people.period > self.periods:
                raise ValueError(f"people.period is {self.people.period}; periods run from 0 to {self.periods}")
            if self.people.breakdown is not None and self.breakdown is None:
                raise ValueError("people.breakdown names a breakdown value, but the query has no breakdown")
        if self.breakdown is not None and self.breakdown.bins is not None:
            raise ValueError("retention breaks down by property values; numeric 'bins' are not supported")
        return self

    @property
    def returning(self) -> EventRef:
        return self.return_event or self.start

    def cohort_grid(self, ctx: Context) -> PeriodGrid:
        first, last = ctx.days(self.date_range)
        grid = PeriodGrid.covering(self.interval, first, last)
        if grid.count > MAX_COHORTS:
            raise ValidationError(
                f"the date range holds {grid.count} {self.interval} cohorts; at most {MAX_COHORTS} — narrow the "
                "range or use a longer interval"
            )
        return grid

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        grid = self.cohort_grid(ctx)
        if self._one_pass(grid):
            return {"cells": self._one_pass_cells(_Parts.of(self, ctx, grid))}
        ctes = self._ctes(ctx, grid)
        out = {"cells": self._cells(ctes)}
        if self.people is not None:
            out["people"] = self._people(ctes, grid)
        return out

    def _ctes(self, ctx: Context, grid: PeriodGrid) -> exp.Expr:
        """``WITH … en, [top,] entries, hits[, v0]``: cohort entries ``(user_id, ci, t0, bd)`` and the cells they
        reached, ``hits (user_id, ci, bd, k, v)`` (one row per entry and period with a return)."""
        parts = _Parts.of(self, ctx, grid)
        head = self._first_time(parts) if self.start_type == "first_time" else self._recurring(parts)
        eb, entries = self._fold(ctx)
        ctes = [*head[:-1], ("eb", eb)]
        if self.breakdown is not None:
            top = sql(
                "SELECT bd FROM eb WHERE bd IS NOT NULL GROUP BY bd ORDER BY count(*) DESC, bd LIMIT $limit",
                limit=self.breakdown.limit,
            )
            ctes.append(("top", top))
        ctes += [("entries", entries), head[-1]]
        if self._masked():
            ctes.append(("masks", self._masks(parts)))
        if self._value0_apart():
            ctes.append(("v0", self._value_at_start(parts)))
        query = exp.select("1")
        for name, body in ctes:
            query = query.with_(name, as_=body)
        return query

    def _first_time(self, p: _Parts) -> list[tuple[str, exp.Expr]]:
        """Each person's first start event up to the end of the cohorts (a scan grouped by person only), then the
        return events of the people in cohorts joined to their entry (one per person, hence the grouping by person
        and period only): a return counts in period ``k`` of the entry when it is at or after the start time and at
        most ``periods`` periods later."""
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
        hits = self._returns(p, "$i - x.ci AS k, $v AS v", "GROUP BY 1, 4")
        return [("f", first), ("en", en), ("hits", hits)]

    def _returns(self, p: _Parts, measure: str, grouping: str) -> exp.Expr:
        """The return events of the people in cohorts, joined to their (single, first-time) entry: at or after the
        start and at most ``periods`` periods later; ``measure`` and ``grouping`` are fixed template text."""
        return sql(
            f"""SELECT x.user_id AS user_id, any_value(x.ci) AS ci, any_value(x.bd) AS bd, {measure}
               FROM $events AS e JOIN entries AS x ON x.user_id = e.user_id
               WHERE e.time >= $lo AND e.time < $hi AND $ret AND $filters AND e.time >= x.t0 AND $i <= x.ci + $n
               {grouping}""",
            i=p.index_of(col("time", "e")),
            v=p.value_sum,
            events=p.events,
            lo=p.lo,
            hi=p.hi,
            ret=p.ret,
            filters=p.filters,
            n=self.periods,
        )

    def _one_pass(self, grid: PeriodGrid) -> bool:
        """First-time cohorts whose start and return are the same event, counted "on" period k, with no breakdown,
        values or people, over at most 63 periods: one grouping of the events by person gives both the first
        event (the cohort) and a bit per period with an event — ClickHouse's retention() shape."""
        return (
            self._masked()
            and self.start == self.returning
            and self.breakdown is None
            and self.people is None
            and grid.extended(self.periods).count <= 63
        )

    def _one_pass_cells(self, p: _Parts) -> exp.Expr:
        """The first event is the earliest of the person's events, so no return of period 0 comes before it and
        shifting the person's period bits down by the cohort's index gives the periods after the start."""
        i = p.index_of(col("time", "e"))
        return sql(
            """WITH u AS (
                 SELECT e.user_id AS user_id, min(e.time) AS t0,
                   bit_or(CASE WHEN e.time >= $lo THEN CAST(1 AS UBIGINT) << CAST($i AS INTEGER) END) AS m
                 FROM $events AS e WHERE e.time < $hi AND $start AND $filters GROUP BY 1),
               masks AS (
                 SELECT $ci AS ci, CAST(NULL AS VARCHAR) AS bd, m >> CAST($ci AS INTEGER) AS m
                 FROM u WHERE u.t0 >= $lo AND u.t0 < $chi)
            SELECT 'cell' AS part, ci, bd, r.k AS k, count(*) AS n, CAST(NULL AS DOUBLE) AS v
            FROM masks, range(0, $top) AS r(k)
            WHERE ((m >> CAST(r.k AS INTEGER)) & CAST(1 AS UBIGINT)) = CAST(1 AS UBIGINT)
            GROUP BY ci, bd, r.k
            UNION ALL SELECT 'size', ci, bd, NULL, count(*), NULL FROM masks GROUP BY ci, bd""",
            i=i,
            ci=p.index_of(sql("u.t0")),
            events=p.events,
            lo=p.lo,
            hi=p.hi,
            chi=p.chi,
            start=p.start,
            filters=p.filters,
            top=self.periods + 1,
        )

    def _masked(self) -> bool:
        """First-time cohorts counted "on" period k without values: one row per person with a bit per period
        (a grouping by person only) replaces the rows per person and period."""
        return self.start_type == "first_time" and self.mode == "on" and self.value is None and self.periods <= 62

    def _masks(self, p: _Parts) -> exp.Expr:
        """``masks (user_id, ci, bd, m)``: bit ``k`` of ``m`` is set when the person returned in period ``k`` of
        their entry — the same returns ``hits`` lists, folded per person."""
        return self._returns(p, "bit_or(CAST(1 AS UBIGINT) << CAST($i - x.ci AS INTEGER)) AS m", "GROUP BY 1")

    def _recurring(self, p: _Parts) -> list[tuple[str, exp.Expr]]:
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
            v=sql("sum($v) FILTER (WHERE $ret)", v=p.value, ret=p.ret) if self.value else p.value,
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
            n=self.periods,
        )
        return [("pp", pp), ("en", en), ("hits", hits)]

    def value_expr(self, ctx: Context) -> exp.Expr:
        if self.value is None:
            return exp.cast(exp.null(), exp.DataType.Type.DOUBLE)
        ctx.require_pii(self.value.property, "a measure over")
        ptype = ctx.prop_type("event", self.value.property)
        if ptype != PropertyType.NUMBER:
            raise ValidationError(
                f"value.property {self.value.property!r} is {ptype.value}; value retention sums a NUMBER property"
            )
        return col(self.value.property, "e")

    def _fold(self, ctx: Context) -> tuple[exp.Expr, exp.Expr]:
        """Entries with their breakdown value, and with values outside the top ``limit`` folded into ``$other``."""
        b = self.breakdown
        if b is None:
            return sql("SELECT user_id, ci, t0, CAST(NULL AS VARCHAR) AS bd FROM en"), sql("SELECT * FROM eb")
        if b.source == "user":
            eb = sql(
                """SELECT en.user_id AS user_id, en.ci AS ci, en.t0 AS t0, CAST($bd AS VARCHAR) AS bd
                   FROM en LEFT JOIN $users AS u ON u.user_id = en.user_id""",
                bd=breakdown_value(ctx, b, "u"),
                users=ctx.table("users"),
            )
        else:
            eb = sql("SELECT user_id, ci, t0, CAST(bd AS VARCHAR) AS bd FROM en")
        entries = sql(
            """SELECT user_id, ci, t0,
                 CASE WHEN bd IS NULL THEN NULL WHEN bd IN (SELECT bd FROM top) THEN bd ELSE $other END AS bd
               FROM eb""",
            other=OTHER,
        )
        return eb, entries

    def _value_at_start(self, p: _Parts) -> exp.Expr:
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

    def _cells(self, ctes: exp.Expr) -> exp.Expr:
        if self._masked():
            counted = sql(
                """SELECT ci, bd, r.k AS k, count(*) AS n, CAST(NULL AS DOUBLE) AS v
                   FROM masks, range(0, $top) AS r(k)
                   WHERE ((m >> CAST(r.k AS INTEGER)) & CAST(1 AS UBIGINT)) = CAST(1 AS UBIGINT)
                   GROUP BY ci, bd, r.k""",
                top=self.periods + 1,
            )
        elif self.mode == "on":
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

    def _people(self, ctes: exp.Expr, grid: PeriodGrid) -> exp.Expr:
        p = self.people
        assert p is not None
        ci = _cohort_index(grid, p.cohort, self.interval)
        bd = _bd_match(p.breakdown) if p.breakdown is not None else exp.true()
        if p.period is None:
            chosen = sql("SELECT user_id FROM entries WHERE ci = $ci AND $bd", ci=ci, bd=bd)
        elif self.mode == "on":
            chosen = sql("SELECT user_id FROM hits WHERE ci = $ci AND k = $k AND $bd", ci=ci, k=p.period, bd=bd)
        else:
            chosen = sql(
                "SELECT DISTINCT user_id FROM hits WHERE ci = $ci AND k >= $k AND $bd", ci=ci, k=p.period, bd=bd
            )
        return people_statement(ctes, chosen, p.limit)

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> RetentionResult:
        grid = self.cohort_grid(ctx)
        n = self.periods
        sizes: dict[tuple[int, str | None], int] = {}
        raw: dict[tuple[int, str | None], list[int]] = {}
        sums: dict[tuple[int, str | None], list[float]] = {}
        value0_apart = self._value0_apart()
        for part, ci, bd, k, count, v in data["cells"].rows:
            key = (int(ci), self._label(bd))
            if part == "size":
                sizes[key] = int(count)
                continue
            cell_sums = sums.setdefault(key, [0.0] * (n + 1))
            if part == "cell":
                raw.setdefault(key, [0] * (n + 1))[int(k)] = int(count)
            if part == "value0" or not (k == 0 and value0_apart):
                cell_sums[int(k)] = float(v or 0.0)
        labels = _order_labels(sizes) if self.breakdown is not None else [None]
        cohorts = [self._row(ctx, grid, j, bd, sizes, raw, sums) for bd in labels for j in range(grid.count)]
        result = RetentionResult(
            interval=self.interval,
            periods=n,
            mode=self.mode,
            start_type=self.start_type,
            cohorts=cohorts,
            average=[_average([c for c in cohorts if c.breakdown == bd], n, self.value is not None) for bd in labels],
        )
        if "people" in data:
            result.people = people_from(data["people"])
        return result

    def _value0_apart(self) -> bool:
        """Whether period 0's value comes from its own part: recurring entries whose return event differs from
        the start event."""
        differs = self.return_event is not None and self.return_event != self.start
        return self.value is not None and self.start_type == "recurring" and differs

    def _label(self, bd: Any) -> str | None:
        if self.breakdown is None:
            return None
        return NONE if bd is None else str(bd)

    def _row(
        self,
        ctx: Context,
        grid: PeriodGrid,
        j: int,
        bd: str | None,
        sizes: dict[tuple[int, str | None], int],
        raw: dict[tuple[int, str | None], list[int]],
        sums: dict[tuple[int, str | None], list[float]],
    ) -> RetentionCohort:
        n = self.periods
        size = sizes.get((j, bd), 0)
        exact = raw.get((j, bd), [0] * (n + 1))
        counts = exact if self.mode == "on" else [sum(exact[k:]) for k in range(n + 1)]
        started = [grid.start(j + k) <= ctx.today for k in range(n + 1)]
        last_needed = [k if self.mode == "on" else n for k in range(n + 1)]
        complete = [grid.end(j + last_needed[k]) < ctx.today for k in range(n + 1)]
        cells: list[int | None] = [c if ok else None for c, ok in zip(counts, started, strict=True)]
        row = RetentionCohort(
            cohort=grid.start(j).isoformat(),
            breakdown=bd,
            size=size,
            counts=cells,
            rates=[None if c is None or size == 0 else c / size for c in cells],
            complete=complete,
        )
        if self.value is not None:
            total = sums.get((j, bd), [0.0] * (n + 1))
            row.value_totals = [t if ok else None for t, ok in zip(total, started, strict=True)]
            row.values = [None if t is None or size == 0 else t / size for t in row.value_totals]
        return row


@dataclass(frozen=True)
class _Parts:
    """The pieces both cohort shapes use, compiled once."""

    ctx: Context
    full: PeriodGrid  # the cohorts and the ``periods`` after the last one
    lo: datetime  # start of the first cohort
    chi: datetime  # end of the last cohort (or of today)
    hi: datetime  # end of the last period followed (or of today)
    start: exp.Expr
    ret: exp.Expr
    filters: exp.Expr
    skey: exp.Expr  # what min() over start events keeps: the time, or (time, has no value, value)
    t0: exp.Expr  # the start time out of ``s``
    s_bd: exp.Expr  # the breakdown value out of ``s``
    value: exp.Expr  # the value property of an event row (a typed NULL without value retention)
    value_sum: exp.Expr  # its sum over a group (a typed NULL without value retention)
    events: exp.Expr

    @classmethod
    def of(cls, q: RetentionQuery, ctx: Context, grid: PeriodGrid) -> _Parts:
        full = grid.extended(q.periods)
        lo, hi = scan_bounds(ctx, full, 0, full.count - 1)
        event_bd = q.breakdown is not None and q.breakdown.source == "event"
        bd = breakdown_value(ctx, q.breakdown, "e") if event_bd and q.breakdown else exp.null()
        value = q.value_expr(ctx)
        return cls(
            ctx=ctx,
            full=full,
            lo=lo,
            chi=scan_bounds(ctx, grid, 0, grid.count - 1)[1],
            hi=hi,
            start=grouped(ctx.event_cond(q.start)),
            ret=grouped(ctx.event_cond(q.returning)),
            filters=grouped(ctx.filters_cond(q.filters)),
            skey=sql("struct_pack(t := e.time, n := $bd IS NULL, b := $bd)", bd=bd) if event_bd else col("time", "e"),
            t0=sql("struct_extract(s, 't')") if event_bd else exp.column("s"),
            s_bd=sql("struct_extract(s, 'b')") if event_bd else exp.null(),
            value=value,
            value_sum=exp.func("sum", value) if q.value is not None else value,
            events=ctx.table("events"),
        )

    def index_of(self, column: exp.Expr) -> exp.Expr:
        return period_index(self.ctx, column, self.full)


class RetentionCohort(Result):
    cohort: str
    breakdown: str | None = None
    size: int
    counts: list[int | None]
    rates: list[float | None]
    complete: list[bool]
    value_totals: list[float | None] | None = None
    values: list[float | None] | None = None


class RetentionAverage(Result):
    """Per period: the cohorts whose cell is complete, pooled (``sizes``: their summed sizes)."""

    breakdown: str | None = None
    sizes: list[int]
    counts: list[int]
    rates: list[float | None]
    values: list[float | None] | None = None


class RetentionResult(Result):
    interval: PeriodInterval
    periods: int
    mode: str
    start_type: str
    cohorts: list[RetentionCohort]
    average: list[RetentionAverage]
    people: People | None = None


# helpers ----------------------------------------------------------------------------------------------------------
def _average(rows: list[RetentionCohort], n: int, with_value: bool) -> RetentionAverage:
    sizes, counts, totals = [0] * (n + 1), [0] * (n + 1), [0.0] * (n + 1)
    for row in rows:
        for k in range(n + 1):
            count = row.counts[k]
            if row.complete[k] and count is not None:
                sizes[k] += row.size
                counts[k] += count
                totals[k] += (row.value_totals or [0.0] * (n + 1))[k] or 0.0
    avg = RetentionAverage(
        breakdown=rows[0].breakdown if rows else None,
        sizes=sizes,
        counts=counts,
        rates=[c / s if s else None for c, s in zip(counts, sizes, strict=True)],
    )
    if with_value:
        avg.values = [t / s if s else None for t, s in zip(totals, sizes, strict=True)]
    return avg


def _order_labels(sizes: dict[tuple[int, str | None], int]) -> list[str | None]:
    """Breakdown values by their total cohort size, largest first; ``$other`` and ``$none`` last."""
    totals: dict[str | None, int] = {}
    for (_, bd), size in sizes.items():
        totals[bd] = totals.get(bd, 0) + size
    return sorted(totals, key=lambda bd: (bd in (OTHER, NONE), -totals[bd], bd or ""))


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


__all__ = [
    "People",
    "PeriodGrid",
    "RetentionQuery",
    "RetentionResult",
    "people_statement",
    "period_index",
    "zone_offsets",
]
