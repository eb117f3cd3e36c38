"""Journeys (流程画布) as operations: save, check, read, change the lifecycle, and the statistics by node.

A journey's definition is JSON (:mod:`userloop.engage.journey`); it is checked as a whole and every error comes
back by node (``{node, field, message}``) so a canvas can mark the node at fault. ``journeys.validate`` never
fails for an invalid journey: it answers ``valid: false`` with the errors, and also checks the names the journey
uses against the project (channels, materials, benefits, segments). Starting a journey checks the names too: a
journey that would send through a channel that does not exist stays a draft. Saving and changing need ``admin``;
reading needs ``read``.

Lifecycle (:data:`userloop.engage.catalog.TRANSITIONS`): draft → running ⇄ paused → finished → archived; an action
from a state that does not allow it is ``journey_state`` (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from userloop.core.errors import UserloopError, ValidationError
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation

JourneyName = Annotated[str, Field(min_length=1, max_length=100, description="The journey's id or name.")]
Status = Literal["draft", "running", "paused", "finished", "archived"]


# replies ------------------------------------------------------------------------------------------------------
class JourneySummary(Strict):
    """A journey in a list."""

    id: int
    name: str
    status: Status
    version: int
    entry: str = Field(description="The entry's kind: event, segment, schedule, date or holiday.")
    nodes: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None


class Edge(Strict):
    """An edge of the canvas: from a node (``$entry`` for the entry) to a node, through a branch (``""`` for a
    plain next)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    source: str = Field(alias="from")
    to: str
    branch: str


class ShownJourney(JourneySummary):
    """A journey's current version: the definition and the canvas' edges derived from it."""

    description: str
    definition: dict[str, Any] = Field(description="The definition, as saved (every default filled in).")
    edges: list[Edge]
    redirected: int = Field(default=0, description="People moved by redirects (an edit of a journey that ran).")


class Problem(Strict):
    """One error of a definition: the node it is in (``$entry``, ``$who``, or ``""`` for the journey itself), the
    field and what is wrong."""

    node: str
    field: str
    message: str


class Checked(Strict):
    valid: bool
    errors: list[Problem]


class NodeStats(Strict):
    """What happened at one node: people who entered it, wait there now, moved on, exited, and by branch."""

    node: str
    kind: str
    entered: int
    waiting: int
    moved: int
    exited: int
    held: int = Field(description="People held in a control branch for the goal's window.")
    branches: dict[str, int] = Field(description="Branch name → people who took it.")


class MessageStats(Strict):
    """The messages (and other effects) of one node, by status, and the feedback they had."""

    node: str
    total: int = Field(description="Messages (and other effects) of the node, whatever their status.")
    statuses: dict[str, int] = Field(description="sent, failed, capped, quiet_dropped, suppressed, unreachable, "
                                     "unsubscribed, pending, done…")  # fmt: skip
    feedback: dict[str, int] = Field(default_factory=dict, description="Messages delivered, opened, clicked, "
                                     "failed after sending or unsubscribed from (from receipts, the pixel, tracked "
                                     "links and the unsubscribe link).")  # fmt: skip


class BranchConversion(Strict):
    """People who went through a branch and how many converted (the goal) within its window."""

    node: str
    branch: str
    control: bool = Field(description="The holdout branch of a random split (receives nothing).")
    entered: int
    converted: int
    rate: float | None


class JourneyStats(Strict):
    journey: str
    version: int
    status: Status
    entered: int
    converted: int
    nodes: list[NodeStats]
    messages: list[MessageStats]
    conversions: list[BranchConversion] = Field(description="Per branch, each control beside its split's others.")


# helpers ------------------------------------------------------------------------------------------------------
def _catalog(ctx: OpContext) -> Any:
    from userloop.engage.catalog import Journeys

    return Journeys(ctx.ws.meta, ctx.info)


def _ref(name: str) -> str | int:
    """A journey's id or name as the catalog reads it; digits that can name no row (too large, or not ASCII
    digits such as "²") are no journey, answered before they reach the database."""
    from userloop.core.errors import NotFoundError
    from userloop.ops.base import MAX_ROW_ID

    if name.isdigit() and not (name.isascii() and int(name) <= MAX_ROW_ID):
        raise NotFoundError(f"no journey {name!r}", code="unknown_journey")
    return name


def _summary(saved: Any) -> dict[str, Any]:
    return {
        "id": saved.id,
        "name": saved.name,
        "status": saved.status,
        "version": saved.version,
        "entry": saved.definition.entry.kind,
        "nodes": len(saved.definition.nodes),
        "created_at": saved.created_at,
        "updated_at": saved.updated_at,
        "started_at": saved.started_at,
    }


def _shown(saved: Any) -> ShownJourney:
    journey = saved.definition
    return ShownJourney.model_validate(
        {
            **_summary(saved),
            "description": journey.description,
            "definition": journey.model_dump(mode="json", by_alias=True),
            "edges": journey.edges(),
            "redirected": saved.redirected,
        }
    )


def null_characters(doc: Any, path: str = "") -> list[dict[str, str]]:
    """An error for each text of ``doc`` (keys included) holding a null character: no name or label needs one,
    and PostgreSQL's text cannot store it."""
    found: list[dict[str, str]] = []
    if isinstance(doc, str):
        if "\x00" in doc:
            found.append({"node": "", "field": path or "journey", "message": "text may not hold a null character"})
    elif isinstance(doc, dict):
        for k, v in doc.items():
            where = f"{path}.{k}" if path else str(k)
            found += null_characters(k, where) + null_characters(v, where)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += null_characters(v, f"{path}.{i}" if path else str(i))
    return found


def problems(ctx: OpContext, doc: Any) -> list[dict[str, str]]:
    """Every error of ``doc`` by node: its shape and graph first, then (when those hold) the names it uses."""
    from userloop.engage.assets import journey_references
    from userloop.engage.journey import Journey, validate

    errors = null_characters(doc) or validate(doc)
    if errors:
        return errors
    return journey_references(ctx.ws.meta, ctx.info, Journey.model_validate(doc))


def _refuse(errors: list[dict[str, str]]) -> None:
    if errors:
        listed = "; ".join(
            f"{e['node']}: {e['field']}: {e['message']}" if e["node"] else f"{e['field']}: {e['message']}"
            for e in errors
        )
        raise ValidationError(
            f"the journey has {len(errors)} error(s): {listed}", code="journey_invalid", field=errors[0]["field"]
        )


def _definition(doc: Any) -> None:
    """Refuse an invalid definition with every error by node (``journey_invalid``)."""
    from userloop.engage.journey import validate

    _refuse(null_characters(doc) or validate(doc))


# reading ------------------------------------------------------------------------------------------------------
@operation("journeys.list", "GET", "/api/v1/journeys", right="read",
           summary="Journeys with their status and version")  # fmt: skip
def list_journeys(ctx: OpContext, req: ProjectScoped) -> list[JourneySummary]:
    """Every journey of the project, oldest first."""
    return [JourneySummary.model_validate(_summary(s)) for s in _catalog(ctx).list()]


class JourneyRef(ProjectScoped):
    journey: JourneyName


@operation("journeys.show", "GET", "/api/v1/journeys/{journey}", right="read",
           summary="A journey: definition, canvas edges, status and version")  # fmt: skip
def show_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """A journey by id or name: its current version's definition and the canvas' edges."""
    return _shown(_catalog(ctx).get(_ref(req.journey)))


@operation("journeys.stats", "GET", "/api/v1/journeys/{journey}/stats", right="read",
           summary="A journey's counts by node, messages by status, conversions by branch")  # fmt: skip
def journey_stats(ctx: OpContext, req: JourneyRef) -> JourneyStats:
    """Per node: entered, waiting, moved, exited and branches taken; per node the messages by status; per branch
    the people and conversions, a split's control branch beside its other branches."""
    from userloop.engage.journey import RandomSplit, Split, StrategySet, successors

    catalog = _catalog(ctx)
    saved = catalog.get(_ref(req.journey))
    raw = catalog.stats(saved.id)
    journey = saved.definition
    kinds = {n.id: n.kind for n in journey.nodes}
    order = {n.id: i for i, n in enumerate(journey.nodes)}
    nodes = []
    for node in sorted(raw["nodes"], key=lambda n: (order.get(n, len(order)), n)):
        counts = raw["nodes"][node]
        branches = {k.removeprefix("branch:"): v for k, v in counts.items() if k.startswith("branch:")}
        nodes.append(NodeStats(node=node, kind=kinds.get(node, "?"), entered=counts.get("entered", 0),
                               waiting=counts.get("waiting", 0), moved=counts.get("moved", 0),
                               exited=counts.get("exited", 0), held=counts.get("held", 0),
                               branches=branches))  # fmt: skip
    messages = []
    received = raw.get("feedback", {})
    for node in sorted(set(raw["messages"]) | set(received), key=lambda n: (order.get(n, len(order)), n)):
        statuses = dict(raw["messages"].get(node, {}))
        feedback = dict(received.get(node, {}))
        messages.append(MessageStats(node=node, total=sum(statuses.values()), statuses=statuses, feedback=feedback))
    controls = {(n.id, b.name) for n in journey.nodes if isinstance(n, RandomSplit) for b in n.branches if b.control}
    steps: dict[str, dict[str, int]] = {}
    for n in journey.nodes:  # every branch of every split, so a control with nobody yet still shows
        if isinstance(n, RandomSplit | Split | StrategySet):
            for branch, _ in successors(n):
                steps[f"{n.id}:{branch}"] = {"entered": 0, "converted": 0}
    steps.update(raw["branches"])
    conversions = []
    for step, counts in steps.items():
        node, _, branch = step.partition(":")
        entered, converted = counts["entered"], counts["converted"]
        conversions.append(BranchConversion(node=node, branch=branch, control=(node, branch) in controls,
                                            entered=entered, converted=converted,
                                            rate=converted / entered if entered else None))  # fmt: skip
    conversions.sort(key=lambda c: (order.get(c.node, len(order)), c.node, c.control, c.branch))
    return JourneyStats(journey=raw["journey"], version=raw["version"], status=raw["status"], entered=raw["entered"],
                        converted=raw["converted"], nodes=nodes, messages=messages,
                        conversions=conversions)  # fmt: skip


# checking and saving ------------------------------------------------------------------------------------------
class Definition(ProjectScoped):
    definition: dict[str, Any] = Field(description="The journey definition (see docs/journeys.md).")


@operation("journeys.validate", "POST", "/api/v1/journeys/validate", right="read",
           summary="Check a journey definition: every error by node")  # fmt: skip
def validate_journey(ctx: OpContext, req: Definition) -> Checked:
    """Check a definition without saving it: its shape, its graph (pointers, reachability, cycles), then the
    names it uses (channels, materials, benefits, segments). An invalid journey is an answer, not an error."""
    errors = problems(ctx, req.definition)
    return Checked(valid=not errors, errors=[Problem.model_validate(e) for e in errors])


@operation("journeys.create", "POST", "/api/v1/journeys", right="operate", status=201,
           summary="Save a new journey (a draft)")  # fmt: skip
def create_journey(ctx: OpContext, req: Definition) -> ShownJourney:
    """Save a journey as a draft; an invalid definition is ``journey_invalid`` listing every error by node. The
    names it uses are checked when it starts (a draft may be written before its channels)."""
    _definition(req.definition)
    return _shown(_catalog(ctx).create(req.definition))


class Edit(ProjectScoped):
    journey: JourneyName
    definition: dict[str, Any] = Field(description="The new definition.")
    redirects: dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=40)]] = Field(
        default_factory=dict, max_length=200,
        description="Removed node → node of the new version, for the people waiting at a removed node.",
    )  # fmt: skip


@operation("journeys.update", "PUT", "/api/v1/journeys/{journey}", right="operate",
           summary="Change a journey (a new version once it has run)")  # fmt: skip
def update_journey(ctx: OpContext, req: Edit) -> ShownJourney:
    """Replace a draft's definition, or make a new version of a journey that has run: the people inside finish on
    the version they entered, except those waiting at a node named in ``redirects``, who move to the new one."""
    _definition(req.definition)
    return _shown(_catalog(ctx).update(_ref(req.journey), req.definition, dict(req.redirects)))


def _transition(ctx: OpContext, req: JourneyRef, action: str) -> ShownJourney:
    catalog = _catalog(ctx)
    if action == "start":
        from userloop.engage.assets import journey_references

        saved = catalog.get(_ref(req.journey))
        if saved.status == "draft":
            _refuse(journey_references(ctx.ws.meta, ctx.info, saved.definition))
    return _shown(catalog.transition(_ref(req.journey), action))


@operation("journeys.start", "POST", "/api/v1/journeys/{journey}/start", right="operate", inputs="query",
           summary="Start a draft journey (its names are checked first)")  # fmt: skip
def start_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """Start a draft: people enter from now on. A journey naming a channel, material, benefit or segment the
    project lacks is ``journey_invalid`` and stays a draft."""
    return _transition(ctx, req, "start")


@operation("journeys.pause", "POST", "/api/v1/journeys/{journey}/pause", right="operate", inputs="query",
           summary="Pause a running journey")  # fmt: skip
def pause_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """Pause a running journey: nobody enters or moves until it resumes."""
    return _transition(ctx, req, "pause")


@operation("journeys.resume", "POST", "/api/v1/journeys/{journey}/resume", right="operate", inputs="query",
           summary="Resume a paused journey")  # fmt: skip
def resume_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """Resume a paused journey: people due while it was paused move on."""
    return _transition(ctx, req, "resume")


@operation("journeys.finish", "POST", "/api/v1/journeys/{journey}/finish", right="operate", inputs="query",
           summary="Finish a journey (nobody enters or moves again)")  # fmt: skip
def finish_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """Finish a running or paused journey: it stops for good; its statistics stay."""
    return _transition(ctx, req, "finish")


@operation("journeys.archive", "POST", "/api/v1/journeys/{journey}/archive", right="operate", inputs="query",
           summary="Archive a draft, paused or finished journey")  # fmt: skip
def archive_journey(ctx: OpContext, req: JourneyRef) -> ShownJourney:
    """Archive a journey: read-only from then on."""
    return _transition(ctx, req, "archive")


# preview --------------------------------------------------------------------------------------------------------
class PreviewJourney(JourneyRef):
    person: int = Field(ge=0, le=2**63 - 1, description="The person key whose first step is shown.")
    at: datetime | None = Field(default=None, description="When they would enter (UTC; default now).")


class PreviewStep(Strict):
    node: str
    outcome: str


class PreviewEffect(Strict):
    node: str
    kind: str
    at: datetime
    channel: str | None = None
    rendered: dict[str, Any] | None = Field(default=None, description="The message as this person would get it.")


class JourneyPreview(Strict):
    """What would happen to one person entering now: the nodes passed, the effects, and where they would wait (or
    why they would leave), decided by the same interpreter the runtime uses, with their facts loaded as it loads
    them. Nothing is written, nothing is sent."""

    journey: str
    version: int
    person: int
    refused: str | None = Field(description="Why the person may not enter (the 'who' filter, re-entry), if so.")
    steps: list[PreviewStep]
    effects: list[PreviewEffect]
    waiting_at: str | None
    wake_at: datetime | None
    waits_for: str | None
    exit_reason: str | None
    warnings: list[str]


@operation("journeys.preview", "POST", "/api/v1/journeys/{journey}/preview", right="read",
           summary="What a journey would do for one person entering now (nothing is written or sent)")  # fmt: skip
def preview_journey(ctx: OpContext, req: PreviewJourney) -> JourneyPreview:
    from userloop.core.clock import utcnow
    from userloop.engage import interpreter as interp
    from userloop.engage.facts import load_facts, needs_of
    from userloop.engage.journey import Send
    from userloop.engage.runtime import Stepper
    from userloop.engage.settings import load as load_settings
    from userloop.ops.engage_assets import Preview, Scope, preview_template

    saved = _catalog(ctx).get(_ref(req.journey))
    at = utcnow() if req.at is None else req.at.astimezone(UTC).replace(tzinfo=None) if req.at.tzinfo else req.at
    settings = load_settings(ctx.ws.meta, ctx.info.id)
    loaded = load_facts(ctx.store, ctx.ws.meta, ctx.info, [req.person], needs_of(saved.definition), at=at,
                        zone_property=settings.zone_property)  # fmt: skip
    facts = loaded[req.person]
    stepper = Stepper(ctx.ws.meta, ctx.info, _NoFacts())
    with ctx.ws.meta.engine.connect() as conn:
        past = stepper._history(conn, saved.id, [req.person]).get(req.person)
    refused = stepper._refusal(saved.definition, past, facts, at)
    outcome = interp.enter(saved.definition, f"journey:{saved.id}", facts, at)
    effects = []
    warnings = list(loaded.warnings)
    for e in outcome.effects:
        rendered = None
        channel = None
        if isinstance(e.spec, Send):
            channel = e.spec.channel
            try:
                scope = Scope(benefit=_sample_benefit(ctx, e.spec.benefit, at), journey={"name": saved.name},
                              links={"unsubscribe": "(unsubscribe link)"})  # fmt: skip
                shown = preview_template(
                    ctx, Preview(project=ctx.info.name, name=e.spec.material, person=req.person, scope=scope)
                )
                rendered = shown.model_dump()
            except UserloopError as exc:  # a material missing or failing is shown, not raised: the preview goes on
                warnings.append(f"node {e.node}: {exc}")
        effects.append(PreviewEffect(node=e.node, kind=e.kind, at=e.at, channel=channel, rendered=rendered))
    return JourneyPreview(
        journey=saved.name,
        version=saved.version,
        person=req.person,
        refused=refused,
        steps=[PreviewStep(node=n, outcome=o) for n, o in outcome.trail],
        effects=effects,
        waiting_at=outcome.position.node if outcome.position is not None else None,
        wake_at=outcome.wake_at,
        waits_for=outcome.waits_for.event if outcome.waits_for is not None else None,
        exit_reason=outcome.exit_reason,
        warnings=warnings,
    )


class _NoFacts:
    """The preview's stepper reads history only; its facts come from the preview itself."""

    def load(self, persons: Any, props: Any, journey: Any, at: Any) -> dict[int, Any]:
        return {}


def _sample_benefit(ctx: OpContext, name: str | None, at: datetime) -> dict[str, Any]:
    """The benefit as a message shows it, with a placeholder code (a preview grants nothing)."""
    if name is None:
        return {}
    from datetime import timedelta

    from sqlalchemy import select

    from userloop.benefits import BenefitRow

    with ctx.ws.meta.session() as s:
        row = s.scalar(select(BenefitRow).where(BenefitRow.project_id == ctx.info.id, BenefitRow.name == name))
    if row is None:
        return {}
    return {"name": name, "amount": row.amount, "threshold": row.threshold, "code": "PREVIEW0000",
            "valid_until": at + timedelta(days=row.valid_days)}  # fmt: skip
