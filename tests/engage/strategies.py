"""Hypothesis strategies for journeys: random acyclic journeys, people, and event logs on a minute grid.

Every instant is a whole minute (naive UTC) so the minute-stepped reference (:mod:`tests.engage.reference`) is
exact; dates sit around the 2026 DST changes of the zones used (New York and Adak 03-08 / 11-01, London 03-29 /
10-25, Lord Howe's 30-minute shift 04-05 / 10-04) and in zones without DST (Shanghai, Kolkata, UTC). Journeys are
built as JSON documents and go through :func:`userloop.engage.journey.parse`, so only valid definitions are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from userloop.engage.interpreter import Happened, Person
from userloop.engage.journey import Journey, parse

MINUTE = timedelta(minutes=1)
ZONES = [
    "UTC",
    "America/New_York",
    "Asia/Shanghai",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Adak",
]
# local-midnight starting points near the transitions (as naive UTC, roughly: the entry is drawn within 2 days)
ANCHORS = [
    datetime(2026, 3, 7),
    datetime(2026, 10, 31),
    datetime(2026, 3, 28),
    datetime(2026, 10, 24),
    datetime(2026, 4, 3),
    datetime(2026, 10, 2),
    datetime(2026, 6, 15),
]
EVENTS = ["cart", "pay", "open", "click"]
DAY = 86400
HORIZON = timedelta(days=4)


@dataclass(frozen=True)
class Case:
    """One random run: a journey, the seed of its random splits, a person, when they enter, and their events."""

    doc: dict[str, Any]
    journey: Journey
    seed: str
    person: Person
    entry: datetime
    events: list[Happened]

    @property
    def horizon(self) -> datetime:
        return self.entry + HORIZON


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


def minutes(lo: int, hi: int) -> st.SearchStrategy[int]:
    """A number of seconds that is a whole number of minutes, biased to a few round values."""
    return st.one_of(
        st.sampled_from([m * 60 for m in (0, 1, 30, 60, 120, 1440, 2880) if lo <= m <= hi]),
        st.integers(lo, hi).map(lambda m: m * 60),
    )


def hh_mm() -> st.SearchStrategy[str]:
    """A local time of day, often in the hours DST changes touch (00–03)."""
    hour = st.one_of(st.integers(0, 3), st.integers(0, 23))
    minute = st.one_of(st.sampled_from([0, 15, 30, 59]), st.integers(0, 59))
    return st.builds(lambda h, m: f"{h:02d}:{m:02d}:00", hour, minute)


@st.composite
def node_body(draw: st.DrawFn, kind: str) -> tuple[dict[str, Any], list[str]]:
    """A node's fields without its pointers, and the names of its pointer slots (``"next"``, ``"timeout_next"``,
    ``"branches.N"``, ``"strategies.N"``, ``"otherwise"``)."""
    if kind == "wait":
        form = draw(st.sampled_from(["seconds", "until_time", "until_property"]))
        body: dict[str, Any] = {"kind": "wait", "zone": draw(st.sampled_from(["person", "person", "project"]))}
        if form == "seconds":
            body["seconds"] = draw(minutes(0, 3 * 1440))
        elif form == "until_time":
            body["until_time"] = draw(hh_mm())
            days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), max_size=3))
            if days:
                body["weekdays"] = sorted(set(days))
        else:
            body["until_property"] = "renew"
            body["offset_seconds"] = draw(st.integers(-2 * 1440, 2 * 1440).map(lambda m: m * 60))
        return body, ["next"]
    if kind == "wait_event":
        body = {"kind": "wait_event", "event": draw(st.sampled_from(EVENTS)), "filters": draw(event_filters())}
        body["timeout_seconds"] = draw(minutes(1, 2 * 1440))
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
def journey_docs(draw: st.DrawFn, max_nodes: int = 12) -> dict[str, Any]:
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
        kind = draw(st.sampled_from(WEIGHTED if i > 0 else [k for k in WEIGHTED if k != "exit"]))
        body, slots = draw(node_body(kind))
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
            "within_seconds": draw(minutes(1, 3 * 1440)),
            "exit": draw(st.booleans()),
        }
    return doc


@st.composite
def people(draw: st.DrawFn, around: datetime) -> Person:
    """A person with a zone, a few properties (some missing), tags and segments; ``renew`` is a date near
    ``around`` (as a date, ISO text, or a datetime), missing, or not a date."""
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["plan"] = draw(st.sampled_from(["free", "pro", "team"]))
    if draw(st.booleans()):
        props["orders"] = draw(st.integers(0, 4))
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
        zone=draw(st.sampled_from(ZONES)),
        project_zone=draw(st.sampled_from(ZONES)),
        props=props,
        tags=tags,
        segments=frozenset(draw(st.sets(st.integers(1, 3)))),
    )


@st.composite
def event_logs(draw: st.DrawFn, entry: datetime) -> list[Happened]:
    """0–20 events from ``entry`` on, on the minute grid, most within hours (so waits and windows meet them),
    some days later; same-minute events happen."""
    offset = st.one_of(st.integers(0, 180), st.integers(0, 3 * 1440), st.sampled_from([0, 1, 60, 1440]))
    props = st.fixed_dictionaries({}, optional={"sku": st.sampled_from(["a", "b"]), "amount": st.integers(1, 2)})
    one = st.tuples(st.sampled_from(EVENTS), offset, props)
    raw = draw(st.one_of(st.lists(one, max_size=4), st.lists(one, min_size=5, max_size=20)))
    events = [Happened(name, entry + m * MINUTE, p) for name, m, p in raw]
    return sorted(events, key=lambda e: e.at)  # stable: same-minute events keep their drawn order


@st.composite
def cases(draw: st.DrawFn) -> Case:
    doc = draw(journey_docs())
    journey = parse(doc)
    entry = draw(st.sampled_from(ANCHORS)) + draw(st.integers(0, 2 * 1440)) * MINUTE
    return Case(
        doc=doc,
        journey=journey,
        seed=draw(st.sampled_from(["j1:v1", "j7:v3", "journey:42"])),
        person=draw(people(entry)),
        entry=entry,
        events=draw(event_logs(entry)),
    )
