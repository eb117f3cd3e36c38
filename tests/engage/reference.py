"""A brute-force reference for the journey interpreter: one person, a clock that ticks once a minute.

Written from the time rules in the docstrings of :mod:`userloop.engage.journey` and
:mod:`userloop.engage.interpreter`, not from the interpreter's code: it imports only the definition's data classes
and the interpreter's plain data holders (``Person``, ``Happened``). It evaluates only the subset of conditions and
filters that :mod:`tests.engage.strategies` generates (``eq`` / ``gt`` on properties and tags, segment membership,
``eq`` event filters) and refuses anything else, so a strategy that grows past it fails loudly instead of being
compared against a guess.

The clock starts at entry and steps one minute at a time to the horizon (every generated instant is on the minute
grid, so stepping is exact). At each tick: first the timers due at that minute (a wait ends, a ``wait_event`` times
out), then the events of that minute in their order (a waiting ``wait_event`` may take the event, then the goal is
checked, as the runtime does); after each of these the person runs through every node that needs no waiting. Timers
first because a node reached at ``t`` by a timer takes events at ``since <= t``: an event at the very minute a wait
ends belongs to the node the wait leads to, whatever the number or order of the events of that minute. Wall clocks
are read straight from ``zoneinfo`` for each minute: a wait "until local time W" ends at the first minute at which
the local clock has ever shown W or later (the running maximum of the wall clock crosses W), which is the first
instant after a DST gap for a skipped W and the first occurrence for a repeated one, without any offset arithmetic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from userloop.engage.interpreter import Happened, Person
from userloop.engage.journey import (
    WEEKDAYS,
    AllOf,
    Exit,
    Grant,
    InSegment,
    Journey,
    Node,
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
from userloop.query.spec import Filter

MINUTE = timedelta(minutes=1)


@dataclass
class RefResult:
    """What the reference saw: the final state (``("waiting", node, since, path)``, ``("held", node, path)`` or
    ``("exited", reason, at, path)``), the effects ``(node, kind, at)``, the trail ``(node, what)``, the
    timed log ``(at, node, what)`` and the conversion time (None when the goal was not reached)."""

    final: tuple[Any, ...]
    effects: list[tuple[str, str, datetime]] = field(default_factory=list)
    trail: list[tuple[str, str]] = field(default_factory=list)
    log: list[tuple[datetime, str, str]] = field(default_factory=list)
    converted_at: datetime | None = None


# --------------------------------------------------------------------------------------------------- wall clocks
class WallClock:
    """A zone's wall clock minute by minute from ``origin``, with its running maximum (the "high water")."""

    def __init__(self, zone: str, origin: datetime) -> None:
        self.tz = ZoneInfo(zone)
        # a day earlier than anything asked: offsets change by far less than a day, so no wall reading from before
        # the origin can exceed a reading a day later, and the running maximum from here is the true one
        self.origin = origin - timedelta(days=1)
        self.walls: list[datetime] = []
        self.highs: list[datetime] = []

    def _extend(self, index: int) -> None:
        while len(self.walls) <= index:
            at = self.origin + len(self.walls) * MINUTE
            wall = at.replace(tzinfo=UTC).astimezone(self.tz).replace(tzinfo=None)
            self.walls.append(wall)
            self.highs.append(max(wall, self.highs[-1]) if self.highs else wall)

    def high(self, at: datetime) -> datetime:
        """The latest wall time shown at or before minute ``at``."""
        index = (at - self.origin) // MINUTE
        assert index >= 0 and self.origin + index * MINUTE == at, at
        self._extend(index)
        return self.highs[index]


def first_showing(zone: str, wall: datetime) -> datetime:
    """The first minute (naive UTC) at which the clock of ``zone`` shows ``wall`` or later: scan from 16 hours
    before ``wall`` read as UTC (every offset is within ±14 hours)."""
    clock = WallClock(zone, wall - timedelta(hours=16))
    at = wall - timedelta(hours=16)
    while clock.high(at) < wall:
        at += MINUTE
    return at


def parse_day(value: Any) -> date | None:
    """A date from a profile value: a date, a datetime, or text starting with ``YYYY-MM-DD``."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        m = re.match(r"(\d{4})-(\d{2})-(\d{2})", value)
        if m is None:
            return None
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------------------------------------- conditions
def _same(actual: Any, expected: Any) -> bool:
    """Equality within the generated subset: both numbers, both booleans, or both text; missing is never equal."""
    if actual is None:
        return False
    if isinstance(actual, bool) or isinstance(expected, bool):
        assert isinstance(actual, bool) and isinstance(expected, bool), (actual, expected)
        return actual == expected
    if isinstance(actual, str) or isinstance(expected, str):
        assert isinstance(actual, str) and isinstance(expected, str), (actual, expected)
        return actual == expected
    return float(actual) == float(expected)


def _greater(actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    assert isinstance(actual, int | float) and not isinstance(actual, bool), actual
    assert isinstance(expected, int | float) and not isinstance(expected, bool), expected
    return float(actual) > float(expected)


def _op(actual: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return _same(actual, expected)
    if op == "gt":
        return _greater(actual, expected)
    raise AssertionError(f"the reference knows only eq and gt, not {op!r}")


def all_hold(when: AllOf, person: Person) -> bool:
    for c in when.all:
        if isinstance(c, PropertyIs):
            ok = _op(person.props.get(c.property), c.op, c.value)
        elif isinstance(c, TagIs):
            ok = _op(person.tags.get(c.tag), c.op, c.value)
        elif isinstance(c, InSegment):
            ok = (c.segment in person.segments) is c.member
        else:
            raise AssertionError(f"the reference does not evaluate {c!r}")
        if not ok:
            return False
    return True


def event_is(ev: Happened, name: str, filters: list[Filter]) -> bool:
    if ev.event != name:
        return False
    for f in filters:
        assert f.source == "event" and f.op == "eq", f
        if not _same(ev.props.get(f.property), f.value):
            return False
    return True


def fraction(seed: str, person: int) -> float:
    """A person's place in [0, 1): SHA-256 of ``seed`` ␟ ``person``, the top 53 bits of its first 8 bytes over
    2**53 (the rule :func:`userloop.engage.rules.bucket` publishes)."""
    h = hashlib.sha256(f"{seed}\x1f{person}".encode()).digest()
    return (int.from_bytes(h[:8], "big") >> 11) / 2.0**53


def lands_in(seed: str, node: str, person: int, percents: list[float]) -> int:
    """The random split's branch: the person's place for ``seed:node`` times 100 against the running sum of the
    percentages; past the last bound (rounding) the last branch with a share."""
    x = fraction(f"{seed}:{node}", person) * 100.0
    bound = 0.0
    for i, p in enumerate(percents):
        bound += p
        if x < bound:
            return i
    return max(i for i, p in enumerate(percents) if p > 0)


# ---------------------------------------------------------------------------------------------------- simulation
class _Sim:
    def __init__(self, journey: Journey, seed: str, person: Person, entry: datetime) -> None:
        self.j = journey
        self.nodes = {n.id: n for n in journey.nodes}
        self.seed = seed
        self.person = person
        self.entry = entry
        self.node = journey.start
        self.since = entry
        self.path: list[str] = []
        self.state = "running"  # running | waiting | held | exited
        self.reason: str | None = None
        self.left_at = entry
        self.res = RefResult(final=())
        self.clocks: dict[str, WallClock] = {}
        self.dues: dict[tuple[str, datetime], datetime] = {}

    def note(self, at: datetime, node: str, what: str, *, trail: bool = True) -> None:
        self.res.log.append((at, node, what))
        if trail and not (what == "waiting" and self.res.trail and self.res.trail[-1] == (node, what)):
            self.res.trail.append((node, what))

    def zone(self, which: str) -> str:
        return self.person.zone if which == "person" else self.person.project_zone

    def clock(self, zone: str) -> WallClock:
        if zone not in self.clocks:
            self.clocks[zone] = WallClock(zone, self.entry)
        return self.clocks[zone]

    # moving --------------------------------------------------------------------------------------------------
    def arrive(self, node: str | None, at: datetime, left: str, what: str, branch: str | None = None) -> None:
        self.note(at, left, what)
        if branch is not None:
            self.path.append(f"{left}:{branch}")
        if node is None:
            self.leave(at, left, "end")
            return
        self.node, self.since, self.state = node, at, "running"
        self.note(at, node, "entered")

    def leave(self, at: datetime, node: str, reason: str) -> None:
        self.note(at, node, "exited")
        self.state, self.reason, self.left_at = "exited", reason, at

    def wait_over(self, n: Wait, t: datetime) -> bool | None:
        """Whether the wait at ``n`` (begun at ``self.since``) ends at tick ``t``; None: it cannot (no date)."""
        if n.seconds is not None:
            return t - self.since >= timedelta(seconds=n.seconds)
        zone = self.zone(n.zone)
        if n.until_time is not None:
            allowed = {WEEKDAYS.index(d) for d in n.weekdays} if n.weekdays else set(range(7))
            clock = self.clock(zone)
            before, now = clock.high(t - MINUTE), clock.high(t)
            for day in {before.date(), now.date()}:
                target = datetime.combine(day, n.until_time)
                if day.weekday() in allowed and before < target <= now:
                    return True
            return False
        assert n.until_property is not None
        renew = parse_day(self.person.props.get(n.until_property))
        if renew is None:
            return None
        key = (zone, datetime.combine(renew, time(0, 0)))
        if key not in self.dues:
            self.dues[key] = first_showing(zone, key[1])
        due = self.dues[key]
        return t >= due + timedelta(seconds=n.offset_seconds)

    def settle(self, t: datetime) -> None:
        """Run the person through every node that needs no waiting at tick ``t`` (timers due at ``t`` included)."""
        for _ in range(10_000):
            if self.state in ("exited", "held"):
                return
            n: Node = self.nodes[self.node]
            if isinstance(n, Wait):
                over = self.wait_over(n, t)
                if over is None:
                    self.leave(t, n.id, f"no_date:{n.until_property}")
                elif over:
                    self.arrive(n.next, t, n.id, "moved")
                    continue
                elif self.state != "waiting":
                    self.state = "waiting"
                    self.note(t, n.id, "waiting")
                return
            if isinstance(n, WaitEvent):
                if t >= self.since + timedelta(seconds=n.timeout_seconds):
                    self.arrive(n.timeout_next, t, n.id, "branch:timeout", "timeout")
                    continue
                if self.state != "waiting":
                    self.state = "waiting"
                    self.note(t, n.id, "waiting")
                return
            if isinstance(n, Split):
                chosen = next((b for b in n.branches if all_hold(b.when, self.person)), None)
                name, target = (chosen.name, chosen.next) if chosen else ("otherwise", n.otherwise)
                self.arrive(target, t, n.id, f"branch:{name}", name)
            elif isinstance(n, StrategySet):
                picked = next((s for s in n.strategies if all_hold(s.when, self.person)), None)
                name, target = (picked.name, picked.next) if picked else ("otherwise", n.otherwise)
                self.arrive(target, t, n.id, f"branch:{name}", name)
            elif isinstance(n, RandomSplit):
                share = n.branches[lands_in(self.seed, n.id, self.person.person, [b.percent for b in n.branches])]
                if share.control:
                    self.note(t, n.id, f"branch:{share.name}")
                    self.path.append(f"{n.id}:{share.name}")
                    self.state = "held"
                    return
                self.arrive(share.next, t, n.id, f"branch:{share.name}", share.name)
            elif isinstance(n, Send | Grant | Update | Webhook):
                self.res.effects.append((n.id, n.kind, t))
                self.note(t, n.id, f"effect:{n.kind}", trail=False)
                self.arrive(n.next, t, n.id, "moved")
            elif isinstance(n, Exit):
                self.leave(t, n.id, "exit")
                return
            else:  # pragma: no cover - the union is closed
                raise AssertionError(n)
        raise AssertionError("the reference walked 10 000 nodes in one tick")

    def on_event(self, ev: Happened) -> None:
        """The event goes to the journey first (a waiting ``wait_event`` may take it), then to the goal: the first
        goal event within the window after entry converts the person, even one who left already; with
        ``goal.exit`` a converted person who is waiting leaves (a held one stays held)."""
        n = self.nodes[self.node]
        if self.state == "waiting" and isinstance(n, WaitEvent):
            in_window = self.since <= ev.at < self.since + timedelta(seconds=n.timeout_seconds)
            if in_window and event_is(ev, n.event, n.filters):
                self.arrive(n.next, ev.at, n.id, "branch:event", "event")
                self.settle(ev.at)
        goal = self.j.goal
        if (
            goal is not None
            and self.res.converted_at is None
            and self.entry <= ev.at < self.entry + timedelta(seconds=goal.within_seconds)
            and event_is(ev, goal.event, goal.filters)
        ):
            self.res.converted_at = ev.at
            self.note(ev.at, self.node, "converted", trail=False)
            if goal.exit and self.state == "waiting":
                self.state, self.reason, self.left_at = "exited", "goal", ev.at


def simulate(
    journey: Journey, seed: str, person: Person, entry: datetime, events: list[Happened], horizon: datetime
) -> RefResult:
    """Step one person through ``journey`` from ``entry`` to ``horizon`` (inclusive), minute by minute, with
    ``events`` (those before entry or after the horizon are ignored; same-minute events keep their order)."""
    assert entry.second == 0 and entry.microsecond == 0 and horizon >= entry
    sim = _Sim(journey, seed, person, entry)
    by_minute: dict[datetime, list[Happened]] = {}
    for ev in sorted(events, key=lambda e: e.at):
        assert ev.at.second == 0 and ev.at.microsecond == 0, ev
        by_minute.setdefault(ev.at, []).append(ev)
    sim.note(entry, journey.start, "entered")
    t = entry
    while t <= horizon:
        sim.settle(t)  # at entry the person runs in; later, the timers due at this minute fire
        for ev in by_minute.get(t, []):
            sim.on_event(ev)  # each event, then whatever needs no waiting after it
        t += MINUTE
    if sim.state == "exited":
        assert sim.reason is not None
        sim.res.final = ("exited", sim.reason, sim.left_at, tuple(sim.path))
    elif sim.state == "held":
        sim.res.final = ("held", sim.node, tuple(sim.path))
    else:
        sim.res.final = ("waiting", sim.node, sim.since, tuple(sim.path))
    return sim.res
