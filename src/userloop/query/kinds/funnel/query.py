"""The funnel definition (:class:`FunnelQuery`): its options, the rules that tie them together, and the facts
about its steps that the builders ask for. Compiling and shaping are delegated to :mod:`.statement` and
:mod:`.shaping`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.query.compile import Context
from userloop.query.kinds.base import Analysis, Frame, Staged
from userloop.query.kinds.funnel.results import FunnelResult
from userloop.query.kinds.funnel.shaping import shape
from userloop.query.kinds.funnel.spec import (
    MAX_EXCLUSIONS,
    MAX_STEPS,
    ConversionWindow,
    Exclusion,
    FunnelStep,
    PeopleRequest,
    StepAttribution,
)
from userloop.query.kinds.funnel.statement import FunnelStatement
from userloop.query.spec import ANY_EVENT, Breakdown


class FunnelQuery(Analysis):
    kind: Literal["funnel"] = "funnel"
    steps: list[FunnelStep] = Field(min_length=2, max_length=MAX_STEPS)
    order: Literal["sequential", "strict", "any"] = "sequential"
    window: ConversionWindow = Field(default_factory=lambda: ConversionWindow(value=14, unit="day"))
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    breakdown: Breakdown | None = None
    breakdown_attribution: Literal["first_touch", "last_touch"] | StepAttribution = "first_touch"
    people: PeopleRequest | None = None
    trend_interval: Literal["day", "week", "month"] | None = None
    time_to_convert_bins: int = Field(10, ge=1, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> FunnelQuery:
        n = len(self.steps)
        if self.steps[0].optional or self.steps[-1].optional:
            raise ValueError("steps: the first and the last step cannot be optional; make them required")
        if self.order == "any":
            if any(s.optional for s in self.steps):
                raise ValueError("steps: optional steps need order 'sequential' or 'strict' ('any' counts steps done)")
            if self.exclusions:
                raise ValueError("exclusions sit between two steps, so they need order 'sequential' or 'strict'")
            names = [s.event for s in self.steps]
            if ANY_EVENT in names:
                raise ValueError("steps: in 'any' order every step must name an event ('$any' would match every step)")
            if len(set(names)) != n:
                raise ValueError(
                    "steps: in 'any' order the steps must be different events, so one event fills at most one step; "
                    "use order 'sequential' to repeat an event"
                )
        for i, x in enumerate(self.exclusions):
            to = n if x.to_step is None else x.to_step
            if not 1 <= x.from_step < to <= n:
                raise ValueError(
                    f"exclusions.{i}: from_step {x.from_step} and to_step {to} must satisfy 1 ≤ from < to ≤ {n}"
                )
            if self.steps[x.from_step - 1].optional or self.steps[to - 1].optional:
                raise ValueError(f"exclusions.{i}: from_step and to_step must be required (not optional) steps")
        if isinstance(self.breakdown_attribution, StepAttribution) and self.breakdown_attribution.step > n:
            raise ValueError(
                f"breakdown_attribution.step is {self.breakdown_attribution.step}; the funnel has {n} steps"
            )
        if self.people is not None:
            p = self.people
            if p.step > n:
                raise ValueError(f"people.step is {p.step}; the funnel has {n} steps")
            if p.status == "dropped" and p.step == 1:
                raise ValueError("people: nobody drops off before step 1; ask for 'dropped' at step 2 or later")
            if p.breakdown is not None and self.breakdown is None:
                raise ValueError("people.breakdown needs a breakdown in the funnel; add 'breakdown' or drop it")
        return self

    # facts -----------------------------------------------------------------------------------------------------
    def exclusion_span(self, i: int) -> tuple[int, int]:
        x = self.exclusions[i]
        return x.from_step, len(self.steps) if x.to_step is None else x.to_step

    def previous_required(self, k: int) -> int:
        """The required step before step ``k`` (1-based; ``k`` ≥ 2)."""
        j = k - 1
        while self.steps[j - 1].optional:
            j -= 1
        return j

    def predecessors(self, k: int) -> list[int]:
        """Steps an attempt may do right before step ``k``: the previous required one and the optional ones after
        it."""
        return list(range(self.previous_required(k), k))

    def attribution_step(self) -> int | None:
        """The step whose event gives the breakdown value; None for last touch."""
        a = self.breakdown_attribution
        if isinstance(a, StepAttribution):
            return a.step
        return 1 if a == "first_touch" else None

    # statements and shaping --------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr | Staged]:
        return {"funnel": FunnelStatement(ctx, self).staged()}

    def shape(self, ctx: Context, data: dict[str, Frame]) -> FunnelResult:
        return shape(self, ctx, data["funnel"])
