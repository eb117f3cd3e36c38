"""The pieces of a funnel definition: steps, the conversion window, exclusions, breakdown attribution and the
people request (their meaning is defined in :mod:`userloop.query.kinds.funnel`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from userloop.query.spec import EventRef, Spec

MAX_STEPS = 40
MAX_EXCLUSIONS = 10
MICROS = 1_000_000
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
MAX_WINDOW_SECONDS = 366 * 86_400


class ConversionWindow(Spec):
    """How long an attempt may take, from its step-1 event to its last step: ``{"value": 7, "unit": "day"}``."""

    value: int = Field(14, ge=1)
    unit: Literal["minute", "hour", "day", "week"] = "day"

    @model_validator(mode="after")
    def _not_too_long(self) -> ConversionWindow:
        if self.seconds > MAX_WINDOW_SECONDS:
            raise ValueError("a conversion window may be at most 366 days")
        return self

    @property
    def seconds(self) -> int:
        return self.value * UNIT_SECONDS[self.unit]


class FunnelStep(EventRef):
    """A step: an event (or ``$any``) with filters; an optional step may be skipped."""

    optional: bool = False


class Exclusion(EventRef):
    """People who do this event between ``from_step`` and ``to_step`` (1-based; default: the whole funnel) of
    their chosen attempt are removed from the funnel."""

    from_step: int = Field(1, ge=1)
    to_step: int | None = Field(None, ge=2, description="Defaults to the last step.")


class StepAttribution(Spec):
    step: int = Field(ge=1, description="Take the breakdown value from this step's event (1-based).")


class PeopleRequest(Spec):
    """Which people to list: those who reached ``step`` (``converted``) or dropped off right before it."""

    step: int = Field(ge=1)
    status: Literal["converted", "dropped"] = "converted"
    limit: int = Field(100, ge=1, le=10_000)
    breakdown: str | None = Field(None, description="Only people with this breakdown value.")
