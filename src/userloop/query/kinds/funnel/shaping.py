"""The funnel's rows (one statement, tagged by ``section``) shaped into a :class:`FunnelResult`: the series of
steps overall and per breakdown value, with ``conversion_from_previous`` and ``dropped`` measured against the
previous *required* step, and the breakpoints (:mod:`.breakpoints`): overall, the required step with the highest
drop-off rate; per breakdown value, the steps where the value converts significantly worse than the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.query.compile import Context, buckets
from userloop.query.kinds.base import Frame
from userloop.query.kinds.funnel.breakpoints import mark_behind_others, mark_largest_drop
from userloop.query.kinds.funnel.results import (
    FunnelPeople,
    FunnelResult,
    FunnelSeries,
    FunnelStepResult,
    FunnelTrendPoint,
    TimeBin,
)
from userloop.query.kinds.funnel.spec import MICROS
from userloop.query.periods import partial_buckets, running
from userloop.query.spec import NONE, OTHER

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.query import FunnelQuery


def shape(q: FunnelQuery, ctx: Context, frame: Frame) -> FunnelResult:
    """The result, from the rows of the funnel's statement."""
    n = len(q.steps)
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
    total = _series(q, per.get(None, {}), None)
    mark_largest_drop(total)
    breakdowns = None
    if q.breakdown is not None:
        series = [_series(q, steps, bd) for bd, steps in per.items() if bd is not None]
        breakdowns = sorted(series, key=lambda s: (s.breakdown in (OTHER, NONE), -s.entered, s.breakdown or ""))
        mark_behind_others(q, breakdowns)
    histogram = [
        TimeBin(
            from_seconds=(lo + i * width) / MICROS, to_seconds=(lo + (i + 1) * width) / MICROS, count=bins.get(i, 0)
        )
        for i in range(max(bins) + 1 if bins else 0)
    ]
    first, last = ctx.days(q.date_range)
    result = FunnelResult(
        order=q.order,
        window_seconds=q.window.seconds,
        steps=total.steps,
        entered=total.entered,
        converted=total.converted,
        conversion_rate=total.conversion_rate,
        avg_time_to_convert=total.avg_time_to_convert,
        median_time_to_convert=total.median_time_to_convert,
        time_to_convert=histogram,
        breakdowns=breakdowns,
        partial=running(last, ctx.today),
    )
    if q.people is not None:
        result.people = FunnelPeople(
            step=q.people.step,
            status=q.people.status,
            breakdown=q.people.breakdown,
            total=people_total,
            user_ids=sorted(people),
        )
    if q.trend_interval is not None:
        points = []
        for bucket in buckets(q.trend_interval, first, last):
            label = bucket.isoformat()
            entered, converted = trend.get(label, (0, 0))
            points.append(
                FunnelTrendPoint(bucket=label, entered=entered, converted=converted, rate=_ratio(converted, entered))
            )
        result.trend = points
        result.trend_partial = partial_buckets(q.trend_interval, first, last, ctx.today)
    assert len(result.steps) == n
    return result


def _series(q: FunnelQuery, per_step: dict[int, dict[str, Any]], breakdown: str | None) -> FunnelSeries:
    n = len(q.steps)
    counts = {k: per_step.get(k, {}).get("n", 0) for k in range(1, n + 1)}
    steps: list[FunnelStepResult] = []
    for k in range(1, n + 1):
        row = per_step.get(k, {})
        prev = counts[q.previous_required(k)] if k > 1 else counts[1]
        dropped = prev - counts[k] if k > 1 else 0
        steps.append(
            FunnelStepResult(
                step=k,
                label=_label(q, k),
                event=None if q.order == "any" else q.steps[k - 1].event,
                optional=q.steps[k - 1].optional,
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


def _label(q: FunnelQuery, k: int) -> str:
    if q.order == "any":
        return f"{k} of {len(q.steps)} steps"
    return q.steps[k - 1].label


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value) / MICROS
