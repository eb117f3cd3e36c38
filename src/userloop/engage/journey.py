"""Journey definitions (流程画布): what a journey is, as data, validated before it is saved.

A journey is an entry (who comes in, and when), a set of nodes, and the pointers between them: each node names the
node that follows it (``next``), and the branching nodes name one per branch. The canvas's edges are derived from
the pointers (:meth:`Journey.edges`), so a definition cannot hold an edge that leads nowhere or two edges out of a
plain step. The graph is acyclic: a person moves forward only, and every path ends at an exit (a missing ``next``
is an exit).

The shape follows PostHog Workflows' typed actions and branches and Braze Canvas' journey-level conversion goal
(see ``research/act-and-measure.md`` §1.2, §1.5); the seeds' strategy sets (策略集合 → 子策略, DOMAIN §7) are a node
of their own. Everything a step needs at run time is in the definition, and a running person keeps the version
they entered (:mod:`userloop.engage.interpreter`).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from userloop.core.errors import ValidationError
from userloop.query.spec import Filter

NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
NodeId = Annotated[str, Field(min_length=1, max_length=40, pattern=NODE_ID.pattern)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Seconds = Annotated[int, Field(ge=0, le=366 * 86400)]
#: The longest a journey may keep a person waiting at one node: a year and a day.
MAX_WAIT_SECONDS = 366 * 86400
MAX_NODES = 200
MAX_BRANCHES = 20
CompareOp = Literal["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "is_set", "is_not_set", "contains"]
Zone = Literal["person", "project"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Scalar = str | float | bool


class Part(BaseModel):
    """Every piece of a definition: unknown fields refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# conditions on a person --------------------------------------------------------------------------------------
class PropertyIs(Part):
    """A profile property compared with a value."""

    kind: Literal["property"] = "property"
    property: Name
    op: CompareOp = "eq"
    value: Scalar | list[Scalar] | None = None


class TagIs(Part):
    """A tag's value compared with a value (``is_set``: the person has the tag)."""

    kind: Literal["tag"] = "tag"
    tag: Name
    op: CompareOp = "eq"
    value: Scalar | list[Scalar] | None = None


class InSegment(Part):
    """Membership of a saved segment (人群), as of its last refresh."""

    kind: Literal["segment"] = "segment"
    segment: Annotated[int, Field(ge=1)]
    member: bool = True


class ModelIs(Part):
    """A user model's output: RFM class, lifecycle stage, churn tier or CLV."""

    kind: Literal["model"] = "model"
    model: Literal["rfm_class", "lifecycle", "churn_tier", "churn_probability", "clv"]
    op: CompareOp = "eq"
    value: Scalar | list[Scalar] | None = None


class MemberIs(Part):
    """A fact of the person's membership of a member programme (会员体系, DOMAIN §9), as the programme holds it
    now: ``member`` (joined and not left: true/false), ``level`` (the level's number, 0 the base level) or
    ``points`` (the spendable balance of ``wallet``; 0 for a member who never earned)."""

    kind: Literal["member"] = "member"
    programme: Name
    field: Literal["member", "level", "points"] = "level"
    wallet: Annotated[str, Field(min_length=1, max_length=40)] = "points"
    op: CompareOp = "eq"
    value: Scalar | list[Scalar] | None = None


Condition = Annotated[PropertyIs | TagIs | InSegment | ModelIs | MemberIs, Field(discriminator="kind")]


class AllOf(Part):
    """Every condition holds (an empty list always holds)."""

    all: list[Condition] = Field(default_factory=list, max_length=50)


# entries -----------------------------------------------------------------------------------------------------
class Reentry(Part):
    """Whether a person who came in once may come in again: ``never``; ``after_exit`` (once the last run ended);
    ``cooldown`` (once the last run ended and ``cooldown_seconds`` have passed since the last entry). Nobody is in
    a journey twice at once. ``max_entries`` caps the entries per person."""

    mode: Literal["never", "after_exit", "cooldown"] = "never"
    cooldown_seconds: Seconds = 0
    max_entries: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _cooldown(self) -> Reentry:
        if self.mode == "cooldown" and self.cooldown_seconds <= 0:
            raise ValueError("re-entry 'cooldown' needs cooldown_seconds > 0")
        return self


class Unless(Part):
    """Enter only if ``event`` does not follow within ``within_seconds`` ("added to cart and did not pay within 1
    hour"): the person is held at the door for the window and enters when it closes without the event."""

    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    within_seconds: Annotated[int, Field(ge=1, le=MAX_WAIT_SECONDS)]


class EventEntry(Part):
    """Enter when the person does ``event`` (with property filters), optionally unless a second event follows."""

    kind: Literal["event"] = "event"
    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    unless: Unless | None = None


class SegmentEntry(Part):
    """Enter when the person joins a segment (at its refresh); ``exit_on_leave`` takes them out when they leave."""

    kind: Literal["segment"] = "segment"
    segment: Annotated[int, Field(ge=1)]
    exit_on_leave: bool = False


class ScheduleEntry(Part):
    """Everyone in ``segment`` (everyone when None) enters at a time: once at ``at`` (project-local date and time),
    or every day / week (``weekdays``) at ``time_of_day`` in the project's zone or in each person's zone."""

    kind: Literal["schedule"] = "schedule"
    segment: Annotated[int, Field(ge=1)] | None = None
    once_at: datetime | None = None
    every: Literal["day", "week"] | None = None
    time_of_day: time = time(10, 0)
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    zone: Zone = "project"

    @model_validator(mode="after")
    def _one_form(self) -> ScheduleEntry:
        if (self.once_at is None) == (self.every is None):
            raise ValueError("give either once_at (one broadcast) or every (day or week)")
        if self.every == "week" and not self.weekdays:
            raise ValueError("a weekly schedule needs weekdays")
        if self.once_at is not None and self.once_at.tzinfo is not None:
            raise ValueError("once_at is a local date and time in the project's zone, without an offset")
        return self


class DateEntry(Part):
    """Enter on a date held in a profile property (a birthday), ``offset_days`` before (negative) or after it, at
    ``time_of_day`` in the person's zone; ``annual`` repeats every year on the month and day."""

    kind: Literal["date"] = "date"
    property: Name
    offset_days: Annotated[int, Field(ge=-366, le=366)] = 0
    time_of_day: time = time(10, 0)
    annual: bool = True
    segment: Annotated[int, Field(ge=1)] | None = None


class HolidayEntry(Part):
    """Enter on public holidays and shopping festivals (``calendar``), ``offset_days`` around them, at
    ``time_of_day`` in the project's zone. Chinese public holidays come from the ``chinese_calendar`` package
    (maintained from the State Council's notices); festivals are fixed dates (618, 双11, 双12, 520)."""

    kind: Literal["holiday"] = "holiday"
    calendar: list[str] = Field(min_length=1, max_length=30)
    offset_days: Annotated[int, Field(ge=-30, le=30)] = 0
    time_of_day: time = time(10, 0)
    segment: Annotated[int, Field(ge=1)] | None = None


Entry = Annotated[EventEntry | SegmentEntry | ScheduleEntry | DateEntry | HolidayEntry, Field(discriminator="kind")]


# nodes -------------------------------------------------------------------------------------------------------
class NodeBase(Part):
    id: NodeId
    label: Annotated[str, Field(max_length=200)] = ""


class Wait(NodeBase):
    """Wait a fixed time (``seconds``); or until a local time of day (``until_time``, on ``weekdays`` when given);
    or until a date property ± ``offset_seconds`` (a date already past moves on at once)."""

    kind: Literal["wait"] = "wait"
    seconds: Seconds | None = None
    until_time: time | None = None
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    until_property: Name | None = None
    offset_seconds: Annotated[int, Field(ge=-MAX_WAIT_SECONDS, le=MAX_WAIT_SECONDS)] = 0
    zone: Zone = "person"
    next: NodeId | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Wait:
        forms = [self.seconds is not None, self.until_time is not None, self.until_property is not None]
        if sum(forms) != 1:
            raise ValueError("a wait needs exactly one of seconds, until_time, until_property")
        if self.weekdays and self.until_time is None:
            raise ValueError("weekdays go with until_time")
        return self


class WaitEvent(NodeBase):
    """Wait for the person to do ``event`` (with filters): go to ``next`` when they do, to ``timeout_next`` when
    ``timeout_seconds`` pass first. The window is half-open: an event exactly at the timeout is too late."""

    kind: Literal["wait_event"] = "wait_event"
    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_WAIT_SECONDS)]
    next: NodeId | None = None
    timeout_next: NodeId | None = None


class Branch(Part):
    name: Name
    when: AllOf = Field(default_factory=AllOf)
    next: NodeId | None = None


class Split(NodeBase):
    """A condition split: the first branch whose conditions hold; ``otherwise`` when none does."""

    kind: Literal["condition"] = "condition"
    branches: list[Branch] = Field(min_length=1, max_length=MAX_BRANCHES)
    otherwise: NodeId | None = None


class Share(Part):
    name: Name
    percent: Annotated[float, Field(ge=0, le=100)]
    control: bool = False
    next: NodeId | None = None


class RandomSplit(NodeBase):
    """A random split into named branches by percentages (summing to 100), decided by a hash of the journey, the
    node and the person, so a person always lands in the same branch. A ``control`` branch receives nothing: the
    holdout that measures what the other branches did."""

    kind: Literal["split"] = "split"
    branches: list[Share] = Field(min_length=2, max_length=MAX_BRANCHES)

    @field_validator("branches")
    @classmethod
    def _sum(cls, branches: list[Share]) -> list[Share]:
        total = sum(b.percent for b in branches)
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"the branches' percentages add up to {total:g}, not 100")
        for b in branches:
            if b.control and b.next is not None:
                raise ValueError(f"the control branch {b.name!r} receives nothing, so it has no next node")
        return branches


class Strategy(Part):
    """A sub-strategy (子策略): its audience within the set and where it goes."""

    name: Name
    when: AllOf = Field(default_factory=AllOf)
    next: NodeId | None = None


class StrategySet(NodeBase):
    """A strategy set (策略集合): sub-strategies in priority order, each for its own audience; a person takes the
    first whose audience they are in, or ``otherwise``. Each sub-strategy leads to its own timing, channel,
    benefit and material, and may split again for an A/B test."""

    kind: Literal["strategy"] = "strategy"
    strategies: list[Strategy] = Field(min_length=1, max_length=MAX_BRANCHES)
    otherwise: NodeId | None = None


class Send(NodeBase):
    """Send a message on ``channel`` with ``material`` (a saved template's name), optionally with a benefit.
    ``fallback`` channels are tried in order when the person cannot be reached on the first (no address,
    unsubscribed, push disabled). Marketing messages obey the caps, quiet hours and the global control group;
    transactional ones do not."""

    kind: Literal["send"] = "send"
    channel: Name
    material: Name
    benefit: Name | None = None
    category: Literal["marketing", "transactional"] = "marketing"
    fallback: list[Name] = Field(default_factory=list, max_length=5)
    next: NodeId | None = None


class Grant(NodeBase):
    """Grant a benefit (a coupon from its stock) without a message."""

    kind: Literal["grant"] = "grant"
    benefit: Name
    next: NodeId | None = None


class Points(NodeBase):
    """Grant member points (积分): ``amount`` into the person's ``wallet`` of ``programme``, with the wallet's expiry
    and pending rules, exactly once per passage (the outbox key is the ledger's request id). A person who is not
    a member of the programme is skipped (``not_member``) unless ``join`` makes them one first."""

    kind: Literal["points"] = "points"
    programme: Name
    wallet: Annotated[str, Field(min_length=1, max_length=40)] = "points"
    amount: Annotated[int, Field(ge=1, le=10**9)]
    reason: Annotated[str, Field(max_length=200)] = ""
    join: bool = False
    next: NodeId | None = None


class Update(NodeBase):
    """Set profile properties on the person (written as a profile record, like an SDK's ``profile_set``)."""

    kind: Literal["update"] = "update"
    set: dict[Name, Scalar] = Field(min_length=1, max_length=50)
    next: NodeId | None = None


class Webhook(NodeBase):
    """Call a URL with the person's id and the journey's context (signed, with an idempotency key)."""

    kind: Literal["webhook"] = "webhook"
    url: Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\s]+$")]
    next: NodeId | None = None


class Exit(NodeBase):
    kind: Literal["exit"] = "exit"


Node = Annotated[
    Wait | WaitEvent | Split | RandomSplit | StrategySet | Send | Grant | Points | Update | Webhook | Exit,
    Field(discriminator="kind"),
]
WAITING_KINDS = ("wait", "wait_event")
EFFECT_KINDS = ("send", "grant", "points", "update", "webhook")


class Goal(Part):
    """The journey's conversion: ``event`` within ``within_seconds`` of entry; ``exit`` takes a converted person
    out of the journey wherever they are."""

    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    within_seconds: Annotated[int, Field(ge=1, le=MAX_WAIT_SECONDS)]
    exit: bool = True


class Journey(Part):
    """A journey version's whole definition."""

    name: Name
    description: Annotated[str, Field(max_length=2000)] = ""
    entry: Entry
    start: NodeId
    nodes: list[Node] = Field(min_length=1, max_length=MAX_NODES)
    goal: Goal | None = None
    reentry: Reentry = Field(default_factory=Reentry)
    who: AllOf = Field(default_factory=AllOf)
    ends_at: date | None = None

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    def edges(self) -> list[dict[str, str]]:
        """The canvas's edges, from each node's pointers: ``{"from", "to", "branch"}``."""
        out = [{"from": "$entry", "to": self.start, "branch": ""}]
        for n in self.nodes:
            for branch, target in successors(n):
                if target is not None:
                    out.append({"from": n.id, "to": target, "branch": branch})
        return out

    @model_validator(mode="after")
    def _graph(self) -> Journey:
        problems = graph_problems(self)
        if problems:
            raise ValueError("; ".join(f"node {node!r}: {why}" for node, why in problems))
        return self


def successors(node: Node) -> list[tuple[str, str | None]]:
    """The node's outgoing pointers with their branch names (``""`` for a plain ``next``)."""
    match node:
        case WaitEvent():
            return [("event", node.next), ("timeout", node.timeout_next)]
        case Split():
            return [*((b.name, b.next) for b in node.branches), ("otherwise", node.otherwise)]
        case StrategySet():
            return [*((s.name, s.next) for s in node.strategies), ("otherwise", node.otherwise)]
        case RandomSplit():
            return [(b.name, b.next) for b in node.branches]
        case Exit():
            return []
        case _:
            return [("", node.next)]


def graph_problems(journey: Journey) -> list[tuple[str, str]]:
    """Every problem of the graph, by node: duplicate ids, pointers to no node, branch names used twice, nodes
    no path reaches, and cycles."""
    problems: list[tuple[str, str]] = []
    ids: dict[str, Node] = {}
    for n in journey.nodes:
        if n.id in ids:
            problems.append((n.id, "the id is used by two nodes"))
        ids[n.id] = n
    if journey.start not in ids:
        problems.append(("$entry", f"start points to {journey.start!r}, which is not a node"))
    for n in journey.nodes:
        names = [b for b, _ in successors(n) if b]
        if len(names) != len(set(names)):
            problems.append((n.id, "two branches have the same name"))
        for branch, target in successors(n):
            if target is not None and target not in ids:
                where = f"branch {branch!r}" if branch else "next"
                problems.append((n.id, f"{where} points to {target!r}, which is not a node"))
            if target == n.id:
                problems.append((n.id, "a node cannot lead to itself"))
    if problems:
        return problems
    # reachability and cycles: depth-first from the start, colouring nodes
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node_id: str) -> None:
        state[node_id] = 1
        for _, target in successors(ids[node_id]):
            if target is None:
                continue
            if state.get(target) == 1 and not cycle:
                cycle.append(target)
            elif target not in state:
                visit(target)
        state[node_id] = 2

    visit(journey.start)
    if cycle:
        problems.append((cycle[0], "the graph has a cycle through this node; a journey only moves forward"))
    for n in journey.nodes:
        if n.id not in state:
            problems.append((n.id, "no path from the start reaches this node"))
    return problems


def parse(doc: Any) -> Journey:
    """A definition from JSON data, or a ``journey_invalid`` error that lists every problem by node."""
    try:
        return Journey.model_validate(doc)
    except PydanticValidationError as exc:
        errors = explain(exc, doc)
        first = errors[0]
        message = "; ".join(f"{e['node']}: {e['message']}" if e["node"] else e["message"] for e in errors[:10])
        raise ValidationError(
            f"the journey has {len(errors)} error(s): {message}", code="journey_invalid", field=first["field"]
        ) from exc


def explain(exc: PydanticValidationError, doc: Any) -> list[dict[str, str]]:
    """Pydantic's errors as ``{node, field, message}``: the node id the error is inside, when it is in one."""
    out: list[dict[str, str]] = []
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        node = ""
        if len(loc) >= 2 and loc[0] == "nodes" and loc[1].isdigit() and isinstance(nodes, list):
            i = int(loc[1])
            raw = nodes[i] if i < len(nodes) else None
            node = str(raw.get("id", f"#{i}")) if isinstance(raw, dict) else f"#{i}"
            loc = loc[2:]
            if loc and loc[0] in _NODE_KINDS:  # the discriminator's branch name, not a field
                loc = loc[1:]
        message = str(err["msg"]).removeprefix("Value error, ")
        if not node and message.startswith("node "):  # a graph problem, already by node
            for part in message.split("; "):
                head, _, why = part.partition(": ")
                out.append({"node": head.removeprefix("node ").strip("'"), "field": "nodes", "message": why})
            continue
        out.append({"node": node, "field": ".".join(loc) or "journey", "message": message})
    return out or [{"node": "", "field": "journey", "message": str(exc)}]


def validate(doc: Any) -> list[dict[str, str]]:
    """Every error of a definition by node (empty when it is valid): what ``userloop journeys validate`` shows."""
    try:
        Journey.model_validate(doc)
    except PydanticValidationError as exc:
        return explain(exc, doc)
    return []


_NODE_KINDS = {
    "wait", "wait_event", "condition", "split", "strategy", "send", "grant", "points", "update", "webhook", "exit",
}  # fmt: skip
