"""Lifecycle: in each period, who is new, returning, resurrecting or dormant (PostHog's lifecycle insight).

After PostHog (https://posthog.com/docs/product-analytics/lifecycle), with "active in a period" meaning the person
did the event (with its filters and the global filters) at least once in that local day, week (Monday) or month:

- **new**: the person's first such event ever (in all stored data up to today, not just the range) is in this
  period. PostHog uses the person's creation time instead; here it is the first matching event, so "new" depends on
  the chosen event.
- **returning**: active in this period and in the previous one.
- **resurrecting**: active in this period, not in the previous one, but in some period before.
- **dormant**: active in the previous period and not in this one. Reported as a **negative** number, as PostHog
  charts it (stacked below the axis), so ``new + returning + resurrecting + dormant`` is the change in active
  people plus the new ones.

The date range is widened to whole periods. A period that has not started by today has ``None`` counts; the
period holding today is marked ``complete: false`` (its dormant count still holds people who may yet come back),
and the result's ``partial`` lists the periods not over (running or not begun) as trends does — with the range
widened, a period is never cut by it, so only those are partial.

The statement is one scan of the matching events up to today grouped by (person, period) — everything before
the period preceding the range collapses into one "seen before" row per person — then ``lag``/``lead`` over each
person's periods.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, bucket_of, col, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.kinds.retention import (
    MAX_PEOPLE,
    People,
    PeriodGrid,
    PeriodInterval,
    attach_ctes,
    grouped,
    people_from,
    people_statement,
    period_index,
    scan_bounds,
)
from userloop.query.periods import partial_buckets
from userloop.query.spec import EventRef, Spec

Status = Literal["new", "returning", "resurrecting", "dormant"]
STATUSES: tuple[Status, ...] = ("new", "returning", "resurrecting", "dormant")


class LifecyclePeople(Spec):
    """Ask for the people with one status in one period (its first day)."""

    bucket: date
    status: Status
    limit: int = Field(100, ge=1, le=MAX_PEOPLE)


class LifecycleQuery(Analysis):
    kind: Literal["lifecycle"] = "lifecycle"
    event: EventRef
    interval: PeriodInterval = "day"
    people: LifecyclePeople | None = None

    def grid(self, ctx: Context) -> PeriodGrid:
        """Period 0 is the one before the range; the range's periods are 1…count−1."""
        first, last = ctx.days(self.date_range)
        shown = PeriodGrid.covering(self.interval, first, last)
        return PeriodGrid(self.interval, shown.start(-1), shown.count + 1)

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        grid = self.grid(ctx)
        ctes = self._ctes(ctx, grid)
        out = {"counts": attach_ctes(ctes, sql("SELECT b, status, count(*) AS n FROM status GROUP BY b, status"))}
        if self.people is not None:
            b = _bucket_index(grid, self.people.bucket, self.interval)
            chosen = sql("SELECT user_id FROM status WHERE b = $b AND status = $s", b=b, s=self.people.status)
            out["people"] = people_statement(ctes, chosen, self.people.limit)
        return out

    def _ctes(self, ctx: Context, grid: PeriodGrid) -> exp.Expr:
        lo, hi = scan_bounds(ctx, grid, 0, grid.count - 1)
        last = grid.index(min(ctx.today, grid.end(grid.count - 1)))  # no dormant people in periods not yet begun
        act = sql(
            """SELECT e.user_id AS user_id, CASE WHEN e.time < $lo THEN -1 ELSE $i END AS i
               FROM $events AS e WHERE e.time < $hi AND $cond AND $filters GROUP BY ALL""",
            lo=lo,
            hi=hi,
            i=period_index(ctx, col("time", "e"), grid),
            events=ctx.table("events"),
            cond=grouped(ctx.event_cond(self.event)),
            filters=grouped(ctx.filters_cond(self.filters)),
        )
        st = sql(
            """SELECT user_id, i, lag(i) OVER w AS pi, lead(i) OVER w AS ni FROM act
               WINDOW w AS (PARTITION BY user_id ORDER BY i)"""
        )
        status = sql(
            """SELECT user_id, i AS b,
                 CASE WHEN pi IS NULL THEN 'new' WHEN pi = i - 1 THEN 'returning' ELSE 'resurrecting' END AS status
               FROM st WHERE i >= 1
               UNION ALL
               SELECT user_id, i + 1, 'dormant' FROM st
               WHERE i >= 0 AND i + 1 <= $last AND (ni IS NULL OR ni > i + 1)""",
            last=last,
        )
        return exp.select("1").with_("act", as_=act).with_("st", as_=st).with_("status", as_=status)

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> LifecycleResult:
        grid = self.grid(ctx)
        counts: dict[tuple[int, str], int] = {(int(b), s): int(n) for b, s, n in data["counts"].rows}
        rows = []
        for i in range(1, grid.count):
            started = grid.start(i) <= ctx.today

            def count(status: Status, i: int = i, started: bool = started) -> int | None:
                return counts.get((i, status), 0) if started else None

            dormant = count("dormant")
            rows.append(
                LifecycleBucket(
                    bucket=grid.start(i).isoformat(),
                    new=count("new"),
                    returning=count("returning"),
                    resurrecting=count("resurrecting"),
                    dormant=None if dormant is None else -dormant,
                    complete=grid.end(i) < ctx.today,
                )
            )
        partial = partial_buckets(self.interval, grid.start(1), grid.end(grid.count - 1), ctx.today)
        result = LifecycleResult(interval=self.interval, buckets=rows, partial=partial)
        if "people" in data:
            result.people = people_from(data["people"])
        return result


class LifecycleBucket(Result):
    bucket: str
    new: int | None
    returning: int | None
    resurrecting: int | None
    dormant: int | None = Field(description="People active in the previous period but not this one, as a negative.")
    complete: bool


class LifecycleResult(Result):
    interval: PeriodInterval
    buckets: list[LifecycleBucket]
    partial: list[str] = Field(
        default_factory=list, description="Buckets that are not whole finished periods (running or not begun)."
    )
    people: People | None = None


def _bucket_index(grid: PeriodGrid, bucket: date, interval: PeriodInterval) -> int:
    if bucket_of(bucket, interval) != bucket:
        raise ValidationError(
            f"people.bucket {bucket} is not the first day of a {interval}; the {interval} holding it starts on "
            f"{bucket_of(bucket, interval)}"
        )
    i = grid.index(bucket)
    if not 1 <= i < grid.count:
        raise ValidationError(
            f"people.bucket {bucket} is outside the periods of the date range "
            f"({grid.start(1)} … {grid.start(grid.count - 1)})"
        )
    return i


__all__ = ["LifecycleQuery", "LifecycleResult"]
