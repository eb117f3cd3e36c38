"""The journey interpreter against a brute-force, minute-stepped reference (:mod:`tests.engage.reference`).

A driver runs the interpreter the way the runtime does: ``enter`` at entry, then ``resume`` at each ``wake_at`` and
with each event in time order (a wake-up due at or before an event's time is taken first, as in the reference: the
timers of a minute, then its events; see :func:`test_an_event_at_a_due_time_does_not_depend_on_the_runtime_order`
for why). As in ``runtime.on_events``, each event goes to the journey first and then to the goal: the first goal
event within the window after entry is the conversion (also of a person who left already) and, with ``goal.exit``,
takes a waiting person out (reason ``goal``; a held one stays held). Compared with the reference on random journeys,
people and event logs: the final state (node, since and path; held; or exited with its reason), the effects (node,
kind, logical time) in order, the trail of what happened at each node, and the conversion time. Every instant is
given explicitly; nothing reads the clock or the machine's zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.engage.reference import RefResult, simulate
from tests.engage.strategies import Case, cases, until_time_cases
from userloop.engage.interpreter import Happened, Outcome, Person, Position, enter, goal_reached, resume
from userloop.engage.journey import Journey, parse

MINUTE = timedelta(minutes=1)


@dataclass
class Run:
    """What the driver saw of the interpreter, in the reference's terms."""

    final: tuple[Any, ...] = ()
    effects: list[tuple[str, str, datetime]] = field(default_factory=list)
    trail: list[tuple[str, str]] = field(default_factory=list)
    converted_at: datetime | None = None
    steps: int = 0


def drive(
    journey: Journey,
    seed: str,
    person: Person,
    entry: datetime,
    events: list[Happened],
    horizon: datetime,
    lag: timedelta = timedelta(0),
) -> Run:
    """Run the interpreter for one person from ``entry`` to ``horizon`` like the runtime would; with ``lag``, a
    worker that wakes that much late for each timer (but never after the next event or the horizon)."""
    run = Run()
    pos: Position | None = None
    wake: datetime | None = None
    held = False
    reason: str | None = None
    left_at, left_path = entry, ()

    def absorb(out: Outcome, now: datetime) -> None:
        nonlocal pos, wake, held, reason, left_at, left_path
        run.steps += 1
        assert run.steps < 10_000, "the driver is not making progress"
        for e in out.effects:
            assert e.spec == journey.node(e.node) and e.kind == e.spec.kind, e
            assert e.at <= now, (e, now)  # a logical time is never in the future
        run.effects.extend((e.node, e.kind, e.at) for e in out.effects)
        for item in out.trail:
            if not (item[1] == "waiting" and run.trail and run.trail[-1] == item):
                run.trail.append(item)
        pos, wake, held, reason = out.position, out.wake_at, out.held, out.exit_reason
        if pos is None:
            assert reason is not None and wake is None and not held, out
            assert out.at <= now, (out, now)
            left_at, left_path = out.at, out.path
        elif held:
            assert wake is None and out.waits_for is None, out
        else:
            assert wake is not None and wake > now, (out, now)  # a waiting person always has a timer ahead
            assert (out.waits_for is not None) == (journey.node(pos.node).kind == "wait_event"), out

    def wake_until(limit: datetime, *, inclusive: bool) -> None:
        while pos is not None and not held and wake is not None and (wake <= limit if inclusive else wake < limit):
            at = max(wake, min(wake + lag, limit))
            absorb(resume(journey, seed, pos, person, at), at)

    absorb(enter(journey, seed, person, entry), entry)
    for ev in sorted(events, key=lambda e: e.at):
        if ev.at < entry or ev.at > horizon:
            continue
        wake_until(ev.at, inclusive=True)  # timers due by the event's time first, as the reference does
        if pos is not None and not held:
            absorb(resume(journey, seed, pos, person, ev.at, ev), ev.at)
        # the goal after the journey had the event (runtime.on_events); a person who left still converts
        if run.converted_at is None and goal_reached(journey, pos or Position("", entry, entry), ev):
            run.converted_at = ev.at
            assert journey.goal is not None
            if journey.goal.exit and pos is not None and not held:
                pos, reason, left_at, left_path = None, "goal", ev.at, pos.path
    wake_until(horizon, inclusive=True)
    if pos is None:
        assert reason is not None
        run.final = ("exited", reason, left_at, left_path)
    elif held:
        run.final = ("held", pos.node, pos.path)
    else:
        run.final = ("waiting", pos.node, pos.since, pos.path)
    return run


def describe(case: Case, ref: RefResult) -> str:
    lines = [f"entry {case.entry}, person {case.person}", f"journey {case.doc}", "events:"]
    lines += [f"  {e.at} {e.event} {dict(e.props)}" for e in case.events]
    lines += ["reference log:"] + [f"  {at} {node} {what}" for at, node, what in ref.log]
    return "\n".join(lines)


def check(case: Case, lag: timedelta = timedelta(0)) -> tuple[Run, RefResult]:
    ref = simulate(case.journey, case.seed, case.person, case.entry, case.events, case.horizon)
    got = drive(case.journey, case.seed, case.person, case.entry, case.events, case.horizon, lag)
    why = describe(case, ref)
    assert got.effects == ref.effects, why
    assert got.final == ref.final, why
    assert got.converted_at == ref.converted_at, why
    trail = normal_trail(got.trail, got.final)
    if lag:  # a late worker finds some waits already over: the person passes them without waiting
        assert [t for t in trail if t[1] != "waiting"] == [t for t in ref.trail if t[1] != "waiting"], why
    else:
        assert trail == ref.trail, why
    return got, ref


def normal_trail(trail: list[tuple[str, str]], final: tuple[Any, ...]) -> list[tuple[str, str]]:
    """The interpreter's trail in the reference's terms: where a node takes the person out by itself (an exit node,
    a wait without its date) the interpreter writes ``moved`` before ``exited``; the reference writes ``exited``
    only (nobody moved on from there)."""
    by_itself = final[0] == "exited" and (final[1] == "exit" or final[1].startswith("no_date:"))
    if by_itself and len(trail) >= 2 and trail[-2] == (trail[-1][0], "moved") and trail[-1][1] == "exited":
        return [*trail[:-2], trail[-1]]
    return trail


# --------------------------------------------------------------------------------------------- random journeys
@settings(max_examples=examples(300))
@given(cases())
def test_interpreter_agrees_with_the_minute_stepped_reference(case: Case) -> None:
    check(case)


@settings(max_examples=examples(100))
@given(cases(), st.integers(1, 3 * 1440))
def test_a_late_worker_does_not_shift_the_journey(case: Case, late: int) -> None:
    """Timers handled ``late`` minutes late (never past the next event): the same nodes at the same logical times
    and the same effects; only the trail's ``waiting`` marks may go (a wait already over is passed through)."""
    check(case, lag=late * MINUTE)


@settings(max_examples=examples(300))
@given(until_time_cases())
def test_until_time_waits_agree_with_the_reference_around_dst_changes(case: Case) -> None:
    got, _ = check(case)
    assert len(got.effects) == 1  # every such wait ends within the horizon (a week's weekday at the latest)


# ------------------------------------------------------------------------------------------------ plain examples
def _case(doc: dict[str, Any], person: Person, entry: datetime, events: list[Happened]) -> Case:
    return Case(doc=doc, journey=parse(doc), seed="j1:v1", person=person, entry=entry, events=events)


CART = {
    "name": "abandoned cart",
    "entry": {"kind": "event", "event": "cart_add"},
    "start": "wait_pay",
    "nodes": [
        {"id": "wait_pay", "kind": "wait_event", "event": "pay", "timeout_seconds": 3600, "timeout_next": "remind"},
        {"id": "remind", "kind": "send", "channel": "email", "material": "cart_reminder", "next": "done"},
        {"id": "done", "kind": "exit"},
    ],
}
ENTRY = datetime(2026, 5, 4, 9, 17)


def test_abandoned_cart_reminder_after_an_hour_without_payment() -> None:
    got, _ = check(_case(CART, Person(7), ENTRY, [Happened("open", ENTRY + 5 * MINUTE)]))
    assert got.effects == [("remind", "send", ENTRY + timedelta(hours=1))]
    assert got.final == ("exited", "exit", ENTRY + timedelta(hours=1), ("wait_pay:timeout",))
    assert got.trail[:4] == [("wait_pay", "entered"), ("wait_pay", "waiting"), ("wait_pay", "branch:timeout"),
                             ("remind", "entered")]  # fmt: skip


def test_abandoned_cart_payment_inside_the_window_sends_nothing() -> None:
    paid = ENTRY + 59 * MINUTE
    got, _ = check(_case(CART, Person(7), ENTRY, [Happened("pay", paid)]))
    assert got.effects == []
    assert got.final == ("exited", "end", paid, ("wait_pay:event",))  # the event branch has no next node
    assert ("wait_pay", "branch:event") in got.trail


def test_abandoned_cart_payment_at_the_timeout_is_too_late() -> None:
    deadline = ENTRY + timedelta(hours=1)
    got, _ = check(_case(CART, Person(7), ENTRY, [Happened("pay", deadline)]))
    assert got.effects == [("remind", "send", deadline)]
    # the window is half-open even when the runtime hands over the event before the timer fires
    journey = parse(CART)
    waiting = enter(journey, "s", Person(7), ENTRY)
    assert waiting.position is not None and waiting.wake_at == deadline and waiting.waits_for is not None
    late = resume(journey, "s", waiting.position, Person(7), deadline, Happened("pay", deadline))
    assert [(e.node, e.at) for e in late.effects] == [("remind", deadline)]
    just_in = resume(journey, "s", waiting.position, Person(7), deadline - MINUTE, Happened("pay", deadline - MINUTE))
    assert just_in.effects == () and just_in.exit_reason == "end"


def test_abandoned_cart_goal_is_converted_after_the_journey_took_the_event() -> None:
    doc = {**CART, "goal": {"event": "pay", "within_seconds": 86400}}
    paid = ENTRY + 10 * MINUTE
    got, _ = check(_case(doc, Person(7), ENTRY, [Happened("pay", paid)]))
    # the wait took the payment (its branch has no next node: the person left), and the payment still converts
    assert got.final == ("exited", "end", paid, ("wait_pay:event",)) and got.converted_at == paid and got.effects == []


def test_the_goal_takes_a_waiting_person_out() -> None:
    doc = {
        "name": "welcome series",
        "entry": {"kind": "event", "event": "signup"},
        "start": "day1",
        "goal": {"event": "pay", "within_seconds": 7 * 86400},
        "nodes": [
            {"id": "day1", "kind": "wait", "seconds": 86400, "next": "hello"},
            {"id": "hello", "kind": "send", "channel": "email", "material": "welcome", "next": "test"},
            {"id": "test", "kind": "split", "branches": [
                {"name": "a", "percent": 50, "next": "later"}, {"name": "control", "percent": 50, "control": True}]},
            {"id": "later", "kind": "wait", "seconds": 86400, "next": "again"},
            {"id": "again", "kind": "send", "channel": "email", "material": "welcome2"},
        ],
    }  # fmt: skip
    paid = ENTRY + timedelta(hours=30)
    for person in range(1, 40):
        got, _ = check(_case(doc, Person(person), ENTRY, [Happened("pay", paid)]))
        assert got.converted_at == paid
        assert got.effects[0] == ("hello", "send", ENTRY + timedelta(days=1))
        if got.final[0] == "held":  # the control group converts and stays held: it measures the journey's effect
            assert got.final == ("held", "test", ("test:control",)) and len(got.effects) == 1
        else:
            assert got.final == ("exited", "goal", paid, ("test:a",)) and len(got.effects) == 1


def test_an_event_is_taken_by_one_wait_only() -> None:
    doc = {
        "name": "two clicks",
        "entry": {"kind": "event", "event": "signup"},
        "start": "first",
        "nodes": [
            {"id": "first", "kind": "wait_event", "event": "click", "timeout_seconds": 3600, "next": "second"},
            {"id": "second", "kind": "wait_event", "event": "click", "timeout_seconds": 3600, "next": "both",
             "timeout_next": "one"},
            {"id": "both", "kind": "send", "channel": "push", "material": "two_clicks"},
            {"id": "one", "kind": "send", "channel": "push", "material": "one_click"},
        ],
    }  # fmt: skip
    click = ENTRY + 5 * MINUTE
    got, _ = check(_case(doc, Person(3), ENTRY, [Happened("click", click)]))
    assert got.effects == [("one", "send", click + timedelta(hours=1))]
    got, _ = check(_case(doc, Person(3), ENTRY, [Happened("click", click), Happened("click", click)]))
    assert got.effects == [("both", "send", click)]  # two clicks in the same minute: one for each wait


def test_condition_split_takes_the_first_branch_that_holds() -> None:
    doc = {
        "name": "by orders",
        "entry": {"kind": "event", "event": "signup"},
        "start": "by_orders",
        "nodes": [
            {"id": "by_orders", "kind": "condition", "otherwise": "few", "branches": [
                {"name": "many", "when": {"all": [{"kind": "property", "property": "orders", "op": "gt", "value": 2}]},
                 "next": "many"},
                {"name": "gold", "when": {"all": [{"kind": "tag", "tag": "tier", "op": "eq", "value": "gold"},
                                                  {"kind": "segment", "segment": 1}]}, "next": "gold"}]},
            {"id": "many", "kind": "grant", "benefit": "vip_coupon"},
            {"id": "gold", "kind": "webhook", "url": "https://example.com/gold"},
            {"id": "few", "kind": "update", "set": {"nudged": True}},
        ],
    }  # fmt: skip
    gold = {"tags": {"tier": "gold"}, "segments": frozenset({1})}
    for props, extra, first in [
        ({"orders": 3}, gold, "many"),  # both hold: the first wins
        ({"orders": 2}, gold, "gold"),  # 2 > 2 does not hold
        ({"orders": 2}, {}, "few"),
        ({}, {"tags": {"tier": "gold"}}, "few"),  # a missing property fails; not in segment 1
    ]:
        got, _ = check(_case(doc, Person(1, props=props, **extra), ENTRY, []))  # type: ignore[arg-type]
        assert [e[0] for e in got.effects] == [first], (props, extra)


def _until(at: str, zone: str, weekdays: list[str] | None = None) -> dict[str, Any]:
    wait: dict[str, Any] = {"id": "wait", "kind": "wait", "until_time": at, "next": "send"}
    if weekdays:
        wait["weekdays"] = weekdays
    return {
        "name": "at a local time",
        "entry": {"kind": "event", "event": "signup"},
        "start": "wait",
        "nodes": [wait, {"id": "send", "kind": "send", "channel": "push", "material": "hello"}],
    }


def test_until_time_in_the_spring_forward_gap_is_the_first_instant_after_it() -> None:
    # New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00 UTC; 02:30 never happens that night
    entry = datetime(2026, 3, 8, 5, 0)  # 00:00 EST
    got, _ = check(_case(_until("02:30:00", "America/New_York"), Person(1, zone="America/New_York"), entry, []))
    assert got.effects == [("send", "send", datetime(2026, 3, 8, 7, 0))]
    # the next day 02:30 exists again (EDT): 06:30 UTC
    later = datetime(2026, 3, 8, 7, 1)
    got, _ = check(_case(_until("02:30:00", "America/New_York"), Person(1, zone="America/New_York"), later, []))
    assert got.effects == [("send", "send", datetime(2026, 3, 9, 6, 30))]
    # Shanghai has no DST: 02:30 CST is 18:30 UTC the day before
    got, _ = check(_case(_until("02:30:00", "Asia/Shanghai"), Person(1, zone="Asia/Shanghai"), entry, []))
    assert got.effects == [("send", "send", datetime(2026, 3, 8, 18, 30))]


def test_until_time_repeated_in_the_fall_back_is_its_first_occurrence_only() -> None:
    # New York, 2026-11-01: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST)
    ny = Person(1, zone="America/New_York")
    entry = datetime(2026, 11, 1, 4, 0)
    got, _ = check(_case(_until("01:30:00", "America/New_York"), ny, entry, []))
    assert got.effects == [("send", "send", datetime(2026, 11, 1, 5, 30))]
    # entered between the two: the repeat does not count, the next is 2026-11-02 01:30 EST
    between = datetime(2026, 11, 1, 5, 45)
    got, _ = check(_case(_until("01:30:00", "America/New_York"), ny, between, []))
    assert got.effects == [("send", "send", datetime(2026, 11, 2, 6, 30))]
    # on Tuesdays only: 2026-11-03 01:30 EST
    got, _ = check(_case(_until("01:30:00", "America/New_York", ["tue"]), ny, between, []))
    assert got.effects == [("send", "send", datetime(2026, 11, 3, 6, 30))]


def test_until_property_missing_or_past() -> None:
    doc = {
        "name": "renewal",
        "entry": {"kind": "event", "event": "signup"},
        "start": "wait",
        "nodes": [
            {"id": "wait", "kind": "wait", "until_property": "renew", "offset_seconds": -86400, "next": "send"},
            {"id": "send", "kind": "send", "channel": "email", "material": "renew_soon"},
        ],
    }
    entry = datetime(2026, 3, 6, 12, 0)
    sh = {"zone": "Asia/Shanghai"}
    got, _ = check(_case(doc, Person(1, **sh), entry, []))  # type: ignore[arg-type]
    assert got.final == ("exited", "no_date:renew", entry, ()) and got.effects == []
    got, _ = check(_case(doc, Person(1, props={"renew": "2026-03-09"}, **sh), entry, []))  # type: ignore[arg-type]
    # a day before local midnight 2026-03-09 in Shanghai (16:00 UTC on 03-08) is 2026-03-07 16:00 UTC
    assert got.effects == [("send", "send", datetime(2026, 3, 7, 16, 0))]
    got, _ = check(_case(doc, Person(1, props={"renew": "2026-03-01"}, **sh), entry, []))  # type: ignore[arg-type]
    assert got.effects == [("send", "send", entry)]  # already past: on at once


def test_an_event_at_a_due_time_does_not_depend_on_the_runtime_order() -> None:
    """A wait that ends at ``t`` leads to a wait_event whose window ``since <= t`` takes an event at ``t``. Whether
    the runtime first resumes for the due timer and then for the event, or resumes once with the event, the person
    must end up in the same place: the event was not consumed by the plain wait, so it reaches the node after it."""
    doc = {
        "name": "wait, then wait for a click",
        "entry": {"kind": "event", "event": "signup"},
        "start": "pause",
        "nodes": [
            {"id": "pause", "kind": "wait", "seconds": 60, "next": "click"},
            {"id": "click", "kind": "wait_event", "event": "click", "timeout_seconds": 3600, "next": "thanks"},
            {"id": "thanks", "kind": "send", "channel": "email", "material": "thanks"},
        ],
    }
    journey, person, due = parse(doc), Person(5), ENTRY + MINUTE
    click = Happened("click", due)
    first = enter(journey, "s", person, ENTRY)
    assert first.position is not None and first.wake_at == due
    # the timer first, then the event: the click is taken at `due`
    timer = resume(journey, "s", first.position, person, due)
    assert timer.position is not None and timer.position.node == "click"
    then_event = resume(journey, "s", timer.position, person, due, click)
    assert [(e.node, e.at) for e in then_event.effects] == [("thanks", due)]
    # the event alone at `due` (the runtime saw it before its timer fired): the same must happen
    at_once = resume(journey, "s", first.position, person, due, click)
    assert [(e.node, e.at) for e in at_once.effects] == [("thanks", due)], at_once
