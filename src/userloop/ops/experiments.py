"""Experiments (效果回归, DOMAIN §8) as operations: the plan before launch, the report after it, for a journey or
for a standalone experiment run elsewhere, and the list of standalone experiments seen.

- ``experiments.plan``: reach per channel under the delivery rules, the goal's baseline, power and the minimum
  detectable effect for a split, and an expected effect when one is given or rehearsed (``rehearse``: the
  rehearsal's relative conversion lift, said so in the first sentence; that needs ``write``, as below)
  (:mod:`userloop.experiment.plan`);
- ``experiments.rehearse``: a journey played on a small simulated business, per arm what was measured beside the
  simulator's true effect (:mod:`userloop.experiment.rehearsal_run`); it builds a scratch workspace under the
  workspace's ``tmp`` directory (removed afterwards), so it needs ``write``;
- ``experiments.journey_report``: a journey, its branches, nodes and strategy sets against their controls
  (:mod:`userloop.experiment.report`); it writes the journey's missing ``$experiment_exposure`` events first
  (derived from its runs, exactly once), so it is a POST that needs the event store open for writing;
- ``experiments.report``: a standalone experiment known by its exposure events and variant property;
- ``experiments.list``: the standalone experiments exposed so far, with their variants and people.

Reading needs ``read``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field

from userloop.core.clock import utcnow
from userloop.core.errors import UserloopError, ValidationError
from userloop.experiment.plan_types import PlanInput, PlanReport, Sentence
from userloop.experiment.rehearsal_types import RehearsalInput, RehearsalReport
from userloop.experiment.report_types import Report
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation
from userloop.query.spec import Filter

EventName = Annotated[str, Field(min_length=1, max_length=100)]


def _naive_utc(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def _scratch(ctx: OpContext, what: str) -> Path:
    """The workspace's own scratch directory, where a rehearsal builds its throw-away workspace. It takes seconds of
    the server's CPU and disk, so it needs ``operate`` (not ``write``, which event-sending keys hold)."""
    if "operate" not in ctx.access.rights:
        raise UserloopError(f"{what} builds a scratch workspace: it needs the operate right", code="forbidden")
    return ctx.ws.path / "tmp"


class PlanRequest(ProjectScoped, PlanInput):
    as_of: datetime | None = Field(default=None, description="The launch instant (default now); UTC if no zone.")
    rehearse: RehearsalInput | None = Field(
        default=None, description="Rehearse this journey on a simulated business and take its estimated relative "
        "conversion lift as the expected effect (instead of expected_effect; needs admin)."
    )  # fmt: skip


@operation("experiments.plan", "POST", "/api/v1/experiments/plan", right="read",
           summary="Before launch: reach per channel, the goal's baseline, power, minimum detectable effect and "
           "duration for a split, and an expected effect (given, or from a rehearsal)")  # fmt: skip
def plan_experiment(ctx: OpContext, req: PlanRequest) -> PlanReport:
    from userloop.experiment.plan import plan

    spec = PlanInput.model_validate(req.model_dump(include=set(PlanInput.model_fields)))
    if req.rehearse is None:
        return plan(ctx.ws.meta, ctx.info, ctx.store, spec, _naive_utc(req.as_of))
    from userloop.experiment.rehearsal_run import expected_effect, run, source_sentence

    if req.expected_effect is not None:
        raise ValidationError("give an expected effect or a rehearsal to take it from, not both", field="rehearse")
    rehearsal = run(req.rehearse, _scratch(ctx, "a plan with a rehearsal"))
    effect = expected_effect(rehearsal)
    spec = spec.model_copy(update={"expected_effect": effect.relative})
    found = plan(ctx.ws.meta, ctx.info, ctx.store, spec, _naive_utc(req.as_of))
    source = Sentence.model_validate(source_sentence(effect, rehearsal).model_dump())
    return found.model_copy(update={"sentences": [source, *found.sentences]})


class RehearseRequest(ProjectScoped, RehearsalInput):
    pass


@operation("experiments.rehearse", "POST", "/api/v1/experiments/rehearse", right="operate",
           summary="Rehearse a journey on a simulated business: per arm what was measured (effects with 95% and "
           "sequential intervals, sample ratio) beside the simulator's true effect")  # fmt: skip
def rehearse_journey(ctx: OpContext, req: RehearseRequest) -> RehearsalReport:
    from userloop.experiment.rehearsal_run import run

    spec = RehearsalInput.model_validate(req.model_dump(include=set(RehearsalInput.model_fields)))
    return run(spec, _scratch(ctx, "a rehearsal"))


class JourneyReportRequest(ProjectScoped):
    journey: Annotated[str, Field(min_length=1, max_length=100, description="The journey's id or name.")]
    as_of: datetime | None = Field(default=None, description="The instant reported (default now); UTC if no zone.")


@operation("experiments.journey_report", "POST", "/api/v1/experiments/journeys/{journey}/report", right="read",
           inputs="query", store_writes=True,
           summary="After launch: a journey, its branches, nodes and strategy sets against their controls, with "
           "uplift, guardrails, sample ratio and return on benefits")  # fmt: skip
def journey_report(ctx: OpContext, req: JourneyReportRequest) -> Report:
    from userloop.engage.catalog import Journeys
    from userloop.experiment.report import journey_report as build
    from userloop.ops.journeys import _ref

    saved = Journeys(ctx.ws.meta, ctx.info).get(_ref(req.journey))
    return build(ctx.ws.meta, ctx.info, ctx.store, saved.id, saved.definition, _naive_utc(req.as_of))


class StandaloneRequest(ProjectScoped):
    name: EventName = Field(description="The experiment's name, as its exposure events carry it.")
    exposure_event: EventName = Field(default="$experiment_exposure", description="The event that exposes a person.")
    experiment_property: EventName | None = Field(
        default="experiment", description="The exposure's property naming the experiment (None: every exposure)."
    )
    variant_property: EventName = Field(default="variant", description="The exposure's property naming the arm.")
    control: EventName = Field(default="control", description="The arm the others are compared with.")
    weights: dict[EventName, Annotated[float, Field(gt=0)]] | None = Field(
        default=None, description="Planned shares by arm, for the sample ratio check (equal when left out)."
    )
    goal: EventName = Field(description="The goal event.")
    goal_filters: list[Filter] = Field(default_factory=list, max_length=20)
    window_days: Annotated[int, Field(ge=1, le=366)] = Field(default=7, description="The goal's window after exposure.")
    as_of: datetime | None = Field(default=None, description="The instant reported (default now); UTC if no zone.")


@operation("experiments.report", "POST", "/api/v1/experiments/report", right="read",
           summary="After launch: a standalone experiment (exposure event and variant property) against its "
           "control, with uplift, guardrails, sample ratio and return on benefits")  # fmt: skip
def standalone_report(ctx: OpContext, req: StandaloneRequest) -> Report:
    from userloop.experiment.assignment import Standalone
    from userloop.experiment.report import standalone_report as build

    experiment = Standalone(name=req.name, exposure_event=req.exposure_event,
                            experiment_property=req.experiment_property, variant_property=req.variant_property,
                            control=req.control, weights=req.weights)  # fmt: skip
    return build(ctx.ws.meta, ctx.info, ctx.store, experiment, req.goal, req.window_days * 86_400,
                 _naive_utc(req.as_of), goal_filters=req.goal_filters)  # fmt: skip


class VariantSeen(Strict):
    variant: str
    people: int


class ExperimentSeen(Strict):
    """A standalone experiment exposed so far: its arms and people, and when exposures began and last came."""

    name: str
    variants: list[VariantSeen]
    first_exposure: datetime
    last_exposure: datetime


@operation("experiments.list", "GET", "/api/v1/experiments", right="read",
           summary="Standalone experiments exposed so far, with their variants and people")  # fmt: skip
def list_experiments(ctx: OpContext, req: ProjectScoped) -> list[ExperimentSeen]:
    from userloop.experiment.report import standalone_experiments

    return [
        ExperimentSeen(
            name=name,
            variants=[VariantSeen(variant=v, people=n) for v, n in variants],
            first_exposure=first,
            last_exposure=last,
        )
        for name, variants, first, last in standalone_experiments(ctx.store)
    ]
