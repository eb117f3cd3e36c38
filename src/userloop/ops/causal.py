"""Causal estimates as operations: the value of a treatment defined by an event by difference-in-differences
with matched controls (:mod:`userloop.experiment.did`), and who is persuadable by uplift models learnt from a
randomized treatment (:mod:`userloop.experiment.uplift`). Reading needs ``read``.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from userloop.experiment.causal_types import Censor, Learner, Name, Outcome, Treatment
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation

if TYPE_CHECKING:
    from userloop.experiment.did import DidSpec
    from userloop.experiment.stats import Interval
    from userloop.experiment.uplift import UpliftSpec


class Estimate(Strict):
    """An estimate with its two-sided interval, p-value and standard error (``code``: why it is neutral)."""

    estimate: float
    low: float
    high: float
    p_value: float
    se: float
    code: str | None = None

    @classmethod
    def of(cls, i: Interval) -> Estimate:
        return cls(estimate=i.estimate, low=i.low, high=i.high, p_value=i.p_value, se=i.se, code=i.code)


class DidRequest(ProjectScoped):
    treatment: Treatment = Field(default=Treatment(), description="The treatment event and its property filters.")
    outcome: Outcome = Field(default=Outcome(), description="The event counted, or its numeric property summed.")
    start: date | None = Field(default=None, description="First local day read (default: the first with events).")
    end: date | None = Field(default=None, description="Last local day read (default: the last with events).")
    pre_days: Annotated[int, Field(ge=7, le=180)] = 28
    had_done: tuple[Name, ...] = Field(default=(), max_length=4, description="Events to have done before joining.")
    did_lately: tuple[Name, ...] = Field(
        default=(), max_length=4, description="Events to have had in the pre_days before joining."
    )
    censor: Censor = "weighted"
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05

    def spec(self) -> DidSpec:
        from userloop.experiment.did import DidSpec

        return DidSpec(**self.model_dump(exclude={"project"}))


class Sentence(Strict):
    zh: str
    en: str


class DidReply(Strict):
    """The matched DiD effect per person-day and relative to the counterfactual, beside the naive comparisons."""

    effect: Estimate
    relative: Estimate
    before_after: Estimate
    members_vs_others: Estimate
    treated_mean: float
    counterfactual_mean: float
    pre_treated: float
    pre_controls: float
    joiners: int
    matched: int
    unmatched: int
    cohorts: int
    controls: int
    treated_days: int
    sentences: list[Sentence]


@operation("experiments.did", "POST", "/api/v1/experiments/did", right="read",
           summary="The effect of a treatment defined by an event (joining membership …) by difference-in-differences "
           "with matched controls, beside the naive before/after and member vs non-member comparisons")  # fmt: skip
def did(ctx: OpContext, req: DidRequest) -> DidReply:
    from userloop.experiment.did import difference_in_differences, explain

    spec = req.spec()
    found = difference_in_differences(ctx.store, spec, ctx.info.timezone)
    return DidReply(
        effect=Estimate.of(found.effect),
        relative=Estimate.of(found.relative),
        before_after=Estimate.of(found.before_after),
        members_vs_others=Estimate.of(found.members_vs_others),
        treated_mean=found.treated_mean,
        counterfactual_mean=found.counterfactual_mean,
        pre_treated=float(found.balance.treated),
        pre_controls=float(found.balance.controls),
        joiners=found.joiners,
        matched=found.matched,
        unmatched=found.unmatched,
        cohorts=found.cohorts,
        controls=found.controls,
        treated_days=found.treated_days,
        sentences=[Sentence(**s) for s in explain(found, spec)],
    )


class UpliftRequest(ProjectScoped):
    treatment: Treatment = Field(default=Treatment(event="coupon_received"), description="The randomized treatment.")
    outcome: Outcome = Field(default=Outcome(), description="The outcome over the horizon after each drop.")
    horizon_days: Annotated[int, Field(ge=1, le=60)] = 7
    eligible: tuple[Name, ...] = Field(default=("register",), max_length=4)
    features: tuple[Name, ...] = Field(default=("age_band", "channel", "$os", "gender", "push_enabled"),
                                       max_length=30)  # fmt: skip
    learner: Learner = "x"
    start: date | None = None
    end: date | None = None
    top_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    limit: Annotated[int, Field(ge=0, le=100_000)] = 10_000

    def spec(self) -> UpliftSpec:
        from userloop.experiment.uplift import UpliftSpec

        return UpliftSpec(**self.model_dump(exclude={"project", "top_share", "limit"}))


class CurvePoint(Strict):
    fraction: float
    qini: float
    uplift: float


class UpliftReply(Strict):
    """The held-out Qini curve and coefficient, what was learnt from, and the top-uplift people to target."""

    learner: Learner
    drops: int
    rows: int
    treated_share: float
    qini_coefficient: float
    curve: list[CurvePoint]
    scored: int
    top_count: int
    top: list[int] = Field(description="Person ids of the top share by predicted uplift, best first (up to limit).")


@operation("experiments.uplift", "POST", "/api/v1/experiments/uplift", right="read",
           summary="Who is persuadable: a T- or X-learner on a randomized treatment's drops, its Qini curve on "
           "held-out people, and the top-uplift people to target")  # fmt: skip
def uplift(ctx: OpContext, req: UpliftRequest) -> UpliftReply:
    from userloop.experiment.uplift import data_window, fit_uplift, top_uplift

    start, end = data_window(ctx.store, ctx.info.timezone, req.start, req.end)
    fit = fit_uplift(ctx.store, req.spec(), ctx.info.timezone, start, end)
    top = top_uplift(fit, req.top_share)
    c = fit.curves
    step = max(len(c.fraction) // 20, 1)
    return UpliftReply(
        learner=fit.learner,
        drops=fit.drops,
        rows=fit.rows,
        treated_share=fit.treated_share,
        qini_coefficient=c.coefficient,
        curve=[
            CurvePoint(fraction=float(c.fraction[k]), qini=float(c.qini[k]), uplift=float(c.uplift[k]))
            for k in range(step - 1, len(c.fraction), step)
        ],
        scored=len(fit.score),
        top_count=len(top),
        top=top[: req.limit],
    )
