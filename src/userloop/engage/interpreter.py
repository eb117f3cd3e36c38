"""The journey interpreter: for one person at one node, what happens next and when. Pure: state in, state and
intended effects out, nothing read from a clock, a database or a random source.

The runtime (:mod:`userloop.engage.runtime`) stores a person's :class:`Position` (node, when they reached it, when
they entered, the branches they took), calls :func:`enter` when they come in and :func:`resume` when their timer is
due or an event they wait for arrives, and carries out the :class:`Effect` list through its outbox. Because the
interpreter is deterministic, re-running a step after a crash yields the same effects with the same keys, which is
what makes the outbox's exactly-once possible (the Dittofeed/Temporal split of workflow and activities, see
``research/act-and-measure.md`` §1.1).

Time rules, shared with the brute-force reference in the tests:
- a node reached at time ``t`` by a wait that ended at its due time is reached *at the due time*, not when the
  worker woke: a late worker does not shift the rest of the journey;
- ``wait_event`` accepts an event at ``since <= t < since + timeout``; at ``since + timeout`` the timeout branch
  is taken;
- ``wait.until_time`` is the first instant at or after ``since`` at that local time (on an allowed weekday); a
  local time skipped by a DST change is the first instant after the gap, a repeated one is its first occurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from userloop.engage.journey import (
    NODE_ID,
    WEEKDAYS,
    AllOf,
    Exit,
    Grant,
    InSegment,
    Journey,
    MemberIs,
    ModelIs,
    Node,
    Points,
    PropertyIs,
    RandomSplit,
    Send,
    Split,
    StrategySet,
    TagIs,
    Update,
    Wait,
    WaitEvent,
    Webhook,
)
from userloop.engage.rules import branch_index, resolve_local, split_seed
from userloop.query.spec import Filter

#: The most nodes one step may pass through (the graph is acyclic; this guards against a corrupt definition).
MAX_STEPS = 1000


class Facts(Protocol):
    """What the interpreter may know about the person: profile, tags, segments, model outputs, and zones."""

    @property
    def person(self) -> int: ...

    @property
    def zone(self) -> str:
        """The person's IANA zone (the project's when the profile has none)."""
        ...

    @property
    def project_zone(self) -> str: ...

    def prop(self, name: str) -> Any: ...

    def tag(self, name: str) -> Any: ...

    def in_segment(self, segment: int) -> bool: ...

    def model(self, name: str) -> Any: ...

    def member(self, programme: str, field: str, wallet: str) -> Any:
        """A membership fact (:class:`~userloop.engage.journey.MemberIs`); ``member`` is False for a non-member,
        the other fields None."""
        ...


@dataclass(frozen=True)
class Person:
    """Facts held in memory: what the runtime loads for a person, and what the tests build."""

    person: int
    zone: str = "UTC"
    project_zone: str = "UTC"
    props: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[int] = frozenset()
    models: Mapping[str, Any] = field(default_factory=dict)
    #: ``programme → {"member": True, "level": int, "points:<wallet>": int}`` for the programmes the person is in
    members: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def prop(self, name: str) -> Any:
        return self.props.get(name)

    def tag(self, name: str) -> Any:
        return self.tags.get(name)

    def in_segment(self, segment: int) -> bool:
        return segment in self.segments

    def model(self, name: str) -> Any:
        return self.models.get(name)

    def member(self, programme: str, field: str, wallet: str) -> Any:
        facts = self.members.get(programme)
        if facts is None:
            return False if field == "member" else None
        return facts.get(f"points:{wallet}", 0) if field == "points" else facts.get(field)


@dataclass(frozen=True)
class Happened:
    """An event of the person's: name, time (naive UTC) and properties."""

    event: str
    at: datetime
    props: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Position:
    """Where a person is: the node, when they reached it, when they entered, and the branches they took."""

    node: str
    since: datetime
    entered_at: datetime
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Effect:
    """A side effect the journey intends at ``node`` (send, grant, update, webhook), at logical time ``at``."""

    node: str
    kind: Literal["send", "grant", "points", "update", "webhook"]
    at: datetime
    spec: Send | Grant | Points | Update | Webhook


@dataclass(frozen=True)
class Outcome:
    """The result of one step. ``position`` is None when the person left (``exit_reason`` says why). A waiting
    person has ``wake_at`` (a timer) and/or ``waits_for`` (an event, with its timeout as ``wake_at``). ``held``
    marks a person in a control branch: nothing more happens to them, but they stay for the goal's window.
    ``trail`` lists each node passed with what happened there (for per-node statistics)."""

    position: Position | None
    effects: tuple[Effect, ...] = ()
    wake_at: datetime | None = None
    waits_for: WaitEvent | None = None
    exit_reason: str | None = None
    held: bool = False
    trail: tuple[tuple[str, str], ...] = ()
    at: datetime = datetime.min  # the logical time of the last move: when the person left, or reached the node
    path: tuple[str, ...] = ()  # the branches taken, ``node:branch`` (also of a person who left)


def enter(journey: Journey, seed: str, facts: Facts, at: datetime) -> Outcome:
    """A person enters at ``at``: run from the start until they wait or leave."""
    return _run(journey, seed, facts, Position(journey.start, at, at), (), at, arrived=True)


def resume(
    journey: Journey, seed: str, pos: Position, facts: Facts, now: datetime, event: Happened | None = None
) -> Outcome:
    """Go on from ``pos`` at ``now`` (a due timer) or on ``event``; a person whose wait is not over stays."""
    return _run(journey, seed, facts, pos, (), now, arrived=False, event=event)


def _run(
    journey: Journey,
    seed: str,
    facts: Facts,
    pos: Position,
    effects: tuple[Effect, ...],
    now: datetime,
    *,
    arrived: bool,
    event: Happened | None = None,
) -> Outcome:
    nodes = journey.by_id()
    trail: list[tuple[str, str]] = []
    out_effects = list(effects)
    for _ in range(MAX_STEPS):
        node = nodes[pos.node]
        if arrived:
            trail.append((node.id, "entered"))
        step = _step(node, seed, pos, facts, now, event, arrived=arrived)
        if step.wait is not None or step.wake_at is not None:
            trail.append((node.id, "waiting"))
            return Outcome(
                pos, tuple(out_effects), step.wake_at, step.wait, trail=tuple(trail), at=pos.since, path=pos.path
            )
        if step.effect is not None:
            out_effects.append(step.effect)
        if step.held:
            trail.append((node.id, f"branch:{step.branch}"))
            held = replace(pos, path=(*pos.path, f"{node.id}:{step.branch}"))
            return Outcome(held, tuple(out_effects), held=True, trail=tuple(trail), at=pos.since, path=held.path)
        path = pos.path if step.branch is None else (*pos.path, f"{node.id}:{step.branch}")
        if step.exit_reason is None:  # an exit node, or a wait with no date, does not move on: it ends the run
            trail.append((node.id, "moved" if step.branch is None else f"branch:{step.branch}"))
        if step.exit_reason is not None or step.next is None:
            trail.append((node.id, "exited"))
            reason = step.exit_reason or "end"
            return Outcome(None, tuple(out_effects), exit_reason=reason, trail=tuple(trail), at=step.at, path=path)
        pos = Position(step.next, step.at, pos.entered_at, path)
        if step.branch == "event":
            event = None  # consumed by the node that waited for it; until then it may meet a later wait for it
        arrived = True
    raise RuntimeError("a journey step passed more nodes than the graph has; the definition is corrupt")


@dataclass(frozen=True)
class _Step:
    next: str | None = None
    at: datetime = datetime.min
    branch: str | None = None
    effect: Effect | None = None
    wake_at: datetime | None = None
    wait: WaitEvent | None = None
    exit_reason: str | None = None
    held: bool = False


def _step(
    node: Node, seed: str, pos: Position, facts: Facts, now: datetime, event: Happened | None, *, arrived: bool
) -> _Step:
    at = pos.since
    match node:
        case Wait():
            due = wait_due(node, pos.since, facts)
            if due is None:
                return _Step(at=at, exit_reason=f"no_date:{node.until_property}")
            if due > now:
                return _Step(wake_at=due)
            return _Step(next=node.next, at=max(due, pos.since))
        case WaitEvent():
            deadline = pos.since + timedelta(seconds=node.timeout_seconds)
            if event is not None and pos.since <= event.at < deadline and matches(event, node.event, node.filters):
                return _Step(next=node.next, at=event.at, branch="event")
            if now >= deadline:
                return _Step(next=node.timeout_next, at=deadline, branch="timeout")
            return _Step(wake_at=deadline, wait=node)
        case Split():
            for b in node.branches:
                if holds(b.when, facts):
                    return _Step(next=b.next, at=at, branch=b.name)
            return _Step(next=node.otherwise, at=at, branch="otherwise")
        case StrategySet():
            for s in node.strategies:
                if holds(s.when, facts):
                    return _Step(next=s.next, at=at, branch=s.name)
            return _Step(next=node.otherwise, at=at, branch="otherwise")
        case RandomSplit():
            chosen = node.branches[pick(split_seed(seed, node.id), facts.person, [b.percent for b in node.branches])]
            if chosen.control:
                return _Step(at=at, branch=chosen.name, held=True)
            return _Step(next=chosen.next, at=at, branch=chosen.name)
        case Send() | Grant() | Points() | Update() | Webhook():
            return _Step(next=node.next, at=at, effect=Effect(node.id, node.kind, at, node))
        case Exit():
            return _Step(at=at, exit_reason="exit")
    raise AssertionError(f"unknown node kind {node!r}")  # pragma: no cover - the union is closed


# timing ------------------------------------------------------------------------------------------------------
def wait_due(node: Wait, since: datetime, facts: Facts) -> datetime | None:
    """When a wait that began at ``since`` ends (naive UTC); None when its date property is missing or invalid."""
    zone = facts.zone if node.zone == "person" else facts.project_zone
    if node.seconds is not None:
        return since + timedelta(seconds=node.seconds)
    if node.until_time is not None:
        days = {WEEKDAYS.index(d) for d in node.weekdays} if node.weekdays else None
        return next_local_time(since, node.until_time, zone, days)
    assert node.until_property is not None
    day = as_date(facts.prop(node.until_property))
    if day is None:
        return None
    return local_instant(day, time(0, 0), zone) + timedelta(seconds=node.offset_seconds)


def next_local_time(since: datetime, at: time, zone: str, weekdays: set[int] | None = None) -> datetime:
    """The first instant at or after ``since`` (naive UTC) that is local time ``at`` in ``zone`` on one of
    ``weekdays`` (0 = Monday; any day when None)."""
    tz = ZoneInfo(zone)
    local_day = since.replace(tzinfo=UTC).astimezone(tz).date() - timedelta(days=1)
    for k in range(16):
        day = local_day + timedelta(days=k)
        if weekdays is not None and day.weekday() not in weekdays:
            continue
        candidate = local_instant(day, at, zone)
        if candidate >= since:
            return candidate
    raise AssertionError("a weekday within 16 days always exists")  # pragma: no cover


def local_instant(day: date, at: time, zone: str) -> datetime:
    """Local ``day`` ``at`` in ``zone`` as naive UTC (:func:`userloop.engage.rules.resolve_local`: a time skipped
    by a DST change is the first instant after the gap; a repeated one is its first occurrence)."""
    return resolve_local(datetime.combine(day, at), zone)


def as_date(value: Any) -> date | None:
    """A date from a profile value: a date, a datetime, or an ISO ``YYYY-MM-DD…`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


# conditions --------------------------------------------------------------------------------------------------
def holds(when: AllOf, facts: Facts) -> bool:
    """Whether every condition holds for the person."""
    for c in when.all:
        match c:
            case InSegment():
                ok = facts.in_segment(c.segment) == c.member
            case PropertyIs():
                ok = compare(facts.prop(c.property), c.op, c.value)
            case TagIs():
                ok = compare(facts.tag(c.tag), c.op, c.value)
            case ModelIs():
                ok = compare(facts.model(c.model), c.op, c.value)
            case MemberIs():
                ok = compare(facts.member(c.programme, c.field, c.wallet), c.op, c.value)
        if not ok:
            return False
    return True


def compare(actual: Any, op: str, expected: Any) -> bool:
    """``actual op expected``; a missing value fails every comparison except ``is_not_set`` and ``neq``/``not_in``
    (SQL's three-valued logic would leave such a person out; a journey must decide, and "not equal" is true of
    nothing). Numbers compare as numbers, everything else as text."""
    if op == "is_set":
        return actual is not None
    if op == "is_not_set":
        return actual is None
    if actual is None:
        return op in ("neq", "not_in")
    if op in ("in", "not_in"):
        values = expected if isinstance(expected, list) else [expected]
        found = any(_eq(actual, v) for v in values)
        return found if op == "in" else not found
    if op == "eq":
        return _eq(actual, expected)
    if op == "neq":
        return not _eq(actual, expected)
    if op == "contains":
        return str(expected) in str(actual)
    a, b = _comparable(actual, expected)
    if a is None or b is None:
        return False
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda x, y: x > y,
        "gte": lambda x, y: x >= y,
        "lt": lambda x, y: x < y,
        "lte": lambda x, y: x <= y,
    }
    return ops[op](a, b)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or str(a).lower() == str(b).lower()
    x, y = _comparable(a, b)
    return x == y if x is not None else str(a) == str(b)


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a), float(b)
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        return (str(a), str(b)) if not isinstance(a, bool) and not isinstance(b, bool) else (None, None)


def matches(event: Happened, name: str, filters: list[Filter]) -> bool:
    """Whether ``event`` is ``name`` with every event-property filter holding (``between`` inclusive)."""
    if event.event != name:
        return False
    for f in filters:
        value = event.props.get(f.property)
        if f.op == "between":
            assert isinstance(f.value, list)
            if not (compare(value, "gte", f.value[0]) and compare(value, "lte", f.value[1])):
                return False
        elif f.op == "not_contains":
            if value is None or compare(value, "contains", f.value):
                return False
        else:
            op = {"is_set": "is_set", "is_not_set": "is_not_set"}.get(f.op, f.op)
            if not compare(value, op, f.value):
                return False
    return True


# deterministic choice ----------------------------------------------------------------------------------------
def pick(seed: str, person: int, percents: list[float]) -> int:
    """The branch a person lands in at a random split: :func:`userloop.engage.rules.branch_index` of their bucket
    for ``seed`` (the journey's and the node's, :func:`userloop.engage.rules.split_seed`)."""
    return branch_index(seed, person, percents)


def effect_key(journey_id: int, version: int, node: str, person: int, occurrence: int) -> str:
    """The deterministic idempotency key of an effect, ``journey.version.node.person.occurrence``: the same for
    every attempt, readable, and parsed back by :func:`parse_key` when a provider echoes it (Aliyun ``OutId``,
    Tencent ``SessionContext``, the e-mail ``Message-ID``). Node ids are ``[a-z0-9_]``, so the dots separate."""
    return f"{journey_id}.{version}.{node}.{person}.{occurrence}"


def parse_key(key: str) -> tuple[int, int, str, int, int] | None:
    """The parts of an :func:`effect_key`, or None for anything else."""
    parts = key.split(".")
    if len(parts) != 5 or not all(p.isdigit() for i, p in enumerate(parts) if i != 2):
        return None
    journey, version, node, person, occurrence = parts
    if not NODE_ID.match(node):
        return None
    return int(journey), int(version), node, int(person), int(occurrence)


def goal_reached(journey: Journey, pos: Position, event: Happened) -> bool:
    """Whether ``event`` is the journey's conversion within its window after entry."""
    goal = journey.goal
    if goal is None:
        return False
    window_end = pos.entered_at + timedelta(seconds=goal.within_seconds)
    return pos.entered_at <= event.at < window_end and matches(event, goal.event, goal.filters)
