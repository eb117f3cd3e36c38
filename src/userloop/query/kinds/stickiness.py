"""Stickiness: how many people were active on exactly k of the range's days (or weeks, or months).

After PostHog's stickiness insight (https://posthog.com/docs/product-analytics/stickiness) and Mixpanel's
frequency report: for k = 1…the number of periods in the range, the people who did the event (with its filters and
the global filters) in exactly k distinct local periods of the range. Weeks run Monday to Sunday and the range is
widened to whole periods; events after today are not counted. The result also gives each k's share of the active
people and the average number of active periods per active person. ``partial`` says the range (widened to whole
periods) reaches into a period still running — today, the current week or month — so people have not yet had every
period in which to be active.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, col, sql
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
from userloop.query.periods import running
from userloop.query.spec import EventRef, Spec


class StickinessPeople(Spec):
    """Ask for the people active on exactly ``intervals`` periods."""

    intervals: int = Field(ge=1)
    limit: int = Field(100, ge=1, le=MAX_PEOPLE)


class StickinessQuery(Analysis):
    kind: Literal["stickiness"] = "stickiness"
    event: EventRef
    interval: PeriodInterval = "day"
    people: StickinessPeople | None = None

    def grid(self, ctx: Context) -> PeriodGrid:
        first, last = ctx.days(self.date_range)
        return PeriodGrid.covering(self.interval, first, last)

    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        grid = self.grid(ctx)
        lo, hi = scan_bounds(ctx, grid, 0, grid.count - 1)
        active = sql(
            """SELECT e.user_id AS user_id, $i AS i FROM $events AS e
               WHERE e.time >= $lo AND e.time < $hi AND $cond AND $filters GROUP BY ALL""",
            i=period_index(ctx, col("time", "e"), grid),
            events=ctx.table("events"),
            lo=lo,
            hi=hi,
            cond=grouped(ctx.event_cond(self.event)),
            filters=grouped(ctx.filters_cond(self.filters)),
        )
        per_user = sql("SELECT user_id, count(*) AS k FROM active GROUP BY user_id")
        ctes = exp.select("1").with_("active", as_=active).with_("per_user", as_=per_user)
        out = {"counts": attach_ctes(ctes, sql("SELECT k, count(*) AS n FROM per_user GROUP BY k"))}
        if self.people is not None:
            if self.people.intervals > grid.count:
                raise ValidationError(
                    f"people.intervals is {self.people.intervals}, but the date range holds {grid.count} "
                    f"{self.interval}s; ask for 1 … {grid.count}"
                )
            chosen = sql("SELECT user_id FROM per_user WHERE k = $k", k=self.people.intervals)
            out["people"] = people_statement(ctes, chosen, self.people.limit)
        return out

    def shape(self, ctx: Context, data: dict[str, Frame]) -> StickinessResult:
        grid = self.grid(ctx)
        by_k = {int(k): int(n) for k, n in data["counts"].rows}
        total = sum(by_k.values())
        rows = [
            StickinessRow(intervals=k, people=by_k.get(k, 0), share=by_k.get(k, 0) / total if total else None)
            for k in range(1, grid.count + 1)
        ]
        result = StickinessResult(
            interval=self.interval,
            periods=grid.count,
            total=total,
            average=sum(k * n for k, n in by_k.items()) / total if total else None,
            rows=rows,
            partial=running(grid.end(grid.count - 1), ctx.today),
        )
        if "people" in data:
            result.people = people_from(data["people"])
        return result


class StickinessRow(Result):
    intervals: int
    people: int
    share: float | None


class StickinessResult(Result):
    interval: PeriodInterval
    periods: int = Field(description="How many periods the range holds: the largest possible k.")
    total: int = Field(description="People active on at least one period.")
    average: float | None = Field(description="Mean active periods per active person.")
    rows: list[StickinessRow]
    partial: bool = Field(
        default=False, description="The range (whole periods) reaches into a period still running (today or later)."
    )
    people: People | None = None


__all__ = ["StickinessQuery", "StickinessResult"]
