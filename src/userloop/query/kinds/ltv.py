"""LTV: cumulative value per person of a cohort, N days after the person's first event (DOMAIN §10, §13 "CLTV").

A person belongs to the cohort of the day, week or month of their **first ever** ``cohort_event`` — first in all
the data stored (events before the date range included), so a person whose first such event falls before the
range is in no cohort. The date range selects which cohorts are shown.

Value is the sum of ``value_property`` (default: the project's money property, a project setting, see
:mod:`userloop.store.settings`) over the person's ``value_event`` events (``math: "sum"``), or the number
of those events (``math: "count"``), counted from the instant of the first cohort event (ties included) up to the
end of local day N, where day 0 is the local day of the first cohort event. A cell is that cumulative value
divided by the cohort's size (value per member, members without value count as zero). This is the "LTV" of
Sensors Analytics' LTV analysis (cumulative value per initial-behaviour user by day N) and of Amplitude's
Revenue LTV chart (cumulative revenue per new user of a cohort).

A cell is ``None`` while not every member has reached day N: when the cohort's latest first day plus N is after
today (day N may be today, still in progress). The ``all`` row weights cohorts by size over the cohorts whose cell
is observable: the sum of their values divided by the sum of their sizes. ``partial`` lists the cohorts whose
period is not a whole finished one (cut by the range, or still running, so people are still joining it), as
trends lists its partial buckets.

Global ``filters`` apply to the cohort events and to the value events.
"""

from __future__ import annotations

from datetime import date, timedelta
from math import fsum
from typing import Literal

from pydantic import Field, field_validator, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, buckets, col, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.periods import partial_buckets
from userloop.query.spec import ANY_EVENT, EventRef, Name
from userloop.schema.types import PropertyType

CohortInterval = Literal["day", "week", "month"]
DEFAULT_DAYS = (1, 7, 14, 30, 60, 90)
MAX_HORIZON = 3660


class LtvQuery(Analysis):
    """Cohort LTV: ``{"kind": "ltv", "value_event": {"event": "order_paid"}, "value_property": "amount"}``."""

    kind: Literal["ltv"] = "ltv"
    cohort_event: EventRef = Field(
        default_factory=lambda: EventRef.model_validate({"event": ANY_EVENT}),
        description="The person's first ever such event starts their lifetime (default: any event).",
    )
    cohort_interval: CohortInterval = "day"
    value_event: EventRef
    math: Literal["sum", "count"] = "sum"
    value_property: Name | None = Field(
        None, description="The numeric event property summed by math 'sum' (default: the project's money property)."
    )
    days: list[int] = Field(default_factory=lambda: list(DEFAULT_DAYS), min_length=1, max_length=30)

    @field_validator("days")
    @classmethod
    def _sorted_days(cls, days: list[int]) -> list[int]:
        if any(d < 0 or d > MAX_HORIZON for d in days):
            raise ValueError(f"each day N must be between 0 and {MAX_HORIZON}")
        return sorted(set(days))

    @model_validator(mode="after")
    def _property_when_needed(self) -> LtvQuery:
        if self.math == "count" and self.value_property is not None:
            raise ValueError("math 'count' counts events and takes no 'value_property'")
        return self

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        first, last = ctx.days(self.date_range)
        # value events matter up to day N of the range's last day, and never after today
        value_last = max(first, min(last + timedelta(days=self.days[-1]), ctx.today))
        lo, hi = ctx.utc_bounds(first, last)
        _, value_hi = ctx.utc_bounds(first, value_last)
        if self.math == "sum" and self.value_property is None:  # the engine puts the money property in when it can
            raise ValidationError(
                "math 'sum' needs a numeric 'value_property' (or use math 'count'); the project's money property "
                "is not a NUMBER event property, so it cannot be the default"
            )
        value = exp.Literal.number(1) if self.value_property is None else self._numeric(ctx, self.value_property)
        cohort_where = and_([ctx.event_cond(self.cohort_event), ctx.filters_cond(self.filters)])
        value_where = and_([ctx.event_cond(self.value_event), ctx.filters_cond(self.filters)])
        return {
            "cells": sql(
                """WITH firsts AS MATERIALIZED (
                  SELECT e.user_id AS user_id, min(e.time) AS t0 FROM $events AS e
                  WHERE e.time < $hi AND $cohort_where GROUP BY e.user_id HAVING min(e.time) >= $lo),
                members AS MATERIALIZED (
                  SELECT user_id, t0, $day0 AS day0, $cohort AS cohort FROM firsts AS f),
                per_day AS (
                  SELECT m.cohort AS cohort, date_diff('day', m.day0, $event_day) AS d, sum($value) AS total
                  FROM $events AS e JOIN members AS m ON m.user_id = e.user_id
                  WHERE e.time >= $lo AND e.time < $value_hi AND e.time >= m.t0 AND $value_where
                  GROUP BY ALL),
                cells AS (
                  SELECT p.cohort AS cohort, h.n AS n, sum(p.total) AS total
                  FROM per_day AS p, unnest($horizons) AS h(n) WHERE p.d <= h.n GROUP BY ALL),
                sizes AS (SELECT cohort, count(*) AS size, max(day0) AS last_day0 FROM members GROUP BY cohort)
                SELECT s.cohort AS cohort, s.size AS size, s.last_day0 AS last_day0, c.n AS n, c.total AS total
                FROM sizes AS s LEFT JOIN cells AS c ON c.cohort = s.cohort
                ORDER BY s.cohort, c.n""",
                events=ctx.table("events"),
                lo=lo,
                hi=hi,
                value_hi=value_hi,
                cohort_where=cohort_where,
                value_where=value_where,
                day0=ctx.local_day(col("t0", "f"), first, last),
                cohort=ctx.bucket(col("t0", "f"), self.cohort_interval, first, last),
                event_day=ctx.local_day(col("time", "e"), first, value_last),
                value=value,
                horizons=list(self.days),
            )
        }

    @staticmethod
    def _numeric(ctx: Context, name: str) -> exp.Expr:
        ctx.require_pii(name, "a measure over")
        if ctx.prop_type("event", name) != PropertyType.NUMBER:
            raise ValidationError(f"value_property {name!r} is not a numeric event property; pick a NUMBER property")
        return col(name, "e")

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> LtvResult:
        first, last = ctx.days(self.date_range)
        found: dict[date, tuple[int, date, dict[int, float]]] = {}
        for cohort, size, last_day0, n, total in data["cells"].rows:
            _, _, totals = found.setdefault(cohort, (int(size), last_day0, {}))
            if n is not None:
                totals[int(n)] = float(total or 0.0)
        starts = buckets(self.cohort_interval, first, last)
        rows = [self._row(ctx, b.isoformat(), *found.get(b, (0, b, {}))) for b in starts]
        return LtvResult(
            interval=self.cohort_interval,
            days=list(self.days),
            cohorts=rows,
            all=self._all_row(rows),
            partial=partial_buckets(self.cohort_interval, first, last, ctx.today),
        )

    def _row(self, ctx: Context, label: str, size: int, last_day0: date, totals: dict[int, float]) -> LtvRow:
        observable = [size > 0 and last_day0 + timedelta(days=n) <= ctx.today for n in self.days]
        cum = [totals.get(n, 0.0) if ok else None for n, ok in zip(self.days, observable, strict=True)]
        return LtvRow(cohort=label, size=size, totals=cum, values=[None if t is None else t / size for t in cum])

    def _all_row(self, rows: list[LtvRow]) -> LtvRow:
        totals: list[float | None] = []
        values: list[float | None] = []
        for i in range(len(self.days)):
            seen = [(r.totals[i], r.size) for r in rows if r.totals[i] is not None]
            total = fsum(t for t, _ in seen if t is not None)
            size = sum(s for _, s in seen)
            totals.append(total if seen else None)
            values.append(total / size if seen else None)
        return LtvRow(cohort="all", size=sum(r.size for r in rows), totals=totals, values=values)


class LtvRow(Result):
    cohort: str = Field(description="The cohort's first day (ISO date), or 'all'.")
    size: int
    totals: list[float | None] = Field(description="Cumulative value of all members by day N (None: not yet).")
    values: list[float | None] = Field(description="Cumulative value per member by day N (None: not yet).")


class LtvResult(Result):
    interval: CohortInterval
    days: list[int]
    cohorts: list[LtvRow]
    all: LtvRow
    partial: list[str] = Field(
        default_factory=list, description="Cohorts not a whole finished period (cut by the range, or running)."
    )


__all__ = ["LtvQuery", "LtvResult", "LtvRow"]
