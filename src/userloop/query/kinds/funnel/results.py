"""What a funnel returns: per step counts, conversion and times, per breakdown value the same series, the time to
convert histogram, the people asked for and the conversion trend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from userloop.query.kinds.base import Result


class Breakpoint(Result):
    """Why a step is a breakpoint (see :mod:`userloop.query.kinds.funnel.breakpoints`).

    ``largest_drop_off``: the required step with the highest drop-off rate of its series (no breakdown, or the
    overall series). ``behind_other_values``: this breakdown value converts at this step significantly
    (Benjamini–Hochberg q-value ≤ 1%) and materially (drop-off ≥ 2× and ≥ 5 points above) worse than the other
    values pooled.
    """

    rule: Literal["largest_drop_off", "behind_other_values"]
    drop_off_rate: float = Field(description="The step's drop-off rate in this series.")
    conversion: float | None = Field(
        default=None, description="This value's conversion from the previous required step."
    )
    others_conversion: float | None = Field(
        default=None, description="The other values' pooled conversion at this step."
    )
    p_value: float | None = Field(
        default=None, description="Two-sided two-proportion z-test, this value vs the others."
    )
    q_value: float | None = Field(
        default=None, description="The p-value adjusted by Benjamini–Hochberg over the funnel."
    )


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
    breakpoint: Breakpoint | None = None


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
    partial: bool = Field(
        default=False, description="The date range reaches into a period still running (it ends today or later)."
    )
    trend_partial: list[str] | None = Field(
        default=None,
        description="Trend buckets that are not whole finished periods (cut by the range, or running), as trends' "
        "'partial'.",
    )
