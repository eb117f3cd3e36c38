"""Distributions over people: how often people do an event (``distribution``), and how long they take between
two events (``interval``).

``distribution`` puts each person in a bucket by their number of ``event`` events in the date range
(``measure: "count"``, Mixpanel's "Frequency" / Sensors' 分布分析 "按次数") or by the sum of a numeric property over
those events (``measure: "sum"``). Buckets are explicit ``bins`` edges, or automatic: for counts one bucket each
for 1…9, then ranges on the 1-2-5 series (10–19, 20–49, 50–99, 100–199, …); for sums ``< 0`` then the 1-2-5 series
from 0 ([0, 1), [1, 2), [2, 5), [5, 10), …). The 1-2-5 series is the E3-like series of preferred numbers (Renard,
ISO 3): a log scale with round edges, fixed in advance so two runs always bucket alike.

With ``include_zero`` the population is every person with any event in the range (after the global filters):
people who never did ``event`` count with 0. Without it only people who did the event at least once appear.

``interval`` pairs each ``from_event`` in the range with the first ``to_event`` strictly after it, in the person's
order of (time, event_id), when that one is at most ``max_gap`` later (Sensors' 间隔分析). With ``per: "person"``
only each person's first pair (by the time of its ``from_event``) counts. Gaps are wall-clock seconds.

Both give ``partial: true`` when the date range reaches into today, a day still running
(:mod:`userloop.query.periods`).

Quantiles are ``quantile_cont``: linear interpolation between order statistics (Hyndman & Fan 1996, type 7, the
default of numpy and R).
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, col, or_, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.periods import running
from userloop.query.spec import EventRef, Name, Spec
from userloop.schema.types import PropertyType

#: The 1-2-5 series from 10 up to 10^12: automatic bucket edges above the single counts 1…9.
_SERIES = [m * 10**k for k in range(1, 13) for m in (1, 2, 5)]
AUTO_COUNT_EDGES: list[float] = [float(i) for i in range(1, 10)] + [float(x) for x in _SERIES]
AUTO_SUM_EDGES: list[float] = [0.0, 1.0, 2.0, 5.0] + [float(x) for x in _SERIES]
MAX_BINS = 50

MINUTE, HOUR, DAY = 60, 3600, 86400
#: Histogram edges for intervals, in seconds: round human durations.
INTERVAL_EDGES: list[float] = [
    float(s)
    for s in (
        0, 10, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, 12 * HOUR,
        DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 60 * DAY, 90 * DAY, 180 * DAY, 365 * DAY,
    )
]  # fmt: skip
QUANTILES = {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9, "p99": 0.99}


class DistributionQuery(Analysis):
    """``{"kind": "distribution", "event": {"event": "pay"}, "measure": "sum", "property": "amount"}``."""

    kind: Literal["distribution"] = "distribution"
    event: EventRef
    measure: Literal["count", "sum"] = "count"
    property: Name | None = Field(None, description="The numeric event property that measure 'sum' adds up.")
    bins: list[float] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BINS,
        description="Bucket edges, increasing: [e0, e1), [e1, e2), …, [ek, ∞); values below e0 form '< e0'.",
    )
    include_zero: bool = Field(False, description="Add people active in the range who never did the event.")

    @field_validator("bins")
    @classmethod
    def _increasing(cls, bins: list[float] | None) -> list[float] | None:
        if bins is not None and any(b <= a for a, b in itertools.pairwise(bins)):
            raise ValueError("bin edges must be strictly increasing, e.g. [1, 2, 5, 10]")
        return bins

    @model_validator(mode="after")
    def _property_when_needed(self) -> DistributionQuery:
        if self.measure == "sum" and self.property is None:
            raise ValueError("measure 'sum' needs a numeric 'property'")
        if self.measure == "count" and self.property is not None:
            raise ValueError("measure 'count' counts events and takes no 'property'")
        return self

    def edges(self) -> list[float]:
        if self.bins is not None:
            return self.bins
        return AUTO_COUNT_EDGES if self.measure == "count" else AUTO_SUM_EDGES

    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        first, last = ctx.days(self.date_range)
        cond = ctx.event_cond(self.event)
        if self.property is None:
            value: exp.Expr = exp.Count(this=exp.Star())
        else:
            ctx.require_pii(self.property, "a measure over")
            if ctx.prop_type("event", self.property) != PropertyType.NUMBER:
                raise ValidationError(f"property {self.property!r} is not numeric; measure 'sum' needs a NUMBER")
            value = exp.func("sum", col(self.property, "e"))
        where = [ctx.time_cond(first, last), ctx.filters_cond(self.filters)]
        if self.include_zero:
            # one scan of everything active; people without the event get 0
            value = exp.Filter(this=value, expression=exp.Where(this=cond))
        else:
            where.append(cond)
        per = sql(
            "SELECT e.user_id AS user_id, coalesce($value, 0) AS v FROM $events AS e WHERE $where GROUP BY e.user_id",
            value=value,
            events=ctx.table("events"),
            where=and_(where),
        )
        return {"buckets": histogram(per, self.edges())}

    def shape(self, ctx: Context, data: dict[str, Frame]) -> DistributionResult:
        counts, stats = read_histogram(data["buckets"])
        total = sum(counts.values())
        _, last = ctx.days(self.date_range)
        integer = self.measure == "count" and all(float(e).is_integer() for e in self.edges())
        rows = [
            Bucket(
                label=label_of(lo, hi, integer=integer),
                lo=lo,
                hi=hi,
                people=counts.get(i, 0),
                share=counts.get(i, 0) / total if total else 0.0,
            )
            for i, lo, hi in listed_buckets(self.edges(), counts, fill_all=self.bins is not None)
        ]
        return DistributionResult(
            measure=self.measure,
            people=total,
            buckets=rows,
            mean=stats["mean"],
            median=stats["median"],
            p90=stats["p90"],
            min=stats["min"],
            max=stats["max"],
            partial=running(last, ctx.today),
        )


class Bucket(Result):
    label: str
    lo: float | None = Field(description="Included lower edge (None: no lower edge).")
    hi: float | None = Field(description="Excluded upper edge (None: no upper edge).")
    people: int
    share: float


class DistributionResult(Result):
    measure: Literal["count", "sum"]
    people: int
    buckets: list[Bucket]
    mean: float | None
    median: float | None
    p90: float | None
    min: float | None
    max: float | None
    partial: bool = Field(
        default=False, description="The date range reaches into a period still running (it ends today or later)."
    )


# interval --------------------------------------------------------------------------------------------------------
class MaxGap(Spec):
    value: int = Field(7, ge=1)
    unit: Literal["minute", "hour", "day", "week"] = "day"

    @property
    def seconds(self) -> int:
        return self.value * {"minute": MINUTE, "hour": HOUR, "day": DAY, "week": 7 * DAY}[self.unit]

    @model_validator(mode="after")
    def _at_most_a_year(self) -> MaxGap:
        if self.seconds > 366 * DAY:
            raise ValueError("max_gap may be at most 366 days")
        return self


class IntervalQuery(Analysis):
    """``{"kind": "interval", "from_event": {"event": "signup"}, "to_event": {"event": "pay"}}``."""

    kind: Literal["interval"] = "interval"
    from_event: EventRef
    to_event: EventRef
    max_gap: MaxGap = Field(default_factory=lambda: MaxGap.model_validate({}))
    per: Literal["pair", "person"] = "pair"

    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        first, last = ctx.days(self.date_range)
        lo, hi = ctx.utc_bounds(first, last)
        scan_hi = hi + timedelta(seconds=self.max_gap.seconds)
        # a condition on a missing property is NULL, which must read as "no"
        is_a = exp.func("coalesce", ctx.event_cond(self.from_event), exp.false())
        is_b = exp.func("coalesce", ctx.event_cond(self.to_event), exp.false())
        # gaps in microseconds: DuckDB's epoch_ms() is overloaded (a number to a timestamp, and back), and other
        # dialects read it as the first; epoch_us() means one thing everywhere
        pairs = sql(
            """WITH r AS (
              SELECT e.user_id AS user_id, e.time AS time, e.event_id AS event_id, $is_a AS is_a, $is_b AS is_b
              FROM $events AS e
              WHERE e.time >= $lo AND e.time < $scan_hi AND $either AND $filters),
            w AS (
              SELECT user_id, time, event_id, is_a,
                min(CASE WHEN is_b THEN time END) OVER (
                  PARTITION BY user_id ORDER BY time, event_id ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
                ) AS next_b
              FROM r)
            SELECT user_id, time, event_id, (epoch_us(next_b) - epoch_us(time)) / 1000000.0 AS v FROM w
            WHERE is_a AND time < $hi AND epoch_us(next_b) - epoch_us(time) <= $gap_us""",
            events=ctx.table("events"),
            lo=lo,
            hi=hi,
            scan_hi=scan_hi,
            is_a=is_a,
            is_b=is_b,
            either=or_([is_a, is_b]),
            filters=ctx.filters_cond(self.filters),
            gap_us=self.max_gap.seconds * 1_000_000,
        )
        if self.per == "person":
            pairs = sql(
                """SELECT user_id, arg_min(v, (time, event_id)) AS v FROM ($pairs) AS p GROUP BY user_id""",
                pairs=pairs,
            )
        return {"buckets": histogram(pairs, self.edges(), people=True)}

    def edges(self) -> list[float]:
        return [e for e in INTERVAL_EDGES if e <= self.max_gap.seconds]

    def shape(self, ctx: Context, data: dict[str, Frame]) -> IntervalResult:
        counts, stats = read_histogram(data["buckets"])
        total = sum(counts.values())
        _, last = ctx.days(self.date_range)
        rows = [
            IntervalBucket(
                label=duration_range(lo, hi),
                lo_seconds=lo or 0.0,
                hi_seconds=hi,
                count=counts.get(i, 0),
                share=counts.get(i, 0) / total if total else 0.0,
            )
            for i, lo, hi in listed_buckets(self.edges(), counts, fill_all=True)
        ]
        quantiles = {k: stats.get(k) for k in QUANTILES}
        shown = {k: human(v) for k, v in {"mean": stats["mean"], **quantiles}.items() if v is not None}
        return IntervalResult(
            per=self.per,
            pairs=total,
            people=int(stats.get("people") or 0),
            mean=stats["mean"],
            min=stats["min"],
            max=stats["max"],
            **quantiles,
            histogram=rows,
            display=shown,
            partial=running(last, ctx.today),
        )


class IntervalBucket(Result):
    label: str
    lo_seconds: float
    hi_seconds: float | None
    count: int
    share: float


class IntervalResult(Result):
    per: Literal["pair", "person"]
    pairs: int = Field(description="Pairs counted (one per person with per 'person').")
    people: int
    mean: float | None
    min: float | None
    max: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p90: float | None
    p99: float | None
    histogram: list[IntervalBucket]
    display: dict[str, str] = Field(description="mean and quantiles in human units, e.g. '2h 5m'.")
    partial: bool = Field(
        default=False, description="The date range reaches into a period still running (it ends today or later)."
    )


# shared pieces ---------------------------------------------------------------------------------------------------
def bucket_index(value: exp.Expr, edges: list[float]) -> exp.Expr:
    """The number of ``edges`` at or below ``value``: 0 below the first edge, i for [edges[i-1], edges[i])."""
    ifs = [
        exp.If(this=exp.LT(this=value.copy(), expression=exp.convert(edge)), true=exp.Literal.number(i))
        for i, edge in enumerate(edges)
    ]
    return exp.Case(ifs=ifs, default=exp.Literal.number(len(edges)))


def histogram(values: exp.Expr, edges: list[float], *, people: bool = False) -> exp.Expr:
    """People (or pairs) per bucket of ``values`` (columns user_id, v), and one row (bucket NULL) with the
    statistics over all of them."""
    quantiles = [
        exp.alias_(exp.func("quantile_cont", exp.column("v"), exp.convert(q)), name) for name, q in QUANTILES.items()
    ]
    stats = [
        exp.alias_(exp.func("avg", exp.column("v")), "mean"),
        exp.alias_(exp.func("min", exp.column("v")), "min"),
        exp.alias_(exp.func("max", exp.column("v")), "max"),
        *quantiles,
    ]
    if people:
        stats.append(exp.alias_(exp.Count(this=exp.Distinct(expressions=[exp.column("user_id")])), "people"))
    grouped = sql(
        """SELECT $bucket AS bucket, count(*) AS n FROM ($values) AS x GROUP BY GROUPING SETS ((bucket), ())""",
        values=values,
        bucket=bucket_index(exp.column("v"), edges),
    )
    assert isinstance(grouped, exp.Select)
    return grouped.select(*stats).order_by("bucket")


def read_histogram(frame: Frame) -> tuple[dict[int, int], dict[str, float | None]]:
    counts: dict[int, int] = {}
    stats: dict[str, float | None] = dict.fromkeys(("mean", "min", "max", "median", *QUANTILES, "people"))
    for row in frame.dicts():
        if row["bucket"] is None:
            stats = {k: _num(v) for k, v in row.items() if k not in ("bucket", "n")}
            stats["median"] = stats["p50"]
        else:
            counts[int(row["bucket"])] = int(row["n"])
    return counts, stats


def listed_buckets(
    edges: list[float], counts: dict[int, int], *, fill_all: bool
) -> list[tuple[int, float | None, float | None]]:
    """(index, lo, hi) of the buckets to show: all of them (the one below the first edge only when it has
    people) with ``fill_all``, else from the lowest to the highest bucket that has people."""
    bounds = [None, *edges, None]
    if fill_all:
        shown = list(range(0 if counts.get(0) else 1, len(edges) + 1))
    elif counts:
        shown = list(range(min(counts), max(counts) + 1))
    else:
        shown = []
    return [(i, bounds[i], bounds[i + 1]) for i in shown]


def label_of(lo: float | None, hi: float | None, *, integer: bool) -> str:
    """'3', '10–19', '200+' for integer counts; '[0, 1)', '≥ 100', '< 0' otherwise."""
    if integer:
        if lo is None:
            return "0" if hi == 1 else f"< {_short(hi)}"
        if hi is None:
            return f"{_short(lo)}+"
        return _short(lo) if hi - lo == 1 else f"{_short(lo)}–{_short(hi - 1)}"
    if lo is None:
        return f"< {_short(hi)}"
    if hi is None:
        return f"≥ {_short(lo)}"
    return f"[{_short(lo)}, {_short(hi)})"


def duration_range(lo: float | None, hi: float | None) -> str:
    if hi is None:
        return f"≥ {human(lo or 0.0)}"
    return f"{human(lo or 0.0)}–{human(hi)}"


def human(seconds: float) -> str:
    """A duration in at most two units: '45s', '2m 30s', '2h 5m', '3d 4h'."""
    if seconds < MINUTE:
        return f"{seconds:g}s"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1)):
        n, whole = divmod(whole, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts[:2])


def _short(x: float | None) -> str:
    assert x is not None
    return f"{int(x)}" if float(x).is_integer() else f"{x:g}"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


__all__ = [
    "Bucket",
    "DistributionQuery",
    "DistributionResult",
    "IntervalBucket",
    "IntervalQuery",
    "IntervalResult",
    "MaxGap",
]
