"""Hypothesis strategies for journeys: random acyclic journeys, people, and event logs on a minute grid.

Every instant is a whole minute (naive UTC) so the minute-stepped reference (:mod:`tests.engage.reference`) is
exact. The person's zone is drawn first and steers the rest: entries fall within 30 hours before one of that zone's
2026 DST changes (New York and Adak 03-08 / 11-01, London 03-29 / 10-25, Lord Howe's 30-minute shift 04-05 / 10-04;
Shanghai, Kolkata and UTC have none), and half the until_time waits aim at the local hours the change skips or
repeats. Two cases in three use a coarse grid (every duration, offset and event time a multiple of 30 minutes or 4
hours) so that events land exactly on timeouts, goal windows and due times. Journeys are built as JSON documents and
go through :func:`userloop.engage.journey.parse`, so only valid definitions are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from userloop.engage.interpreter import Happened, Person
from userloop.engage.journey import Journey, parse

MINUTE = timedelta(minutes=1)
# Each zone with the UTC instants of its 2026 DST changes and the local hours those changes touch (the gap's or the
# fold's hour), so entries land just before a change and until_time waits aim at the hours it skips or repeats.
# Zones without DST borrow New York's dates (the same instants, nothing special locally).
ZONES: dict[str, tuple[list[datetime], list[int]]] = {
    "UTC": ([datetime(2026, 3, 8, 7), datetime(2026, 6, 15)], [0, 2]),
    "America/New_York": ([datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)], [1, 2]),
    "America/Adak": ([datetime(2026, 3, 8, 12), datetime(2026, 11, 1, 11)], [1, 2]),
    "Europe/London": ([datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1)], [0, 1]),
    "Australia/Lord_Howe": ([datetime(2026, 4, 4, 15), datetime(2026, 10, 3, 15, 30)], [1, 2]),  # 30 minutes
    "Asia/Shanghai": ([datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)], [2]),
    "Asia/Kolkata": ([datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)], [2]),
}
DST_ZONES = ("America/New_York", "America/Adak", "Europe/London", "Australia/Lord_Howe")
EVENTS = ["cart", "pay", "open", "click"]
HORIZON = timedelta(days=4)


@dataclass(frozen=True)
class Hints:
    """What steers one case: the grid every duration is a multiple of (minutes) and the local hours of interest."""

    grid: int = 1
    hours: tuple[int, ...] = (2,)


@dataclass(frozen=True)
class Case:
    """One random run: a journey, the seed of its random splits, a person, when they enter, and their events."""

    doc: dict[str, Any]
    journey: Journey
    seed: str
    person: Person
    entry: datetime
    events: list[Happened]
    days: int = HORIZON.days  # how long after entry the run is followed

    @property
    def horizon(self) -> datetime:
        return self.entry + timedelta(days=self.days)


# ----------------------------------------------------------------------------------------------------- pieces
def conditions() -> st.SearchStrategy[list[dict[str, Any]]]:
    one = st.one_of(
        st.builds(
            lambda v: {"kind": "property", "property": "plan", "op": "eq", "value": v}, st.sampled_from(["free", "pro"])
        ),
        st.builds(
            lambda op, v: {"kind": "property", "property": "orders", "op": op, "value": v},
            st.sampled_from(["eq", "gt"]),
            st.integers(0, 3),
        ),
        st.builds(
            lambda v: {"kind": "tag", "tag": "tier", "op": "eq", "value": v}, st.sampled_from(["gold", "silver"])
        ),
        st.builds(lambda v: {"kind": "tag", "tag": "vip", "op": "eq", "value": v}, st.booleans()),
        st.builds(lambda s, m: {"kind": "segment", "segment": s, "member": m}, st.integers(1, 3), st.booleans()),
    )
    return st.lists(one, max_size=2)


def event_filters() -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.one_of(
        st.just([]),
        st.just([]),
        st.builds(lambda v: [{"property": "sku", "op": "eq", "value": v}], st.sampled_from(["a", "b"])),
        st.builds(lambda v: [{"property": "amount", "op": "eq", "value": v}], st.integers(1, 2)),
    )


def minutes(lo: int, hi: int, grid: int = 1) -> st.SearchStrategy[int]:
    """A number of seconds that is a whole number of minutes in [lo, hi] (a multiple of ``grid`` minutes, lo
    rounded up), biased to a few round values."""
    lo_k, hi_k = -(-lo // grid), hi // grid
    round_values = [m * 60 for m in (0, 30, 60, 120, 1440, 2880) if lo <= m <= hi and m % grid == 0]
    if grid == 1 and lo <= 1 <= hi:
        round_values.append(60)
    return st.one_of(st.sampled_from(round_values), st.integers(lo_k, hi_k).map(lambda k: k * grid * 60))


def hh_mm(hints: Hints) -> st.SearchStrategy[str]:
    """A local time of day, mostly in the hours of interest (a DST change's) or the hour after."""
    near = st.sampled_from([h + d for h in hints.hours for d in (0, 1)])
    hour = st.one_of(near, near, near, st.integers(0, 23))
    minute = st.one_of(st.sampled_from([0, 15, 30, 45, 59]), st.integers(0, 59))
    return st.builds(lambda h, m: f"{h:02d}:{m:02d}:00", hour, minute)


@st.composite
def node_body(draw: st.DrawFn, kind: str, hints: Hints, first: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A node's fields without its pointers, and the names of its pointer slots (``"next"``, ``"timeout_next"``,
    ``"branches.N"``, ``"strategies.N"``, ``"otherwise"``). A wait at the start is mostly an until_time one: it
    begins at entry, just before the DST change."""
    if kind == "wait":
        forms = ["seconds", "until_time", "until_time", "until_property"]
        form = draw(st.sampled_from(forms + ["until_time"] * 4 if first else forms))
        body: dict[str, Any] = {"kind": "wait", "zone": draw(st.sampled_from(["person", "person", "project"]))}
        if form == "seconds":
            body["seconds"] = draw(minutes(0, 3 * 1440, hints.grid))
        elif form == "until_time":
            body["until_time"] = draw(hh_mm(hints))
            days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), max_size=3))
            if days:
                body["weekdays"] = sorted(set(days))
        else:
            body["until_property"] = "renew"
            g = hints.grid
            body["offset_seconds"] = draw(st.integers(-2 * 1440 // g, 2 * 1440 // g).map(lambda k: k * g * 60))
        return body, ["next"]
    if kind == "wait_event":
        body = {"kind": "wait_event", "event": draw(st.sampled_from(EVENTS)), "filters": draw(event_filters())}
        body["timeout_seconds"] = draw(minutes(1, 2 * 1440, hints.grid))
        return body, ["next", "timeout_next"]
    if kind in ("condition", "strategy"):
        n = draw(st.integers(1, 3))
        field = "branches" if kind == "condition" else "strategies"
        body = {"kind": kind, field: [{"name": f"b{i}", "when": {"all": draw(conditions())}} for i in range(n)]}
        return body, [f"{field}.{i}" for i in range(n)] + ["otherwise"]
    if kind == "split":
        n = draw(st.integers(2, 3))
        cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
        percents = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        control = draw(st.one_of(st.none(), st.integers(0, n - 1)))
        branches = [
            {"name": "control" if i == control else f"v{i}", "percent": p, "control": i == control}
            for i, p in enumerate(percents)
        ]
        return {"kind": "split", "branches": branches}, [f"branches.{i}" for i in range(n) if i != control]
    if kind == "send":
        return {"kind": "send", "channel": "email", "material": "reminder"}, ["next"]
    if kind == "grant":
        return {"kind": "grant", "benefit": "coupon10"}, ["next"]
    if kind == "update":
        return {"kind": "update", "set": {"nudged": True}}, ["next"]
    if kind == "webhook":
        return {"kind": "webhook", "url": "https://example.com/hook"}, ["next"]
    assert kind == "exit"
    return {"kind": "exit"}, []


def _point(body: dict[str, Any], slot: str, target: str | None) -> None:
    if "." in slot:
        field, index = slot.split(".")
        body[field][int(index)]["next"] = target
    else:
        body[slot] = target


KINDS = ["wait", "wait_event", "condition", "split", "strategy", "send", "grant", "update", "webhook", "exit"]
# the timed kinds are where the rules are: drawn three times as often
WEIGHTED = [*KINDS, "wait", "wait", "wait_event", "wait_event"]


@st.composite
def journey_docs(draw: st.DrawFn, hints: Hints = Hints(), max_nodes: int = 12) -> dict[str, Any]:
    """A valid acyclic journey of 1..max_nodes nodes: node i is reached from a free pointer of an earlier node
    (so every node is reachable), and the pointers left over lead to a later node or nowhere (an exit)."""
    size = draw(st.integers(1, max_nodes))
    bodies: list[dict[str, Any]] = []
    free: list[tuple[int, str]] = []
    for i in range(size):
        if i > 0:
            if not free:
                break
            owner, slot = free.pop(draw(st.integers(0, len(free) - 1)))
            _point(bodies[owner], slot, f"n{i}")
        kind = draw(st.sampled_from(WEIGHTED if i > 0 else [k for k in WEIGHTED if k != "exit"] + ["wait"] * 3))
        body, slots = draw(node_body(kind, hints, first=i == 0))
        body["id"] = f"n{i}"
        bodies.append(body)
        free.extend((i, s) for s in slots)
    for owner, slot in free:
        later = draw(st.one_of(st.none(), st.integers(owner + 1, len(bodies)).map(lambda k: f"n{k}")))
        _point(bodies[owner], slot, later if later != f"n{len(bodies)}" else None)
    doc: dict[str, Any] = {"name": "random", "entry": {"kind": "event", "event": "signup"}, "start": "n0"}
    doc["nodes"] = bodies
    if draw(st.booleans()):
        doc["goal"] = {
            "event": draw(st.sampled_from(EVENTS)),
            "filters": draw(event_filters()),
            "within_seconds": draw(minutes(1, 3 * 1440, hints.grid)),
            "exit": draw(st.booleans()),
        }
    return doc


@st.composite
def people(draw: st.DrawFn, zone: str, around: datetime) -> Person:
    """A person with a zone, a few properties (some missing), tags and segments; ``renew`` is a date near
    ``around`` (as a date, ISO text, or a datetime), missing, or not a date."""
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["plan"] = draw(st.sampled_from(["free", "pro", "team"]))
    if draw(st.integers(0, 3)):
        props["orders"] = draw(st.integers(0, 3))
    renew_day = around.date() + timedelta(days=draw(st.integers(-3, 4)))
    renew = draw(
        st.sampled_from(
            [
                None,
                renew_day.isoformat(),
                renew_day,
                f"{renew_day.isoformat()}T15:30:00Z",
                datetime.combine(renew_day, datetime.min.time()),
                "soon",
            ]
        )
    )
    if renew is not None:
        props["renew"] = renew
    tags: dict[str, Any] = {}
    if draw(st.booleans()):
        tags["tier"] = draw(st.sampled_from(["gold", "silver", "bronze"]))
    if draw(st.booleans()):
        tags["vip"] = draw(st.booleans())
    return Person(
        person=draw(st.integers(1, 10**9)),
        zone=zone,
        project_zone=draw(st.one_of(st.just(zone), st.sampled_from(sorted(ZONES)))),
        props=props,
        tags=tags,
        segments=frozenset(draw(st.sets(st.integers(1, 3)))),
    )


@st.composite
def event_logs(draw: st.DrawFn, entry: datetime, grid: int = 1, spans: tuple[int, ...] = ()) -> list[Happened]:
    """0–20 events from ``entry`` on, on the grid, most within hours (so waits and windows meet them), some days
    later; same-minute events happen. Some fall on sums of the journey's ``spans`` (minutes of its fixed waits,
    timeouts and goal window), exactly or a grid step early, which is where a timeout or a window closes."""
    offset = st.one_of(
        st.integers(0, 180 // grid), st.integers(0, 3 * 1440 // grid), st.sampled_from([0, 1, 60 // grid])
    ).map(lambda k: k * grid)
    if spans:
        sums = st.lists(st.sampled_from(spans), min_size=1, max_size=3).map(sum)
        edge = st.builds(lambda m, early: max(0, m - grid * early), sums, st.integers(0, 1))
        offset = st.one_of(offset, edge, edge)
    props = st.fixed_dictionaries({}, optional={"sku": st.sampled_from(["a", "b"]), "amount": st.integers(1, 2)})
    one = st.tuples(st.sampled_from(EVENTS), offset, props)
    raw = draw(st.one_of(st.lists(one, max_size=4), st.lists(one, min_size=5, max_size=20)))
    events = [Happened(name, entry + m * MINUTE, p) for name, m, p in raw]
    return sorted(events, key=lambda e: e.at)  # stable: same-minute events keep their drawn order


def spans(doc: dict[str, Any]) -> tuple[int, ...]:
    """The journey's fixed durations in minutes: waits in seconds, wait_event timeouts, the goal's window."""
    out = [n.get("seconds") or n.get("timeout_seconds") or 0 for n in doc["nodes"]]
    out.append(doc.get("goal", {}).get("within_seconds", 0))
    return tuple(sorted({s // 60 for s in out if s}))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone = draw(st.sampled_from(sorted(ZONES) + list(DST_ZONES)))
    changes, hours = ZONES[zone]
    hints = Hints(grid=draw(st.sampled_from([1, 30, 240])), hours=tuple(hours))
    doc = draw(journey_docs(hints))
    journey = parse(doc)
    change = draw(st.sampled_from(changes)).replace(minute=0)
    entry = change - draw(st.integers(0, 30 * 60 // hints.grid)) * hints.grid * MINUTE
    return Case(
        doc=doc,
        journey=journey,
        seed=draw(st.sampled_from(["j1:v1", "j7:v3", "journey:42"])),
        person=draw(people(zone, entry)),
        entry=entry,
        events=draw(event_logs(entry, hints.grid, spans(doc))),
    )


@st.composite
def until_time_cases(draw: st.DrawFn) -> Case:
    """A journey that only waits until a local time (on some weekdays, maybe) and then sends, entered within 30 hours
    before one of the zone's DST changes, the time of day mostly in the hours the change skips or repeats."""
    zone = draw(st.sampled_from([*DST_ZONES, "Asia/Shanghai"]))
    changes, hours = ZONES[zone]
    wait: dict[str, Any] = {"id": "wait", "kind": "wait", "until_time": draw(hh_mm(Hints(hours=tuple(hours))))}
    days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), max_size=2))
    if days:
        wait["weekdays"] = sorted(set(days))
    wait["next"] = "send"
    doc: dict[str, Any] = {
        "name": "until a local time",
        "entry": {"kind": "event", "event": "signup"},
        "start": "wait",
        "nodes": [wait, {"id": "send", "kind": "send", "channel": "push", "material": "hello"}],
    }
    entry = draw(st.sampled_from(changes)).replace(minute=0) - draw(st.integers(0, 30 * 60)) * MINUTE
    person = Person(person=1, zone=zone, project_zone=zone)
    return Case(doc=doc, journey=parse(doc), seed="j1:v1", person=person, entry=entry, events=[], days=8)
