"""What retention returns: per cohort (and breakdown value) the size, counts, rates and, for value retention,
the value per member of each period, whether each cell is complete, and the size-weighted average row."""

from __future__ import annotations

from userloop.query.kinds.base import Result
from userloop.query.kinds.retention.people import People
from userloop.query.kinds.retention.periods import PeriodInterval


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
