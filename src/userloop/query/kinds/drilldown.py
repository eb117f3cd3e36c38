"""Drill-down: which values of which dimensions explain a metric's change between two periods (DOMAIN §12).

``series`` is the metric: events (``math: "total"``), people (``"users"``) or the ``sum`` of a numeric property of
one event (or ``$any``) with filters. It is measured in the ``current`` period and in the ``baseline`` (by default
the equally long period just before; a baseline of another length is refused, since raw totals of unequal periods
differ without any change, people do not scale per day, and the test below measures changes between periods of the
current length). For each dimension (an event or profile property) the metric is split by the
dimension's values: the ``top`` values by absolute change (then by volume, then by value), the rest folded into
``$other``, and events or people without a value as ``$none``. So the rows of one dimension add up to the metric's
total in each period, and each value's **contribution** is its change divided by the total change (Adtributor's
"explanatory power").

People are counted once per period even when they have several values of an event property: a person is
attributed to the value on their **first** metric event of the period, in the order (time, event_id). A profile
property has one value per person, so nothing needs choosing.

Dimensions are ranked with Adtributor (Bhagwan et al., "Adtributor: Revenue Debugging in Advertising Systems",
NSDI 2014, Algorithm 1): each value gets a *surprise*, the Jensen–Shannon divergence (base 2) between its share of
the baseline and its share of the current period; a dimension's explanatory set is built from its values in order
of surprise, keeping those that explain more than 10% of the change, until together they explain more than 67%.
A set whose surprise is zero (every share stayed the same: the change is spread evenly) does not count. Dimensions
with such a set come first, by the total surprise of the set; the others follow by their largest
absolute contribution. ``$other`` never enters an explanatory set (it is not one value). The summary sentence names
the first dimension's set, e.g. "DAU fell 12%: 70% of the drop is $os = Android".

Adtributor alone names a "cause" for any change, noise included. So only values that pass two tests may join an
explanatory set (:mod:`userloop.stats.change`): the **total** change must be beyond the metric's own variation —
the same scan measures up to :data:`HISTORY_PERIODS` earlier comparable periods (those that begin on or after the
project's first day with data), and the change is tested against their period-to-period changes, none of which
shares a period with it (a prediction interval, Student's t; :func:`userloop.stats.change.periods_test`) — and
the **value**'s change must differ from the rest's (the Wald z of the log ratio of rate ratios, scaled by the
over-dispersion the earlier periods show, Benjamini–Hochberg adjusted over all values). Otherwise the verdict is
``noise`` ("within normal variation / 在正常波动范围内") or ``even`` ("spread evenly across values / 各维度均匀变化"),
and the sentence names nothing. A period reaching today is refused (``partial_period``): a day still running
against a finished one reads the missing hours as a change.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, col, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.periods import refuse_partial
from userloop.query.spec import NONE, OTHER, DateRange, EventRef, Name, Source, Spec
from userloop.schema.types import PropertyType
from userloop.stats.change import dispersion, periods_test, rate_ratio_z, two_sided_p
from userloop.stats.correction import adjust_p

MAX_DIMENSIONS = 10
#: Adtributor's thresholds (Bhagwan et al. 2014, §3.3): a value must explain more than T_EEP of the change to
#: join a dimension's explanatory set, and the set must explain more than T_EP of it.
T_EEP = 0.10
T_EP = 0.67
#: Comparable periods (the current period's length, just before the earlier of the two periods) read to learn
#: the metric's own variation, and the most days they may span together.
HISTORY_PERIODS = 8
HISTORY_DAYS = 366
#: The total change must pass its test at this level; values' p-values are Benjamini–Hochberg adjusted to FDR.
ALPHA = 0.05
FDR = 0.05
Slot = Literal["value", "other", "none"]
Verdict = Literal["no_change", "noise", "even", "cause"]
_SLOTS: tuple[Slot, ...] = ("value", "other", "none")


class DrillSeries(EventRef):
    math: Literal["total", "users", "sum"] = "total"
    property: Name | None = Field(None, description="The numeric event property that math 'sum' adds up.")

    @model_validator(mode="after")
    def _property_when_needed(self) -> DrillSeries:
        if self.math == "sum" and self.property is None:
            raise ValueError("math 'sum' needs a numeric 'property'")
        if self.math != "sum" and self.property is not None:
            raise ValueError(f"math {self.math!r} takes no 'property'")
        return self


class Dimension(Spec):
    property: Name
    source: Source = "event"


class DrilldownQuery(Analysis):
    """``{"kind": "drilldown", "series": {"event": "$any", "math": "users", "name": "DAU"},
    "current": {"last": 7}, "dimensions": [{"property": "$os"}, {"property": "channel"}]}``."""

    kind: Literal["drilldown"] = "drilldown"
    series: DrillSeries
    current: DateRange
    baseline: DateRange | None = Field(None, description="Default: the period of equal length just before.")
    dimensions: list[Dimension] = Field(min_length=1, max_length=MAX_DIMENSIONS)
    top: int = Field(20, ge=1, le=100, description="Values shown per dimension; the rest are '$other'.")

    @model_validator(mode="after")
    def _periods_not_date_range(self) -> DrilldownQuery:
        if "date_range" in self.model_fields_set:
            raise ValueError("a drill-down compares 'current' with 'baseline'; it takes no 'date_range'")
        keys = [(d.source, d.property) for d in self.dimensions]
        if len(set(keys)) != len(keys):
            raise ValueError("each dimension may appear only once")
        return self

    # statements ----------------------------------------------------------------------------------------------
    def periods(self, ctx: Context) -> tuple[tuple[date, date], tuple[date, date]]:
        """The current and baseline days; refused (``partial_period``) when either reaches today."""
        cur = ctx.days(self.current)
        refuse_partial("the current period", cur[0], cur[1], ctx.today, field="current")
        if self.baseline is None:
            n = (cur[1] - cur[0]).days + 1
            return cur, (cur[0] - timedelta(days=n), cur[0] - timedelta(days=1))
        base = ctx.days(self.baseline)
        refuse_partial("the baseline", base[0], base[1], ctx.today, field="baseline")
        n, m = (cur[1] - cur[0]).days + 1, (base[1] - base[0]).days + 1
        if m != n:
            raise ValidationError(
                f"baseline {base[0]}..{base[1]} has {m} days and current {cur[0]}..{cur[1]} has {n}; a drill-down "
                f"compares periods of equal length (基线与当前时期的天数必须相同)",
                field="baseline",
                hint=f"pick a baseline of {n} days (e.g. from {base[1] - timedelta(days=n - 1)} to {base[1]}), or "
                "leave it out for the days just before; to see a longer period's daily level, use a trend by day",
            )
        if base[0] <= cur[1] and cur[0] <= base[1]:
            raise ValidationError(
                f"baseline {base[0]}..{base[1]} overlaps current {cur[0]}..{cur[1]}; pick periods that do not overlap"
            )
        return cur, base

    def spans(self, ctx: Context) -> list[tuple[date, date]]:
        """Current, baseline, then the comparable earlier periods (newest first): the current period's length,
        consecutive, ending the day before the earlier of the two periods."""
        cur, base = self.periods(ctx)
        n = (cur[1] - cur[0]).days + 1
        start = min(cur[0], base[0])
        k = min(HISTORY_PERIODS, HISTORY_DAYS // n)
        return [cur, base] + [(start - timedelta(days=n * j), start - timedelta(days=n * (j - 1) + 1)) for j in
                              range(1, k + 1)]  # fmt: skip

    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        spans = self.spans(ctx)
        # one scan covers every period; k numbers them: 0 current, 1 baseline, 2… the earlier ones
        lo, hi = ctx.utc_bounds(min(f for f, _ in spans), max(last for _, last in spans))
        period = exp.Case(
            ifs=[exp.If(this=ctx.time_cond(f, last), true=exp.Literal.number(i)) for i, (f, last) in enumerate(spans)]
        )
        names = [f"d{i}" for i in range(len(self.dimensions))]
        per_person = self.series.math == "users"
        # one row per event; for people, profile values join after the events are reduced to one row per person
        events_dims = [self._dim(ctx, d) if d.source == "event" or not per_person else None for d in self.dimensions]
        rows = sql(
            """SELECT e.user_id AS user_id, e.time AS time, e.event_id AS event_id, $period AS k, $v AS v
            FROM $events AS e WHERE e.time >= $lo AND e.time < $hi AND $in_any AND $where""",
            events=ctx.table("events"),
            lo=lo,
            hi=hi,
            period=period,
            in_any=exp.paren(exp.or_(*(ctx.time_cond(f, last) for f, last in spans))),
            v=self._value(ctx),
            where=and_([ctx.event_cond(self.series), ctx.filters_cond(self.filters)]),
        )
        assert isinstance(rows, exp.Select)
        rows = rows.select(*(exp.alias_(d, n) for d, n in zip(events_dims, names, strict=True) if d is not None))
        if any(d.source == "user" for d in self.dimensions) and not per_person:
            rows = rows.join(ctx.table("users", "u"), on="u.user_id = e.user_id", join_type="left")
        if per_person:
            rows = self._per_person(ctx, rows, names)
        # when the project's data begins inside the scanned days, earlier periods before it are only partly covered
        first = sql(
            "SELECT min(e.time) AS first FROM $events AS e WHERE e.time >= $lo AND e.time < $hi",
            events=ctx.table("events"),
            lo=lo,
            hi=hi,
        )
        return {"values": self._split(rows, names), "first": first}

    def _dim(self, ctx: Context, d: Dimension) -> exp.Expr:
        column = ctx.prop(d.source, d.property, "e" if d.source == "event" else "u")
        if ctx.prop_type(d.source, d.property) == PropertyType.LIST:
            raise ValidationError(f"dimension {d.property!r} is a list; drill down by a single-valued property")
        return exp.cast(column, exp.DataType.Type.VARCHAR)

    def _value(self, ctx: Context) -> exp.Expr:
        name = self.series.property
        if name is None:
            return exp.Literal.number(1)
        ctx.require_pii(name, "a measure over")
        if ctx.prop_type("event", name) != PropertyType.NUMBER:
            raise ValidationError(f"{name!r} is not a numeric event property; math 'sum' needs a NUMBER property")
        return col(name, "e")

    def _per_person(self, ctx: Context, rows: exp.Select, names: list[str]) -> exp.Select:
        """One row per person and period, with the event dimensions' values on the person's first event and the
        profile dimensions' values joined from users.

        The event values are picked by one ``arg_min_null`` of a struct of all of them (NULL values kept), which
        is about three times faster on DuckDB than one ``arg_min_null`` per dimension.
        """
        dims = list(zip(self.dimensions, names, strict=True))
        on_events = [n for d, n in dims if d.source == "event"]
        people = sql(
            """SELECT p.user_id AS user_id, p.k AS k, 1 AS v FROM ($rows) AS p GROUP BY p.user_id, p.k""",
            rows=rows,
        )
        assert isinstance(people, exp.Select)
        if on_events:
            packed = exp.Struct(
                expressions=[exp.PropertyEQ(this=exp.to_identifier(n), expression=exp.column(n)) for n in on_events]
            )
            order = exp.Tuple(expressions=[exp.column("time"), exp.column("event_id")])
            people = people.select(exp.alias_(exp.func("arg_min_null", packed, order), "first"))
        columns = [
            exp.alias_(
                exp.func("struct_extract", exp.column("first", "q"), exp.Literal.string(n))
                if d.source == "event"
                else self._dim(ctx, d),
                n,
            )
            for d, n in dims
        ]
        out = exp.select("q.user_id", "q.k", "q.v", *columns).from_(exp.Subquery(this=people, alias="q"))
        if any(d.source == "user" for d in self.dimensions):
            out = out.join(ctx.table("users", "u"), on="u.user_id = q.user_id", join_type="left")
        return out

    def _split(self, rows: exp.Select, names: list[str]) -> exp.Expr:
        """Per dimension, value and period: the metric's sum and sum of squares; the ``top`` values by their change
        between current and baseline kept, the rest folded into $other (values seen only in earlier periods
        too), unset as $none. ``n_all`` is the number of distinct values in current and baseline."""
        dims = [exp.column(n) for n in names]
        sets = exp.GroupingSets(expressions=[exp.Tuple(expressions=[d.copy(), exp.column("k")]) for d in dims])
        grouped = sql(
            """SELECT $g AS g, $val AS val, k, sum(v) AS s, sum(v * v) AS q FROM ($rows) AS r GROUP BY ALL""",
            rows=rows,
            g=exp.func("grouping", *dims),
            val=exp.func("coalesce", *dims) if len(dims) > 1 else dims[0],
        )
        grouped.set("group", exp.Group(grouping_sets=[sets]))
        return sql(
            """WITH g AS ($grouped),
            t AS (
              SELECT g, val, coalesce(sum(s) FILTER (WHERE k = 0), 0) AS cur_v,
                coalesce(sum(s) FILTER (WHERE k = 1), 0) AS base_v
              FROM g WHERE val IS NOT NULL AND k <= 1 GROUP BY g, val),
            ranked AS (
              SELECT g, val, count(*) OVER (PARTITION BY g) AS n_all,
                row_number() OVER (PARTITION BY g ORDER BY abs(cur_v - base_v) DESC, cur_v + base_v DESC, val) AS rn
              FROM t)
            SELECT g.g AS g, CASE WHEN r.rn <= $top THEN g.val END AS val,
              CASE WHEN g.val IS NULL THEN 2 WHEN r.rn <= $top THEN 0 ELSE 1 END AS slot, g.k AS k,
              sum(g.s) AS s, sum(g.q) AS q, max(r.n_all) AS n_all, count(*) FILTER (WHERE g.k <= 1) AS present
            FROM g LEFT JOIN ranked AS r ON r.g = g.g AND r.val = g.val
            GROUP BY ALL""",
            grouped=grouped,
            top=self.top,
        )

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> DrilldownResult:
        spans = self.spans(ctx)
        (c_first, c_last), (b_first, b_last) = spans[0], spans[1]
        k = len(self.dimensions)
        index = {(2**k - 1) - 2 ** (k - 1 - i): i for i in range(k)}
        cells: list[dict[tuple[Any, int], _Cell]] = [{} for _ in range(k)]
        n_all = [0] * k
        for g, val, slot, period, s, q, n, present in data["values"].rows:
            d = index[int(g)]
            cell = cells[d].setdefault((val, int(slot)), _Cell(len(spans)))
            cell.s[int(period)] += _n(s)
            cell.q[int(period)] += _n(q)
            cell.present += int(present)
            n_all[d] = max(n_all[d], int(n or 0))
        totals = _Cell(len(spans))
        for cell in cells[0].values():
            totals.add(cell)
        current, baseline = totals.s[0], totals.s[1]
        first = data["first"].rows[0][0] if data["first"].rows else None
        self._warn_baseline_before_data(ctx, (b_first, b_last), first)
        history = self._history(ctx, spans, totals, first)
        test = periods_test([totals.s[j] for j in [0, 1, *history]], [totals.q[j] for j in [0, 1, *history]])
        # the values' over-dispersion is measured on consecutive periods from the baseline (the default one is
        # consecutive with the earlier ones) back
        refs = ([1] if self.baseline is None else []) + history
        dims = [self._dimension(d, cells[i], n_all[i], totals, refs) for i, d in enumerate(self.dimensions)]
        _adjust(dims)
        significant = current != baseline and test.p_value < ALPHA
        for dim in dims:
            _explain(dim, significant, current - baseline)
        ranked = sorted(enumerate(dims), key=lambda p: _rank_key(p[1], p[0]))
        label_en, label_zh = self._labels()
        verdict: Verdict = (
            "no_change"
            if current == baseline
            else "noise"
            if not significant
            else "cause"
            if ranked and ranked[0][1].root_cause
            else "even"
        )
        result = DrilldownResult(
            metric=label_en,
            current=Period(start=c_first, end=c_last, value=current),
            baseline=Period(start=b_first, end=b_last, value=baseline),
            change=current - baseline,
            change_pct=(current - baseline) / baseline if baseline else None,
            test=ChangeSignificance(
                method=test.method,
                statistic=test.statistic,
                dof=test.dof,
                p_value=test.p_value,
                typical_change=test.typical,
                expected_change=test.expected,
                significant=significant,
                earlier=[Period(start=spans[j][0], end=spans[j][1], value=totals.s[j]) for j in history],
            ),
            verdict=verdict,
            dimensions=[d for _, d in ranked],
            summary={},
        )
        result.summary = {"en": summary_en(result, label_en), "zh": summary_zh(result, label_zh)}
        return result

    @staticmethod
    def _warn_baseline_before_data(ctx: Context, baseline: tuple[date, date], first: datetime | None) -> None:
        """A baseline whose first day ends before the project's first event (``first``, its first event in the
        scanned days) holds only part of its days' data, so a change from it may only show when the data began:
        the result says so."""
        if first is None or ctx.utc_bounds(baseline[0], baseline[0])[1] > first:
            return
        began = first.replace(tzinfo=UTC).astimezone(ZoneInfo(ctx.timezone)).date()
        ctx.warn(
            f"baseline {baseline[0]}..{baseline[1]} begins before the project's data does (the first event is on "
            f"{began}): the change may only show when the data began / 基线开始时还没有数据，变化可能只是数据起点造成的"
        )

    @staticmethod
    def _history(ctx: Context, spans: list[tuple[date, date]], totals: _Cell, first: datetime | None) -> list[int]:
        """The comparable earlier periods whose days the data wholly covers (numbered as in ``spans``, newest
        first): up to the first one that begins before the project's first day with data (``first``, its first
        event in the scanned days; a period that ends on that day holds only part of its days' data) or that
        holds nothing."""
        kept = []
        for j in range(2, len(spans)):
            before_data = first is None or ctx.utc_bounds(spans[j][0], spans[j][0])[1] <= first
            if before_data or totals.s[j] == 0:
                break
            kept.append(j)
        return kept

    def _dimension(
        self, d: Dimension, cells: dict[tuple[Any, int], _Cell], n_all: int, totals: _Cell, refs: list[int]
    ) -> DimensionResult:
        current, baseline = totals.s[0], totals.s[1]
        total_change = current - baseline
        rows = [(val, slot, cell) for (val, slot), cell in cells.items() if cell.present > 0]
        # values by absolute change, as they were ranked; then $other, $none
        rows.sort(key=lambda r: (r[1], -abs(r[2].s[0] - r[2].s[1]), -(r[2].s[0] + r[2].s[1]), r[0] or ""))
        # over-dispersion: the same test on consecutive earlier periods, where nothing was planted
        history_z = [
            z
            for cell in cells.values()
            for a, b in itertools.pairwise(refs)
            if (z := rate_ratio_z((cell.at(a), cell.at(b)), (totals.minus(cell, a), totals.minus(cell, b)))) is not None
        ]
        phi = dispersion(history_z)
        values = []
        for val, slot, cell in rows:
            cur, base = cell.s[0], cell.s[1]
            z = None
            if _SLOTS[slot] != "other":
                z = rate_ratio_z((cell.at(0), cell.at(1)), (totals.minus(cell, 0), totals.minus(cell, 1)))
            values.append(
                ValueChange(
                    value=val,
                    label={"value": str(val), "other": OTHER, "none": NONE}[_SLOTS[slot]],
                    kind=_SLOTS[slot],
                    values_folded=max(n_all - self.top, 0) if _SLOTS[slot] == "other" else 1,
                    current=cur,
                    baseline=base,
                    change=cur - base,
                    change_pct=(cur - base) / base if base else None,
                    contribution=(cur - base) / total_change if total_change else None,
                    surprise=js_surprise(base / baseline if baseline else 0.0, cur / current if current else 0.0),
                    z=None if z is None else z / math.sqrt(phi),
                    p_value=None,
                    significant=False,
                )
            )
        contributions = [abs(v.contribution) for v in values if v.contribution is not None]
        return DimensionResult(
            property=d.property,
            source=d.source,
            root_cause=False,
            score=None,
            explains=None,
            explanatory=[],
            max_contribution=max(contributions) if contributions else None,
            dispersion=phi,
            values=values,
        )

    def _labels(self) -> tuple[str, str]:
        s = self.series
        if s.name:
            return s.name, s.name
        if s.math == "users":
            return f"users of {s.event}", f"{s.event} 人数"
        if s.math == "sum":
            return f"sum of {s.property} in {s.event}", f"{s.event} 的 {s.property} 总和"
        return f"{s.event} events", f"{s.event} 次数"


class ValueChange(Result):
    value: str | None = Field(description="The property's value (as text); None for $other and $none.")
    label: str
    kind: Slot
    values_folded: int = Field(description="How many distinct values this row stands for ($other: several).")
    current: float
    baseline: float
    change: float
    change_pct: float | None
    contribution: float | None = Field(description="This value's change / the total change (None: no change).")
    surprise: float = Field(description="Jensen–Shannon divergence of this value's share, baseline vs current.")
    z: float | None = Field(
        None, description="Wald z of this value's rate ratio against the rest's, over-dispersion removed."
    )
    p_value: float | None = Field(None, description="Two-sided p-value of z, Benjamini–Hochberg adjusted.")
    significant: bool = Field(
        False, description="Its change differs from the rest's (p < FDR) in the direction of the total change."
    )


class DimensionResult(Result):
    property: str
    source: Source
    root_cause: bool = Field(
        description="True when the total change is significant and significant values explain more than 67% of it."
    )
    score: float | None = Field(description="Total surprise of the explanatory set (Adtributor).")
    explains: float | None = Field(description="The share of the change the explanatory set explains.")
    explanatory: list[str]
    max_contribution: float | None
    dispersion: float = Field(1.0, description="Over-dispersion of the values' shares over the earlier periods.")
    values: list[ValueChange]


class Period(Result):
    start: date
    end: date
    value: float


class ChangeSignificance(Result):
    """The total change against the metric's own variation (:func:`userloop.stats.change.periods_test`)."""

    method: Literal["history", "poisson"]
    statistic: float
    dof: float
    p_value: float
    expected_change: float = Field(description="The change the earlier periods lead to expect (their mean change).")
    typical_change: float = Field(description="The usual deviation from it (prediction error), or counting noise.")
    significant: bool
    earlier: list[Period] = Field(
        description="The comparable earlier periods whose changes are the yardstick, newest first (not the baseline)."
    )


class DrilldownResult(Result):
    metric: str
    current: Period
    baseline: Period
    change: float
    change_pct: float | None
    test: ChangeSignificance
    verdict: Verdict = Field(
        description="no_change; noise (within normal variation); even (spread evenly across values); cause."
    )
    dimensions: list[DimensionResult]
    summary: dict[str, str]


class _Cell:
    """Sums and sums of squares of one value (or of the total) per period, and whether it shows in current or
    baseline."""

    def __init__(self, periods: int) -> None:
        self.s = [0.0] * periods
        self.q = [0.0] * periods
        self.present = 0

    def add(self, other: _Cell) -> None:
        self.s = [a + b for a, b in zip(self.s, other.s, strict=True)]
        self.q = [a + b for a, b in zip(self.q, other.q, strict=True)]

    def at(self, k: int) -> tuple[float, float]:
        return self.s[k], self.q[k]

    def minus(self, part: _Cell, k: int) -> tuple[float, float]:
        return self.s[k] - part.s[k], self.q[k] - part.q[k]


def _adjust(dims: list[DimensionResult]) -> None:
    """Benjamini–Hochberg over every value tested, in every dimension."""
    tested = [v for d in dims for v in d.values if v.z is not None]
    adjusted = adjust_p([two_sided_p(v.z or 0.0) for v in tested], "bh")
    for v, p in zip(tested, adjusted, strict=True):
        v.p_value = float(p)


def _explain(dim: DimensionResult, significant: bool, change: float) -> None:
    """Each value's verdict, and the dimension's explanatory set from the values that differ from the rest."""
    for v in dim.values:
        toward = (v.z or 0.0) * change > 0  # the value moved more than the rest, the way the total moved
        v.significant = significant and toward and v.p_value is not None and v.p_value < FDR
    chosen, explains = explanatory_set([v for v in dim.values if v.significant])
    score = sum(v.surprise for v in chosen) if chosen is not None else 0.0
    if chosen is None or score == 0:  # the shares did not move: the change is spread evenly
        return
    dim.root_cause, dim.score, dim.explains = True, score, explains
    dim.explanatory = [v.label for v in chosen]


# Adtributor pieces -------------------------------------------------------------------------------------------------
def js_surprise(p: float, q: float) -> float:
    """Jensen–Shannon divergence (bits) between a value's baseline share ``p`` and current share ``q``."""

    def part(x: float) -> float:
        return 0.0 if x == 0 else x * math.log2(2 * x / (p + q))

    return 0.5 * (part(p) + part(q))


def explanatory_set(values: list[ValueChange]) -> tuple[list[ValueChange] | None, float]:
    """Adtributor's Algorithm 1 for one dimension: values by surprise, each explaining more than T_EEP, until the
    set explains more than T_EP. ``None`` when no such set exists."""
    chosen: list[ValueChange] = []
    explains = 0.0
    candidates = [v for v in values if v.kind != "other" and v.contribution is not None]
    for v in sorted(candidates, key=lambda v: (-v.surprise, -(v.contribution or 0.0), v.label)):
        if (v.contribution or 0.0) > T_EEP:
            chosen.append(v)
            explains += v.contribution or 0.0
            if explains > T_EP:
                return chosen, explains
    return None, explains


def _rank_key(d: DimensionResult, position: int) -> tuple[Any, ...]:
    return (not d.root_cause, -(d.score or 0.0), -(d.max_contribution or 0.0), position)


# the sentence ----------------------------------------------------------------------------------------------------
def _lead(result: DrilldownResult) -> tuple[DimensionResult, list[ValueChange], float] | None:
    """The dimension and values the sentence names: the first dimension's explanatory set, when there is one."""
    if result.verdict != "cause":
        return None
    top = result.dimensions[0]
    chosen = [v for v in top.values if v.label in top.explanatory]
    chosen.sort(key=lambda v: top.explanatory.index(v.label))
    return top, chosen, top.explains or 0.0


def summary_en(result: DrilldownResult, label: str) -> str:
    cur, base = result.current.value, result.baseline.value
    if result.change == 0:
        return f"{label} did not change ({_fmt(cur)} in both periods)."
    up = result.change > 0
    head = (
        f"{label} {'rose' if up else 'fell'} from {_fmt(base)} to {_fmt(cur)}"
        if result.change_pct is None
        else f"{label} {'rose' if up else 'fell'} {_pct(result.change_pct)}"
    )
    if result.verdict == "noise":
        return f"{head}, within normal variation (a usual change is {_usual(result)}): no cause named."
    lead = _lead(result)
    if lead is None:
        return f"{head}, spread evenly across values: no value stands out."
    dim, values, share = lead
    names = " or ".join(v.label for v in values[:3]) + (" …" if len(values) > 3 else "")
    what = "rise" if up else "drop"
    if share > 1:  # the other values moved the other way: the named values account for more than the change
        other_way = "the other values moved the other way"
        verb = "accounts" if len(values) == 1 else "account"
        return f"{head}: {dim.property} = {names} {verb} for {_pct(share)} of the {what}; {other_way}"
    return f"{head}: {_pct(share)} of the {what} is {dim.property} = {names}"


def summary_zh(result: DrilldownResult, label: str) -> str:
    cur, base = result.current.value, result.baseline.value
    if result.change == 0:
        return f"{label} 没有变化（两个时期都是 {_fmt(cur)}）。"
    word = "上升" if result.change > 0 else "下降"
    head = (
        f"{label} 从 {_fmt(base)} {word}到 {_fmt(cur)}"
        if result.change_pct is None
        else f"{label} {word} {_pct(result.change_pct)}"
    )
    if result.verdict == "noise":
        return f"{head}，在正常波动范围内（通常变化 {_usual(result)}），不指认原因。"
    lead = _lead(result)
    if lead is None:
        return f"{head}，各维度均匀变化，没有突出的取值。"
    dim, values, share = lead
    names = "、".join(v.label for v in values[:3]) + ("等" if len(values) > 3 else "")
    if share > 1:
        return f"{head}：{dim.property} = {names} 贡献了 {_pct(share)} 的{word}，其他取值反向变化"
    return f"{head}：{_pct(share)} 的{word}来自 {dim.property} = {names}"


def _usual(result: DrilldownResult) -> str:
    """``±T``, or ``+E ± T`` when the earlier periods show a trend."""
    expected, typical = round(result.test.expected_change, 2), _fmt(round(result.test.typical_change, 2))
    return f"±{typical}" if expected == 0 else f"{'+' if expected > 0 else '-'}{_fmt(abs(expected))} ± {typical}"


def _pct(x: float) -> str:
    return f"{abs(x) * 100:.0f}%"


def _fmt(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:.2f}".rstrip("0").rstrip(".")


def _n(x: Any) -> float:
    return 0.0 if x is None else float(x)


__all__ = ["Dimension", "DrillSeries", "DrilldownQuery", "DrilldownResult", "js_surprise"]
