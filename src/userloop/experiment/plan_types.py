"""The plan's request and reply (:func:`userloop.experiment.plan.plan` answers a :class:`PlanInput` with a
:class:`PlanReport`). Pydantic only, so the operation ``experiments.plan`` and its client load without the engines
(the CLI through a server imports these types, not DuckDB, Arrow or SQLAlchemy)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Share = Annotated[float, Field(gt=0, lt=1)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanInput(_Part):
    """What is planned: the ``segment`` audience (everyone when None), the ``channels`` it would be sent on, the
    goal (``goal`` within ``window_days``), the split (``treatment_share`` and ``control_share`` of the people,
    e.g. 0.9 / 0.1), ``days`` the test may run, how many people enter a day (``daily_people``; None: the whole
    audience at once, a broadcast), and an ``expected_effect`` (relative lift, from a rehearsal) if known."""

    segment: Annotated[int, Field(ge=1)] | None = None
    channels: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=10)
    goal: Annotated[str, Field(min_length=1, max_length=100)]
    window_days: Annotated[int, Field(ge=1, le=366)] = 7
    treatment_share: Share = 0.5
    control_share: Share = 0.5
    days: Annotated[int, Field(ge=1, le=366)] = 14
    daily_people: Annotated[float, Field(gt=0)] | None = None
    expected_effect: Annotated[float, Field(gt=-1, le=100)] | None = None
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8


class ChannelReach(_Part):
    """One channel's reach at launch: the audience, then what each delivery rule leaves, in the rules' order."""

    channel: str
    kind: str
    audience: int
    global_control: int
    no_address: int
    unreachable: int
    unsubscribed: int
    capped: int
    quiet_deferred: int
    quiet_dropped: int
    reachable: int
    share: float | None


class BaselineOut(_Part):
    """The goal before launch: people counted, converters, the rate, revenue per person and its variance."""

    people: int
    converters: int
    conversion_rate: float | None
    revenue_per_person: float | None
    revenue_variance: float | None


class PowerOut(_Part):
    """The test's power: people in it, the days they take, the minimum detectable relative lift (and in
    percentage points), the people and days an expected effect needs, and the power it reaches."""

    people: int
    days: int
    minimum_detectable_effect: float | None
    minimum_detectable_points: float | None
    expected_effect: float | None = None
    required_people: int | None = None
    required_days: int | None = None
    power_at_expected: float | None = None
    added_conversions: float | None = None
    code: str | None = None


class Sentence(_Part):
    zh: str
    en: str


class PlanReport(_Part):
    """The plan's answer: reach per channel, the baseline, the power, findings in Chinese and English."""

    audience: int
    as_of: datetime
    goal: str
    window_days: int
    reach: list[ChannelReach]
    baseline: BaselineOut
    power: PowerOut
    sentences: list[Sentence]


__all__ = ["BaselineOut", "ChannelReach", "PlanInput", "PlanReport", "PowerOut", "Sentence", "Share"]
