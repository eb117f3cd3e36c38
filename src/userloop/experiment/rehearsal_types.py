"""A rehearsal's request and reply as the operation ``experiments.rehearse`` (and the plan's ``rehearse`` field)
carry them: what to rehearse on how big a simulated business, and per arm what was measured beside what the
simulator knows to be true (:mod:`userloop.experiment.rehearsal_run` fills it in). Pydantic only, so the operations'
types load without the engines."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RehearsalInput(_Part):
    """The ``journey`` document to rehearse and the simulated business: ``users`` people over ``days`` days, the
    simulator's ``seed``. The defaults take a few seconds."""

    journey: dict[str, Any] = Field(description="The journey's definition (as `journeys create` takes it).")
    users: Annotated[int, Field(ge=50, le=20_000)] = Field(default=1_000, description="Simulated people.")
    days: Annotated[int, Field(ge=3, le=120)] = Field(default=21, description="Simulated days.")
    seed: Annotated[int, Field(ge=0)] = Field(default=1, description="The simulator's seed.")


class RehearsedArm(_Part):
    """One arm as measured: people enrolled, people its sends reached, converters, the conversion rate and revenue
    per person within the goal window."""

    arm: str
    control: bool
    people: int
    reached: int
    conversions: int
    conversion_rate: float | None
    revenue_per_person: float | None


class RehearsedEffect(_Part):
    """An arm against the control on one metric (``conversion``: probability; ``revenue``: yuan per person): the
    estimate with its 95% interval (Welch), the always-valid interval for reading every day, and the true average
    effect among everyone enrolled, from the simulator; ``relative`` is the estimate over the control's mean."""

    arm: str
    metric: str
    estimate: float
    low: float
    high: float
    p_value: float
    sequential_low: float
    sequential_high: float
    true_effect: float
    covered: bool
    relative: float | None = None
    code: str | None = None


class RehearsedRatio(_Part):
    """The sample ratio check of the split: people per arm against the planned percentages."""

    arms: list[str]
    counts: list[int]
    weights: list[float]
    p_value: float
    alert: bool


class RehearsalSentence(_Part):
    zh: str
    en: str


class RehearsalReport(_Part):
    """What a rehearsal measured and what was true: the simulated business, arms, effects, sample ratio and
    findings in Chinese and English (the first says the business is simulated)."""

    journey: str
    users: int
    days: int
    seed: int
    entry_day: str | None
    control: str
    arms: list[RehearsedArm]
    effects: list[RehearsedEffect]
    srm: RehearsedRatio
    sentences: list[RehearsalSentence]


__all__ = ["RehearsalInput", "RehearsalReport", "RehearsalSentence", "RehearsedArm", "RehearsedEffect",
           "RehearsedRatio"]  # fmt: skip
