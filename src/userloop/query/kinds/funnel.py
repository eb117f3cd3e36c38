"""Funnels: how many people go through a series of steps, where they drop off, and how long it takes.

A funnel is 2 to 40 steps (an event or ``$any`` with filters), an ``order``, a conversion ``window``, optional
``exclusions`` and a ``breakdown``. The definitions below are exact; ``tests/query/reference_funnel.py`` restates
them in plain Python and the property tests hold the SQL to them.

**Events a funnel sees.** A person's events are totally ordered by ``(time, event_id)``; "after" means later in
that order, so two events at the same instant are still ordered. The global ``filters`` apply to every event the
funnel uses (steps, exclusions, and the "other events" of the strict order). Step 1 must fall inside the date
range (local days of the project's time zone); later steps may fall after the range's end as long as they are
within the window, so the scan reads events from the range's first local midnight to the end of the range plus
the window.

**Attempts (``sequential`` and ``strict``).** An attempt reaching step ``k`` is a chain of distinct events
``e1 < e2 < … < ek`` (in the order above) where ``ei`` matches its step, ``e1`` is a step-1 event in the date
range and ``time(ek) − time(e1) ≤ window``. One event never fills two steps of one attempt (the chain is strictly
increasing), though it may fill different steps of different attempts. An ``optional`` step may be left out: the
step after it may then follow the previous required step directly (the first and last steps are required).
``strict`` adds: each event of the chain is the very next event of the person after the previous one, i.e. no
other event passing the global filters lies between them. Each person counts at step ``k`` when some attempt
reaches step ``k``; the person's *depth* is the deepest step any attempt reaches.

**Any order.** Steps must be different events (so one event matches at most one step). An attempt starts at any
event ``e0`` of a step inside the date range and includes, for every step, the first event of that step at or
after ``e0`` whose time is at most ``time(e0) + window``; its level is the number of steps it includes. Result
step ``k`` counts the people with an attempt of level ``k`` or more ("completed k of the steps").

**The attempt used for times and attribution.** For every person and step ``k`` the funnel uses one attempt that
reaches ``k``: the shortest (``time(ek) − time(e1)``); among equally short ones the one whose step-``k`` event
comes first; then the latest possible start and, going back from step ``k``, each earlier step's event as late
as possible (for ``any`` order: the shortest, then the earliest start). ``avg/median_time_from_first`` of step
``k`` summarise that attempt's duration over the people reaching ``k``, ``avg/median_time_from_previous`` the gap
between its last two events. The person's *chosen attempt* is the one for their depth; the breakdown value
comes from it: ``first_touch`` is the value on its first event (its step-1 event; in any order whichever step
started it), ``last_touch`` on its last event, ``{"step": k}`` on its step-``k`` event (``$none`` when the
attempt has no step ``k``). Time to convert (the histogram and the series' averages) is the duration of the
attempt reaching the last step.

**Exclusions** (ordered funnels only; ``from_step`` and ``to_step`` are required steps). A person is removed from
the funnel entirely (counted nowhere) when their chosen attempt reaches ``from_step`` and an excluded event comes
after its ``from_step`` event and before its ``to_step`` event, or, when the attempt stops before ``to_step``, at
most ``window`` after the attempt's start. This is PostHog's rule of removing people who did the excluded event
between the steps, applied to the one attempt the funnel reports for the person.

**Counts.** Step ``k``'s ``count`` is the people reaching it; ``conversion_from_previous`` and ``dropped`` compare
with the previous *required* step (an optional step never loses people for the step after it); the breakpoint is
the required step with the highest drop-off rate (DOMAIN §6 item 3: the step where most people are lost).
``people`` lists who reached a step (``converted``) or reached the previous required step but not this one
(``dropped``). The conversion ``trend`` puts each person in the bucket of their first step-1 event in the range
and counts them as converted when they reached the last step (with any attempt starting in the range).

How it runs. One scan of the events (the date range plus the window) with a bit per step and exclusion, then one
statement of CTEs. Sequential order: for each step ``k`` one window pass over only the step-``k`` rows and the
finished rows of the steps that may precede ``k`` (``f{j}``: rows that end an attempt within the window, with
their chain), ordered by ``(time, event_id)``; each step-``k`` row points (``last_value … IGNORE NULLS`` over the
strictly preceding rows) at the last candidate before it, and a hash join on that pointer brings the candidate's
chain. The latest start of a chain ending at a row never decreases along the person's rows of a step, so the last
candidate is the best one; a row whose best chain is longer than the window can never be extended within it and
is dropped for good. Without optional steps each row enters at most two passes (as a step-``k`` row and as a
candidate for ``k + 1``), so the cost grows with the rows, not with steps × rows (ClickHouse's ``windowFunnel``
keeps the same "latest start per level" state, in one per-person scan). Strict order computes the previous event
of every row in one ``lag`` pass and follows it with hash joins only. Any order is one pass of ``first_value``
windows looking forward. The rest (the best attempt per person and step, the chosen attempt, breakdown values,
outputs) are hash aggregates over one row per person and step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, buckets, col, literal, or_, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.spec import ANY_EVENT, NONE, OTHER, Breakdown, EventRef, Spec
from userloop.schema.types import PropertyType

MAX_STEPS = 40
MAX_EXCLUSIONS = 10
MICROS = 1_000_000
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
MAX_WINDOW_SECONDS = 366 * 86_400
#: Sorting roles in a pass: an excluded event before the step row of the same event (so "strictly after" skips
#: it), the step row, then the candidate rows (so "strictly before" skips the same event's other steps).
_ROLE_EXCLUDED, _ROLE_TARGET, _ROLE_CANDIDATE = 0, 1, 2
#: A time later than any event, for list slots that are not used.
_NEVER = 2**62


class ConversionWindow(Spec):
    """How long an attempt may take, from its step-1 event to its last step: ``{"value": 7, "unit": "day"}``."""

    value: int = Field(14, ge=1)
    unit: Literal["minute", "hour", "day", "week"] = "day"

    @model_validator(mode="after")
    def _not_too_long(self) -> ConversionWindow:
        if self.seconds > MAX_WINDOW_SECONDS:
            raise ValueError("a conversion window may be at most 366 days")
        return self

    @property
    def seconds(self) -> int:
        return self.value * UNIT_SECONDS[self.unit]


class FunnelStep(EventRef):
    """A step: an event (or ``$any``) with filters; an optional step may be skipped."""

    optional: bool = False


class Exclusion(EventRef):
    """People who do this event between ``from_step`` and ``to_step`` (1-based; default: the whole funnel) of
    their chosen attempt are removed from the funnel."""

    from_step: int = Field(1, ge=1)
    to_step: int | None = Field(None, ge=2, description="Defaults to the last step.")


class StepAttribution(Spec):
    step: int = Field(ge=1, description="Take the breakdown value from this step's event (1-based).")


class PeopleRequest(Spec):
    """Which people to list: those who reached ``step`` (``converted``) or dropped off right before it."""

    step: int = Field(ge=1)
    status: Literal["converted", "dropped"] = "converted"
    limit: int = Field(100, ge=1, le=10_000)
    breakdown: str | None = Field(None, description="Only people with this breakdown value.")


class FunnelQuery(Analysis):
    kind: Literal["funnel"] = "funnel"
    steps: list[FunnelStep] = Field(min_length=2, max_length=MAX_STEPS)
    order: Literal["sequential", "strict", "any"] = "sequential"
    window: ConversionWindow = Field(default_factory=lambda: ConversionWindow(value=14, unit="day"))
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    breakdown: Breakdown | None = None
    breakdown_attribution: Literal["first_touch", "last_touch"] | StepAttribution = "first_touch"
    people: PeopleRequest | None = None
    trend_interval: Literal["day", "week", "month"] | None = None
    time_to_convert_bins: int = Field(10, ge=1, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> FunnelQuery:
        n = len(self.steps)
        if self.steps[0].optional or self.steps[-1].optional:
            raise ValueError("steps: the first and the last step cannot be optional; make them required")
        if self.order == "any":
            if any(s.optional for s in self.steps):
                raise ValueError("steps: optional steps need order 'sequential' or 'strict' ('any' counts steps done)")
            if self.exclusions:
                raise ValueError("exclusions sit between two steps, so they need order 'sequential' or 'strict'")
            names = [s.event for s in self.steps]
            if ANY_EVENT in names:
                raise ValueError("steps: in 'any' order every step must name an event ('$any' would match every step)")
            if len(set(names)) != n:
                raise ValueError(
                    "steps: in 'any' order the steps must be different events, so one event fills at most one step; "
                    "use order 'sequential' to repeat an event"
                )
        for i, x in enumerate(self.exclusions):
            to = n if x.to_step is None else x.to_step
            if not 1 <= x.from_step < to <= n:
                raise ValueError(
                    f"exclusions.{i}: from_step {x.from_step} and to_step {to} must satisfy 1 ≤ from < to ≤ {n}"
                )
            if self.steps[x.from_step - 1].optional or self.steps[to - 1].optional:
                raise ValueError(f"exclusions.{i}: from_step and to_step must be required (not optional) steps")
        if isinstance(self.breakdown_attribution, StepAttribution) and self.breakdown_attribution.step > n:
            raise ValueError(
                f"breakdown_attribution.step is {self.breakdown_attribution.step}; the funnel has {n} steps"
            )
        if self.people is not None:
            p = self.people
            if p.step > n:
                raise ValueError(f"people.step is {p.step}; the funnel has {n} steps")
            if p.status == "dropped" and p.step == 1:
                raise ValueError("people: nobody drops off before step 1; ask for 'dropped' at step 2 or later")
            if p.breakdown is not None and self.breakdown is None:
                raise ValueError("people.breakdown needs a breakdown in the funnel; add 'breakdown' or drop it")
        return self

    # facts -----------------------------------------------------------------------------------------------------
    def exclusion_span(self, i: int) -> tuple[int, int]:
        x = self.exclusions[i]
        return x.from_step, len(self.steps) if x.to_step is None else x.to_step

    def previous_required(self, k: int) -> int:
        """The required step before step ``k`` (1-based; ``k`` ≥ 2)."""
        j = k - 1
        while self.steps[j - 1].optional:
            j -= 1
        return j

    def predecessors(self, k: int) -> list[int]:
        """Steps an attempt may do right before step ``k``: the previous required one and the optional ones after
        it."""
        return list(range(self.previous_required(k), k))

    def attribution_step(self) -> int | None:
        """The step whose event gives the breakdown value; None for last touch."""
        a = self.breakdown_attribution
        if isinstance(a, StepAttribution):
            return a.step
        return 1 if a == "first_touch" else None

    # statements ------------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        return {"funnel": _Compiler(ctx, self).statement()}

    # shaping ---------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> FunnelResult:
        frame = data["funnel"]
        n = len(self.steps)
        per: dict[str | None, dict[int, dict[str, Any]]] = {}
        bins: dict[int, int] = {}
        lo = width = 0
        people: list[int] = []
        people_total = 0
        trend: dict[str, tuple[int, int]] = {}
        for section, bd, k, count, a, b, c, d, tot in frame.rows:
            if section == "step":
                key = None if tot else bd
                per.setdefault(key, {})[int(k)] = {"n": int(count), "a": a, "b": b, "c": c, "d": d}
            elif section == "ttc":
                bins[int(k)] = int(count)
                lo, width = int(a), int(b)
            elif section == "people":
                people.append(int(count))
            elif section == "people_total":
                people_total = int(count)
            elif section == "trend":
                trend[str(bd)] = (int(count), int(k))
        total = self._series(per.get(None, {}), None)
        breakdowns = None
        if self.breakdown is not None:
            series = [self._series(steps, bd) for bd, steps in per.items() if bd is not None]
            breakdowns = sorted(series, key=lambda s: (s.breakdown in (OTHER, NONE), -s.entered, s.breakdown or ""))
        histogram = [
            TimeBin(
                from_seconds=(lo + i * width) / MICROS, to_seconds=(lo + (i + 1) * width) / MICROS, count=bins.get(i, 0)
            )
            for i in range(max(bins) + 1 if bins else 0)
        ]
        result = FunnelResult(
            order=self.order,
            window_seconds=self.window.seconds,
            steps=total.steps,
            entered=total.entered,
            converted=total.converted,
            conversion_rate=total.conversion_rate,
            avg_time_to_convert=total.avg_time_to_convert,
            median_time_to_convert=total.median_time_to_convert,
            time_to_convert=histogram,
            breakdowns=breakdowns,
        )
        if self.people is not None:
            result.people = FunnelPeople(
                step=self.people.step,
                status=self.people.status,
                breakdown=self.people.breakdown,
                total=people_total,
                user_ids=sorted(people),
            )
        if self.trend_interval is not None:
            first, last = ctx.days(self.date_range)
            points = []
            for bucket in buckets(self.trend_interval, first, last):
                label = bucket.isoformat()
                entered, converted = trend.get(label, (0, 0))
                points.append(
                    FunnelTrendPoint(
                        bucket=label, entered=entered, converted=converted, rate=_ratio(converted, entered)
                    )
                )
            result.trend = points
        assert len(result.steps) == n
        return result

    def _series(self, per_step: dict[int, dict[str, Any]], breakdown: str | None) -> FunnelSeries:
        n = len(self.steps)
        counts = {k: per_step.get(k, {}).get("n", 0) for k in range(1, n + 1)}
        steps: list[FunnelStepResult] = []
        for k in range(1, n + 1):
            row = per_step.get(k, {})
            prev = counts[self.previous_required(k)] if k > 1 else counts[1]
            dropped = prev - counts[k] if k > 1 else 0
            steps.append(
                FunnelStepResult(
                    step=k,
                    label=self._label(k),
                    event=None if self.order == "any" else self.steps[k - 1].event,
                    optional=self.steps[k - 1].optional,
                    count=counts[k],
                    conversion_from_first=_ratio(counts[k], counts[1]),
                    conversion_from_previous=_ratio(counts[k], prev),
                    dropped=dropped,
                    drop_off_rate=_ratio(dropped, prev) if k > 1 else None,
                    avg_time_from_previous=_seconds(row.get("a")) if k > 1 else None,
                    median_time_from_previous=_seconds(row.get("b")) if k > 1 else None,
                    avg_time_from_first=_seconds(row.get("c")),
                    median_time_from_first=_seconds(row.get("d")),
                )
            )
        rates = [
            (s.drop_off_rate, -s.step)
            for s in steps[1:]
            if not s.optional and s.drop_off_rate is not None and s.drop_off_rate > 0
        ]
        if rates:
            steps[-max(rates)[1] - 1].is_breakpoint = True
        last = steps[-1]
        return FunnelSeries(
            breakdown=breakdown,
            steps=steps,
            entered=counts[1],
            converted=counts[n],
            conversion_rate=_ratio(counts[n], counts[1]),
            avg_time_to_convert=last.avg_time_from_first,
            median_time_to_convert=last.median_time_from_first,
        )

    def _label(self, k: int) -> str:
        if self.order == "any":
            return f"{k} of {len(self.steps)} steps"
        return self.steps[k - 1].label


# results ----------------------------------------------------------------------------------------------------------
class FunnelStepResult(Result):
    step: int
    label: str
    event: str | None
    optional: bool = False
    count: int
    conversion_from_first: float | None
    conversion_from_previous: float | None
    dropped: int
    drop_off_rate: float | None
    avg_time_from_previous: float | None = Field(None, description="Seconds.")
    median_time_from_previous: float | None = None
    avg_time_from_first: float | None = None
    median_time_from_first: float | None = None
    is_breakpoint: bool = False


class FunnelSeries(Result):
    breakdown: str | None = None
    steps: list[FunnelStepResult]
    entered: int
    converted: int
    conversion_rate: float | None
    avg_time_to_convert: float | None = Field(None, description="Seconds from step 1 to the last step.")
    median_time_to_convert: float | None = None


class TimeBin(Result):
    from_seconds: float
    to_seconds: float
    count: int


class FunnelPeople(Result):
    step: int
    status: Literal["converted", "dropped"]
    breakdown: str | None = None
    total: int
    user_ids: list[int]


class FunnelTrendPoint(Result):
    bucket: str
    entered: int
    converted: int
    rate: float | None


class FunnelResult(Result):
    order: str
    window_seconds: int
    steps: list[FunnelStepResult]
    entered: int
    converted: int
    conversion_rate: float | None
    avg_time_to_convert: float | None
    median_time_to_convert: float | None
    time_to_convert: list[TimeBin]
    breakdowns: list[FunnelSeries] | None = None
    people: FunnelPeople | None = None
    trend: list[FunnelTrendPoint] | None = None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value) / MICROS


# compilation ------------------------------------------------------------------------------------------------------
def funnel_levels(ctx: Context, funnel: FunnelQuery) -> exp.Select:
    """Every person who entered ``funnel`` (and was not excluded), one row each: ``user_id``, ``level`` (the
    deepest step any attempt reached, 1-based) and ``last_step_time`` (naive UTC time of that step's event in the
    person's chosen attempt — see the module docstring). Paths after a drop-off start from ``last_step_time``."""
    c = _Compiler(ctx, funnel)
    query = sql(
        "SELECT m.user_id AS user_id, m.depth AS level, make_timestamp(m.lt) AS last_step_time FROM members AS m"
    )
    return c.with_ctes(query, upto="members")  # type: ignore[return-value]


@dataclass
class _Compiler:
    ctx: Context
    q: FunnelQuery

    def __post_init__(self) -> None:
        first, last = self.ctx.days(self.q.date_range)
        self.first, self.last = first, last
        lo, hi = self.ctx.utc_bounds(first, last)
        self.lo, self.hi = lo, hi
        self.w_us = self.q.window.seconds * MICROS
        self.hi_us = _epoch_us(hi)
        self.n = len(self.q.steps)
        self.ctes: list[tuple[str, exp.Expr, bool]] = []
        self._check_options()

    # checks that need the project's schema ---------------------------------------------------------------------
    def _check_options(self) -> None:
        b = self.q.breakdown
        if b is None:
            return
        ptype = self.ctx.prop_type(b.source, b.property)
        if b.bins is not None:
            raise ValidationError("funnels break down by property values; remove 'bins' from the breakdown")
        if ptype == PropertyType.LIST:
            raise ValidationError(f"{b.property!r} is a list; break down by a single-valued property")

    # the whole statement ----------------------------------------------------------------------------------------
    def statement(self) -> exp.Expr:
        self._build()
        parts = [self._steps_section(), self._ttc_section()]
        if self.q.people is not None:
            parts.extend(self._people_sections())
        if self.q.trend_interval is not None:
            parts.append(self._trend_section())
        body = parts[0]
        for p in parts[1:]:
            body = exp.union(body, p, distinct=False)
        return self._attach(body, [name for name, _, _ in self.ctes])

    def with_ctes(self, query: exp.Expr, upto: str) -> exp.Expr:
        self._build()
        names = [name for name, _, _ in self.ctes]
        return self._attach(query, names[: names.index(upto) + 1])

    def _attach(self, query: exp.Expr, names: list[str]) -> exp.Expr:
        wanted = set(names)
        ctes = [
            exp.CTE(this=tree, alias=exp.TableAlias(this=exp.to_identifier(name)), materialized=shared or None)
            for name, tree, shared in self.ctes
            if name in wanted
        ]
        if isinstance(query, exp.Union):
            query = exp.select("*").from_(exp.Subquery(this=query, alias="out"))
        query.set("with_", exp.With(expressions=ctes))
        return query

    def _add(self, name: str, tree: exp.Expr, shared: bool = False) -> None:
        """A CTE; ``shared`` ones are read by several later steps and computed once (``MATERIALIZED``)."""
        self.ctes.append((name, tree, shared))

    def _build(self) -> None:
        if self.ctes:
            return
        self._add("scan", self._scan(), shared=self.q.order != "strict")
        if self._fast():
            self._fast_reach()
        elif self.q.order == "any":
            self._any_reach()
        else:
            if self.q.order == "strict":
                self._add("seq", self._seq(), shared=True)
            for k in range(1, self.n + 1):
                self._add(f"f{k}", self._pass(k), shared=True)
            branches = [self._reach_row(k) for k in range(1, self.n + 1)]
            reach = branches[0]
            for b in branches[1:]:
                reach = exp.union(reach, b, distinct=False)
            self._add("reach", reach)
        if not self._fast():
            self._add("best", _best("reach"), shared=True)
        self._add(
            "persons",
            sql(
                """SELECT b.user_id AS user_id, max(b.k) AS depth, arg_max(b.s, b.k) AS c,
                     bit_or(CAST(1 AS BIGINT) << (b.k - 1)) AS rm,
                     max(CASE WHEN b.k = 1 THEN struct_extract(b.s, 'o1') END) AS entry
                   FROM best AS b GROUP BY b.user_id"""
            ),
        )
        self._add("members", self._members(), shared=True)
        self._add("lab", self._labelled(), shared=True)

    # scan --------------------------------------------------------------------------------------------------------
    def _scan(self) -> exp.Expr:
        ctx, q = self.ctx, self.q
        conds = [ctx.event_cond(s, "e") for s in q.steps] + [ctx.event_cond(x, "e") for x in q.exclusions]
        mask: exp.Expr = exp.Literal.number(0)
        for i, cond in enumerate(conds):
            mask = exp.Add(this=mask, expression=sql("CASE WHEN $c THEN $bit ELSE 0 END", c=cond, bit=1 << i))
        scan_end = self.hi + timedelta(seconds=self.q.window.seconds)
        parts = [
            exp.GTE(this=col("time", "e"), expression=literal(self.lo)),
            exp.LT(this=col("time", "e"), expression=literal(scan_end)),
            ctx.filters_cond(q.filters, "e"),
        ]
        if q.order != "strict":
            parts.append(exp.paren(or_(conds)))
        value: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
        b = q.breakdown
        if b is not None and b.source == "event":
            value = exp.cast(ctx.prop("event", b.property, "e"), exp.DataType.Type.VARCHAR)
        return sql(
            """SELECT e.user_id AS user_id, epoch_us(e.time) AS t, e.event_id AS eid, $value AS v,
                 CAST($mask AS BIGINT) AS m, e.rowid AS rid
               FROM $events AS e WHERE $where""",
            value=value,
            mask=mask,
            events=ctx.table("events"),
            where=and_(parts),
        )

    def _bit(self, index: int) -> exp.Expr:
        """``m`` has bit ``index`` (0-based: steps first, then exclusions)."""
        return sql("(m & $bit) <> 0", bit=1 << index)

    def _step_bit(self, k: int, alias: str | None = None) -> exp.Expr:
        cond = self._bit(k - 1)
        return _qualify(cond, alias) if alias else cond

    def _excl_bit(self, i: int, alias: str | None = None) -> exp.Expr:
        cond = self._bit(self.n + i)
        return _qualify(cond, alias) if alias else cond

    # sequential, plain: the latest-start recurrence ----------------------------------------------------------------
    def _fast(self) -> bool:
        """A sequential funnel without optional steps, exclusions or an event-property breakdown needs no chain
        payload: every output follows from each step event's latest start and previous step's time."""
        q = self.q
        return (
            q.order == "sequential"
            and not q.exclusions
            and not any(step.optional for step in q.steps)
            and not self._event_breakdown()
        )

    def _fast_reach(self) -> None:
        """One window pass per step over a shrinking row set, no joins.

        ``r{k}`` holds the rows still useful after step ``k``: those that end an attempt at step ``k`` within the
        window (``l``: the latest start of a chain ending there; ``p``: the time of that chain's step ``k−1``
        event) and those matching a later step. For a step-``k`` row the latest start is the last ``l`` among the
        strictly earlier rows (in ``(time, event_id)`` order) that end an attempt at ``k−1`` — ``l`` never
        decreases along a person's rows, so the last is the largest — and the latest step ``k−1`` event of that
        chain is that same row: the attempt the module docstring chooses. These are the rows the general passes
        produce, without carrying chains."""
        later = {k: or_([self._step_bit(j, "s") for j in range(k + 1, self.n + 1)]) for k in range(1, self.n + 1)}
        first = exp.and_(self._step_bit(1, "s"), exp.LT(this=col("t", "s"), expression=literal(self.hi_us)))
        # read once (by r2): inlined, not stored
        self._add(
            "r1",
            sql(
                """SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.m AS m,
                     CASE WHEN $first THEN s.t END AS l, CAST(NULL AS BIGINT) AS p
                   FROM scan AS s WHERE $first OR $later""",
                first=first,
                later=later[1],
            ),
        )
        for k in range(2, self.n + 1):
            ends = sql("$is_k AND w.t - w.cl <= $window", is_k=self._step_bit(k, "w"), window=self.w_us)
            self._add(
                f"r{k}",
                sql(
                    """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.m AS m,
                         CASE WHEN $ends THEN w.cl END AS l, CASE WHEN $ends THEN w.cp END AS p
                       FROM (SELECT s.user_id, s.t, s.eid, s.m,
                               last_value(s.l IGNORE NULLS) OVER (PARTITION BY s.user_id ORDER BY s.t, s.eid
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS cl,
                               last_value(CASE WHEN s.l IS NOT NULL THEN s.t END IGNORE NULLS) OVER (
                                 PARTITION BY s.user_id ORDER BY s.t, s.eid
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS cp
                             FROM $prev AS s) AS w
                       WHERE $ends OR $later""",
                    ends=ends,
                    later=_qualify(later[k], "w") if k < self.n else exp.false(),
                    prev=exp.to_identifier(f"r{k - 1}"),
                ),
                shared=True,
            )
        branches = [
            sql(
                """SELECT r.user_id AS user_id, $k AS k, r.t - r.l AS d, r.t AS o1, r.eid AS o2, r.t - r.p AS g,
                     CAST(NULL AS VARCHAR) AS bv, r.t AS lt, FALSE AS xs
                   FROM $r AS r WHERE r.l IS NOT NULL""",
                k=k,
                r=exp.to_identifier(f"r{k}"),
            )
            for k in range(2, self.n + 1)
        ]
        reach = branches[0]
        for b in branches[1:]:
            reach = exp.union(reach, b, distinct=False)
        self._add("reach", reach)
        # step 1: every attempt is one event (duration 0); the chosen one is the person's first, so a plain
        # min(time) per person replaces the struct minimum over every step-1 row
        entered = sql(
            """SELECT s.user_id AS user_id, 1 AS k,
                 {'d': CAST(0 AS BIGINT), 'o1': min(s.t), 'o2': CAST(NULL AS VARCHAR), 'g': CAST(NULL AS BIGINT),
                  'bv': CAST(NULL AS VARCHAR), 'lt': min(s.t), 'xs': FALSE} AS s
               FROM scan AS s WHERE $first GROUP BY s.user_id""",
            first=first,
        )
        self._add("best", exp.union(entered, _best("reach"), distinct=False), shared=True)

    # ordered: chains -------------------------------------------------------------------------------------------
    def _seq(self) -> exp.Expr:
        """Strict order: the scanned events that match a step or exclusion, each with a pointer to the previous
        event of the same person (any event) and, per exclusion, the next excluded event after it."""
        select = sql(
            """SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.m AS m, s.rid AS rid,
                 lag(s.rid) OVER (PARTITION BY s.user_id ORDER BY s.t, s.eid) AS prid
               FROM scan AS s"""
        )
        assert isinstance(select, exp.Select)
        for i in range(len(self.q.exclusions)):
            nx = sql(
                """first_value(CASE WHEN $cond THEN {'t': s.t, 'e': s.eid} END IGNORE NULLS) OVER (
                     PARTITION BY s.user_id ORDER BY s.t, s.eid ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)""",
                cond=self._excl_bit(i, "s"),
            )
            select = select.select(exp.alias_(nx, f"nx{i}"))
        return sql("SELECT z.* FROM ($all) AS z WHERE z.m <> 0", all=select)

    def _pass(self, k: int) -> exp.Expr:
        """The rows of step ``k`` that end an attempt within the window, each with its chosen chain's payload.

        Sequential order: one window over the step-``k`` rows, the finished rows of the steps that may come
        right before ``k`` (candidates) and the excluded events whose span starts at ``k``, ordered by ``(time,
        event_id, role)``; each step-``k`` row points at the last candidate strictly before it (per candidate
        step), and a hash join on that pointer brings the candidate's chain."""
        if self.q.order == "strict":
            return self._strict_pass(k)
        starting = [i for i in range(len(self.q.exclusions)) if self.q.exclusion_span(i)[0] == k]
        preds = self.q.predecessors(k) if k > 1 else []
        if k == 1 and not starting:
            return sql(
                "SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM scan AS s WHERE $cond AND s.t < $hi",
                pl=self._payload(k, None, {}, "s"),
                cond=self._step_bit(1, "s"),
                hi=self.hi_us,
            )
        target_where = [self._step_bit(k, "s")]
        if k == 1:
            target_where.append(exp.LT(this=col("t", "s"), expression=literal(self.hi_us)))
        else:
            target_where.append(
                sql("s.user_id IN (SELECT p.user_id FROM $prev AS p)", prev=exp.to_identifier(f"f{preds[0]}"))
            )
        union: exp.Expr = sql(
            "SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.rid AS rid, $role AS role, 0 AS j "
            "FROM scan AS s WHERE $where",
            role=_ROLE_TARGET,
            where=and_(target_where),
        )
        for j in preds:
            # candidates only of people who have a step-k row
            union = exp.union(
                union,
                sql(
                    """SELECT p.user_id, p.t, p.eid, NULL, p.rid, $role, $j FROM $prev AS p
                       WHERE p.user_id IN (SELECT s.user_id FROM scan AS s WHERE $cond)""",
                    role=_ROLE_CANDIDATE,
                    j=j,
                    prev=exp.to_identifier(f"f{j}"),
                    cond=self._step_bit(k, "s"),
                ),
                distinct=False,
            )
        for i in starting:
            x_where = [self._excl_bit(i, "s")]
            if k > 1:
                x_where.append(
                    sql("s.user_id IN (SELECT p.user_id FROM $prev AS p)", prev=exp.to_identifier(f"f{preds[0]}"))
                )
            union = exp.union(
                union,
                sql(
                    "SELECT s.user_id, s.t, s.eid, NULL, s.rid, $role, $i FROM scan AS s WHERE $where",
                    role=_ROLE_EXCLUDED,
                    i=i,
                    where=and_(x_where),
                ),
                distinct=False,
            )
        windowed = sql("SELECT q.* FROM ($union) AS q", union=union)
        assert isinstance(windowed, exp.Select)
        for j in preds:
            pointer = sql(
                """last_value(CASE WHEN q.role = $role AND q.j = $j THEN q.rid END IGNORE NULLS) OVER (
                     PARTITION BY q.user_id ORDER BY q.t, q.eid, q.role
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)""",
                role=_ROLE_CANDIDATE,
                j=j,
            )
            windowed = windowed.select(exp.alias_(pointer, f"c{j}"))
        for i in starting:
            nx = sql(
                """first_value(CASE WHEN q.role = $role AND q.j = $i THEN {'t': q.t, 'e': q.eid} END IGNORE NULLS)
                   OVER (PARTITION BY q.user_id ORDER BY q.t, q.eid, q.role
                         ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)""",
                role=_ROLE_EXCLUDED,
                i=i,
            )
            windowed = windowed.select(exp.alias_(nx, f"nx{i}"))
        targets = sql("SELECT r.* FROM ($windowed) AS r WHERE r.role = $role", windowed=windowed, role=_ROLE_TARGET)
        if k == 1:
            nxs = {i: exp.column(f"nx{i}", "w") for i in starting}
            return sql(
                "SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM ($targets) AS w",
                pl=self._payload(k, None, nxs, "w"),
                targets=targets,
            )
        return self._join_candidates(k, targets, {j: exp.column(f"c{j}", "r") for j in preds}, starting)

    def _strict_pass(self, k: int) -> exp.Expr:
        """Strict order: a step-``k`` event continues the chain of the event right before it, if that event
        finished one of the steps that may come right before ``k``."""
        starting = [i for i in range(len(self.q.exclusions)) if self.q.exclusion_span(i)[0] == k]
        if k == 1:
            return sql(
                "SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM seq AS w WHERE $cond AND w.t < $hi",
                pl=self._payload(1, None, {i: exp.column(f"nx{i}", "w") for i in starting}, "w"),
                cond=self._step_bit(1, "w"),
                hi=self.hi_us,
            )
        targets = sql("SELECT r.* FROM seq AS r WHERE $cond", cond=self._step_bit(k, "r"))
        preds = self.q.predecessors(k)
        return self._join_candidates(k, targets, {j: exp.column("prid", "r") for j in preds}, starting)

    def _join_candidates(
        self, k: int, targets: exp.Expr, pointers: Mapping[int, exp.Expr], starting: list[int]
    ) -> exp.Expr:
        """Step-``k`` rows with the chain of the candidate each points at (per candidate step ``j``, the row
        ``pointers[j]`` of ``f{j}``): the candidate with the latest start, then the latest row, then the higher
        step; kept when that attempt fits the window."""
        select = sql("SELECT r.* FROM ($targets) AS r", targets=targets)
        assert isinstance(select, exp.Select)
        cands = []
        for j, pointer in pointers.items():
            alias = exp.to_identifier(f"p{j}")
            select = select.join(
                exp.table_(f"f{j}"),
                on=sql("$a.rid = $pointer", a=alias, pointer=pointer),
                join_type="left",
                join_alias=f"p{j}",
            )
            cands.append(
                sql(
                    """CASE WHEN $a.rid IS NOT NULL THEN
                         {'st': struct_extract($a.pl, 'st'), 'se': struct_extract($a.pl, 'se'), 't': $a.t,
                          'e': $a.eid, 'j': $j, 'pl': $a.pl} END""",
                    a=alias,
                    j=j,
                )
            )
        picked = select.select(exp.alias_(_greatest(cands), "bp"))
        return sql(
            """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl,
                 struct_extract(w.bp, 't') AS pt
               FROM ($picked) AS w
               WHERE w.bp IS NOT NULL AND w.t - struct_extract(w.bp, 'st') <= $window""",
            pl=self._payload(k, exp.column("bp", "w"), {i: exp.column(f"nx{i}", "w") for i in starting}, "w"),
            picked=picked,
            window=self.w_us,
        )

    def _payload(self, k: int, bp: exp.Expr | None, nxs: Mapping[int, exp.Expr], alias: str) -> exp.Expr:
        """The chain's payload after step ``k``: its start, the attribution value, per exclusion the next excluded
        event after its ``from_step`` event and whether one came before its ``to_step`` event."""
        row_t, row_e, row_v = col("t", alias), col("eid", alias), col("v", alias)
        prev = None if bp is None else _field(bp, "pl")

        def carried(name: str, default: exp.Expr) -> exp.Expr:
            return default if prev is None else _field(prev, name)

        fields: list[tuple[str, exp.Expr]] = [
            ("st", row_t if prev is None else _field(prev, "st")),
            ("se", row_e if prev is None else _field(prev, "se")),
        ]
        a = self.q.attribution_step()
        if self._event_breakdown() and a is not None:
            fields.append(("av", row_v if a == k else carried("av", exp.cast(exp.null(), exp.DataType.Type.VARCHAR))))
        for i in range(len(self.q.exclusions)):
            _, t = self.q.exclusion_span(i)
            if i in nxs:
                xn, xe = _field(nxs[i], "t"), _field(nxs[i], "e")
            else:
                xn = carried(f"x{i}n", exp.cast(exp.null(), exp.DataType.Type.BIGINT))
                xe = carried(f"x{i}e", exp.cast(exp.null(), exp.DataType.Type.VARCHAR))
            if t == k and prev is not None:
                before = sql(
                    "coalesce($xn < $t OR ($xn = $t AND $xe < $e), FALSE)",
                    xn=_field(prev, f"x{i}n"),
                    xe=_field(prev, f"x{i}e"),
                    t=row_t,
                    e=row_e,
                )
            else:
                before = carried(f"x{i}b", exp.false())
            fields += [(f"x{i}n", xn), (f"x{i}e", xe), (f"x{i}b", before)]
        return _struct(fields)

    def _reach_row(self, k: int) -> exp.Expr:
        """The attempts ending at step ``k`` in the common shape of ``reach``."""
        pl = col("pl", "r")
        a = self.q.attribution_step()
        if not self._event_breakdown():
            bv: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
        elif a is None:
            bv = col("v", "r")
        else:
            bv = _field(pl, "av")
        excluded: list[exp.Expr] = []
        for i in range(len(self.q.exclusions)):
            f, t = self.q.exclusion_span(i)
            if k >= t:
                excluded.append(_field(pl, f"x{i}b"))
            elif k >= f:
                excluded.append(
                    sql(
                        "coalesce($xn <= $st + $window, FALSE)",
                        xn=_field(pl, f"x{i}n"),
                        st=_field(pl, "st"),
                        window=self.w_us,
                    )
                )
        return sql(
            """SELECT r.user_id AS user_id, $k AS k, r.t - struct_extract(r.pl, 'st') AS d, r.t AS o1, r.eid AS o2,
                 r.t - r.pt AS g, $bv AS bv, r.t AS lt, $xs AS xs
               FROM $f AS r""",
            k=k,
            bv=bv,
            xs=or_(excluded),
            f=exp.to_identifier(f"f{k}"),
        )

    # any order ---------------------------------------------------------------------------------------------------
    def _any_reach(self) -> None:
        """Any order: one window pass gives every row the time of each step's first event at or after it; the
        row starts an attempt that includes the steps whose first event is within the window."""
        select = sql("SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v FROM scan AS s")
        assert isinstance(select, exp.Select)
        last_touch = self._event_breakdown() and self.q.breakdown_attribution == "last_touch"
        a = self.q.attribution_step()
        step_touch = self._event_breakdown() and isinstance(self.q.breakdown_attribution, StepAttribution)
        for k in range(1, self.n + 1):
            # the identity and value of each step's next event only when the breakdown needs them
            if last_touch:
                value: exp.Expr = sql("{'t': s.t, 'e': s.eid, 'v': s.v}")
            elif step_touch and k == a:
                value = sql("{'t': s.t, 'v': s.v}")
            else:
                value = col("t", "s")
            nxt = sql(
                """first_value(CASE WHEN $cond THEN $value END IGNORE NULLS) OVER (
                     PARTITION BY s.user_id ORDER BY s.t, s.eid ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)""",
                cond=self._step_bit(k, "s"),
                value=value,
            )
            select = select.select(exp.alias_(nxt, f"n{k}"))
        self._add("nxt", select)

        def time_of(k: int) -> exp.Expr:
            n = col(f"n{k}", "w")
            return _field(n, "t") if last_touch or (step_touch and k == a) else n

        incs = [
            sql("coalesce($n - w.t <= $window, FALSE)", n=time_of(k), window=self.w_us) for k in range(1, self.n + 1)
        ]
        level: exp.Expr = exp.Literal.number(0)
        for inc in incs:
            level = exp.Add(this=level, expression=exp.cast(exp.paren(inc), exp.DataType.Type.INT))
        times = exp.Array(
            expressions=[
                sql("CASE WHEN $inc THEN $n ELSE $never END", inc=inc, n=time_of(k), never=_NEVER)
                for k, inc in enumerate(incs, start=1)
            ]
        )
        if not self._event_breakdown():
            bv: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
        elif last_touch:
            included = [
                sql("CASE WHEN $inc THEN $n END", inc=inc, n=col(f"n{k}", "w")) for k, inc in enumerate(incs, start=1)
            ]
            bv = _field(_greatest(included), "v")
        elif step_touch:
            assert a is not None
            bv = sql("CASE WHEN $inc THEN struct_extract($n, 'v') END", inc=incs[a - 1], n=col(f"n{a}", "w"))
        else:  # first touch: the attempt's first event, whichever step it is
            bv = col("v", "w")
        self._add(
            "att",
            sql(
                """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, $level AS level, list_sort($times) AS ts,
                     $bv AS bv
                   FROM nxt AS w WHERE w.t < $hi""",
                level=level,
                times=times,
                bv=bv,
                hi=self.hi_us,
            ),
        )
        self._add(
            "reach",
            sql(
                """SELECT a.user_id AS user_id, a.k AS k, a.ts[a.k] - a.t AS d, a.t AS o1, a.eid AS o2,
                     CASE WHEN a.k > 1 THEN a.ts[a.k] - a.ts[a.k - 1] END AS g, a.bv AS bv, a.ts[a.k] AS lt,
                     FALSE AS xs
                   FROM (SELECT att.*, unnest(generate_series(1, att.level)) AS k FROM att WHERE att.level > 0) AS a"""
            ),
        )

    # people and breakdown --------------------------------------------------------------------------------------
    def _event_breakdown(self) -> bool:
        return self.q.breakdown is not None and self.q.breakdown.source == "event"

    def _members(self) -> exp.Expr:
        b = self.q.breakdown
        if b is not None and b.source == "user":
            value = exp.cast(self.ctx.prop("user", b.property, "u"), exp.DataType.Type.VARCHAR)
            return sql(
                """SELECT p.user_id AS user_id, p.depth AS depth, p.rm AS rm, p.entry AS entry,
                     struct_extract(p.c, 'lt') AS lt, $value AS bd
                   FROM persons AS p LEFT JOIN $users AS u ON u.user_id = p.user_id
                   WHERE NOT struct_extract(p.c, 'xs')""",
                value=value,
                users=self.ctx.table("users"),
            )
        return sql(
            """SELECT p.user_id AS user_id, p.depth AS depth, p.rm AS rm, p.entry AS entry,
                 struct_extract(p.c, 'lt') AS lt, struct_extract(p.c, 'bv') AS bd
               FROM persons AS p WHERE NOT struct_extract(p.c, 'xs')"""
        )

    def _labelled(self) -> exp.Expr:
        if self.q.breakdown is None:
            return sql(
                "SELECT m.user_id AS user_id, m.depth AS depth, m.rm AS rm, m.entry AS entry, "
                "CAST(NULL AS VARCHAR) AS bd FROM members AS m"
            )
        return sql(
            """SELECT m.user_id AS user_id, m.depth AS depth, m.rm AS rm, m.entry AS entry,
                 CASE WHEN m.bd IS NULL THEN $none
                      WHEN m.bd IN (SELECT top.bd FROM (
                        SELECT x.bd AS bd FROM members AS x WHERE x.bd IS NOT NULL
                        GROUP BY x.bd ORDER BY count(*) DESC, x.bd LIMIT $limit) AS top) THEN m.bd
                      ELSE $other END AS bd
               FROM members AS m""",
            none=NONE,
            other=OTHER,
            limit=self.q.breakdown.limit,
        )

    # output sections ---------------------------------------------------------------------------------------------
    def _steps_section(self) -> exp.Expr:
        if self.q.breakdown is None:
            return sql(
                """SELECT 'step' AS section, CAST(NULL AS VARCHAR) AS bd, CAST(b.k AS BIGINT) AS k, count(*) AS n,
                     avg(struct_extract(b.s, 'g')) AS a, median(struct_extract(b.s, 'g')) AS b,
                     avg(struct_extract(b.s, 'd')) AS c, median(struct_extract(b.s, 'd')) AS d, 1 AS tot
                   FROM best AS b JOIN lab AS m ON m.user_id = b.user_id
                   GROUP BY b.k"""
            )
        return sql(
            """SELECT 'step' AS section, m.bd AS bd, CAST(b.k AS BIGINT) AS k, count(*) AS n,
                 avg(struct_extract(b.s, 'g')) AS a, median(struct_extract(b.s, 'g')) AS b,
                 avg(struct_extract(b.s, 'd')) AS c, median(struct_extract(b.s, 'd')) AS d, grouping(m.bd) AS tot
               FROM best AS b JOIN lab AS m ON m.user_id = b.user_id
               GROUP BY GROUPING SETS ((m.bd, b.k), (b.k))"""
        )

    def _ttc_section(self) -> exp.Expr:
        """Histogram of the time to convert (first to last step) over people who converted: bins of whole seconds
        from the whole second at or below the shortest time, ``time_to_convert_bins`` bins wide enough to hold the
        longest."""
        self._add(
            "conv",
            sql(
                """SELECT struct_extract(b.s, 'd') AS d FROM best AS b JOIN lab AS m ON m.user_id = b.user_id
                   WHERE b.k = $last""",
                last=self.n,
            ),
            shared=True,
        )
        self._add(
            "lim",
            sql(
                """SELECT (min(c.d) // 1000000) * 1000000 AS lo,
                     ((max(c.d) - (min(c.d) // 1000000) * 1000000 + $span) // $span) * 1000000 AS w
                   FROM conv AS c""",
                span=self.q.time_to_convert_bins * MICROS,
            ),
        )
        return sql(
            """SELECT 'ttc' AS section, CAST(NULL AS VARCHAR) AS bd, (c.d - l.lo) // l.w AS k, count(*) AS n,
                 CAST(any_value(l.lo) AS DOUBLE) AS a, CAST(any_value(l.w) AS DOUBLE) AS b,
                 CAST(NULL AS DOUBLE) AS c, CAST(NULL AS DOUBLE) AS d, 0 AS tot
               FROM conv AS c, lim AS l GROUP BY (c.d - l.lo) // l.w"""
        )

    def _people_sections(self) -> list[exp.Expr]:
        p = self.q.people
        assert p is not None
        reached = sql("(m.rm & $bit) <> 0", bit=1 << (p.step - 1))
        if p.status == "converted":
            cond = reached
        else:
            prev = sql("(m.rm & $bit) <> 0", bit=1 << (self.q.previous_required(p.step) - 1))
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

    def _trend_section(self) -> exp.Expr:
        interval = self.q.trend_interval
        assert interval is not None
        bucket = self.ctx.bucket(sql("make_timestamp(m.entry)"), interval, self.first, self.last)
        return sql(
            """SELECT 'trend' AS section, CAST(x.bucket AS VARCHAR) AS bd,
                 count(*) FILTER (WHERE x.depth = $last) AS k, count(*) AS n,
                 CAST(NULL AS DOUBLE) AS a, CAST(NULL AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c,
                 CAST(NULL AS DOUBLE) AS d, 0 AS tot
               FROM (SELECT $bucket AS bucket, m.depth AS depth FROM lab AS m) AS x GROUP BY x.bucket""",
            bucket=bucket,
            last=self.n,
        )


# helpers ----------------------------------------------------------------------------------------------------------
def _best(reach: str) -> exp.Expr:
    """Per person and step, the attempt the module docstring chooses: the shortest, then the earliest step event."""
    return sql(
        """SELECT r.user_id AS user_id, r.k AS k,
             min({'d': r.d, 'o1': r.o1, 'o2': r.o2, 'g': r.g, 'bv': r.bv, 'lt': r.lt, 'xs': r.xs}) AS s
           FROM $reach AS r GROUP BY r.user_id, r.k""",
        reach=exp.to_identifier(reach),
    )


def _epoch_us(value: datetime) -> int:
    return (value - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def _field(struct: exp.Expr, name: str) -> exp.Expr:
    return exp.func("struct_extract", struct.copy(), exp.Literal.string(name))


def _struct(fields: list[tuple[str, exp.Expr]]) -> exp.Expr:
    return exp.Struct(
        expressions=[exp.PropertyEQ(this=exp.to_identifier(name), expression=value) for name, value in fields]
    )


def _greatest(items: list[exp.Expr]) -> exp.Expr:
    if len(items) == 1:
        return items[0]
    return exp.func("greatest", *items)


def _qualify(cond: exp.Expr, alias: str) -> exp.Expr:
    for c in cond.find_all(exp.Column):
        c.set("table", exp.to_identifier(alias))
    return cond
