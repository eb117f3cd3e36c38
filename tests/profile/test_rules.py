"""Segment rules: the compiled SQL against the plain-Python reference on random logs (identity merges, ties,
time-zone day boundaries, the 2026-03-08 daylight-saving change), and named examples of every condition."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.profile.profile_logs import CITIES, ProfileLog, load_profile_log, profile_logs, reference_people
from tests.profile.reference_rules import PROPERTY_KINDS, Snapshots, TagRef, World, evaluate, install
from tests.query.logs import EVENTS, fresh_project, person_names, reference_events
from userloop.core.errors import ValidationError
from userloop.profile.rules import parse_rule, referenced_segments, referenced_tags
from userloop.profile.rulesql import RuleContext, TagInfo, compile_rule, count_rule, model_fields
from userloop.query.compile import render
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

TZS = ("Asia/Shanghai", "America/New_York")
SETTINGS = settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TIERS = ("low", "mid", "high")
TAGS = {"tier": TagInfo("enum", TIERS), "score": TagInfo("number"), "since": TagInfo("date")}
MODEL_KINDS = {"prob": "number", "tier": "string", "flag": "bool"}
SEGMENTS = (7, 8)


# running both sides -------------------------------------------------------------------------------------------------
def run_rule(project: ProjectStore, rctx: RuleContext, rule: Any) -> set[str]:
    names = person_names(project)
    with project.store.lock:
        rows = project.con.execute(render(compile_rule(rule, rctx))).fetchall()
    return {names[r[0]] for r in rows}


def context(project: ProjectStore, w: World) -> RuleContext:
    ctx = Engine(project, w.timezone).context(w.today)
    return RuleContext(ctx=ctx, tags=dict(TAGS), models=model_fields(project), segments=set(w.segments))


def world_of(log: ProfileLog, tz: str, today: date) -> World:
    return World(tz, today, reference_events(log.events), reference_people(log))


def check(project: ProjectStore, rctx: RuleContext, w: World, rule: dict[str, Any]) -> None:
    got = run_rule(project, rctx, rule)
    want = evaluate(rule, w)
    assert got == want, (
        f"rule {json.dumps(rule, ensure_ascii=False)} today {w.today} ({w.timezone})\n"
        f"engine only: {sorted(got - want)}  reference only: {sorted(want - got)}\n"
        f"{render(compile_rule(rule, rctx))}"
    )


# random rules ---------------------------------------------------------------------------------------------------------
def iso(day: date) -> str:
    return day.isoformat()


@st.composite
def windows(draw: st.DrawFn, start: date) -> dict[str, Any]:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        w: dict[str, Any] = {"last": draw(st.integers(1, 20))}
        if draw(st.integers(0, 3)) == 0:
            w["include_today"] = False
        return w
    first = start + timedelta(days=draw(st.integers(-2, 10)))
    if kind == 1:
        return {"from": iso(first), "to": iso(first + timedelta(days=draw(st.integers(0, 8))))}
    return {"from": iso(first)}


def value_for(draw: st.DrawFn, op: str, values: st.SearchStrategy[Any]) -> Any:
    if op in ("is_set", "is_not_set"):
        return None
    if op in ("in", "not_in"):
        return draw(st.lists(values, min_size=1, max_size=3))
    if op == "between":
        return sorted(draw(st.lists(values, min_size=2, max_size=2)))
    return draw(values)


@st.composite
def compared(draw: st.DrawFn, kind: str, start: date, order: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An operator and a value for a value of ``kind``."""
    basic = ["eq", "neq", "in", "not_in", "is_set", "is_not_set"]
    relative = ["in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days"]
    ordered = ["gt", "gte", "lt", "lte", "between"]
    values: st.SearchStrategy[Any]
    if kind == "string":
        ops, values = [*basic, "contains", "not_contains", "gt", "lte"], st.sampled_from((*CITIES, "海", "O'", "mid"))
    elif kind == "enum":
        ops, values = basic + ordered, st.sampled_from(order or TIERS)
    elif kind == "number":
        ops, values = basic + ordered, st.sampled_from((0, 10, 20, 25, 30, 40, 50, 60))
    elif kind == "bool":
        ops, values = ["eq", "neq", "is_set", "is_not_set"], st.booleans()
    elif kind == "date":
        ops = [*relative, *relative, "eq", "gt", "lt", "between", "is_set", "is_not_set"]
        values = st.integers(-40, 40).map(lambda k: iso(start + timedelta(days=k)))
        if draw(st.booleans()):
            values = st.sampled_from(("1990-01-02", "1995-06-01", "2000-02-29", "2003-03-10"))
    else:  # datetime: instants on the log's days at any quarter hour
        ops = [*relative, *relative, "gt", "lt", "between", "is_set", "is_not_set"]
        values = st.integers(-96, 20 * 96).map(
            lambda k: (datetime(start.year, start.month, start.day) + timedelta(minutes=15 * k)).isoformat(sep=" ")
        )
    op = draw(st.sampled_from(ops))
    if op in relative:
        return {"op": op, "value": draw(st.integers(1 if op == "in_last_days" else 0, 25))}
    return {"op": op, "value": value_for(draw, op, values)}


FILTERS = (
    {"property": "channel", "op": "eq", "value": "a"},
    {"property": "amount", "op": "gt", "value": 40},
    {"property": "amount", "op": "between", "value": [10, 60]},
    {"property": "channel", "op": "not_in", "value": ["b", "c"]},
    {"property": "amount", "op": "is_not_set"},
    {"property": "vip", "source": "user", "op": "eq", "value": True},
    {"property": "city", "source": "user", "op": "neq", "value": "上海"},
)
WITHIN = ({"value": 30, "unit": "minute"}, {"value": 3, "unit": "hour"}, {"value": 1, "unit": "day"},
          {"value": 4, "unit": "day"}, {"value": 7, "unit": "day"})  # fmt: skip


@st.composite
def event_refs(draw: st.DrawFn, names: tuple[str, ...] = (*EVENTS, "$any")) -> dict[str, Any]:
    ref: dict[str, Any] = {"event": draw(st.sampled_from(names))}
    if draw(st.integers(0, 2)) == 0:
        ref["filters"] = [draw(st.sampled_from(FILTERS))]
    return ref


@st.composite
def comparisons(draw: st.DrawFn, top: int) -> dict[str, Any]:
    op = draw(st.sampled_from(("gte", "lte", "eq", "gt", "lt", "between")))
    if op == "between":
        low = draw(st.integers(0, top))
        return {"op": op, "value": [low, low + draw(st.integers(0, top))]}
    return {"op": op, "value": draw(st.integers(0, top))}


@st.composite
def conditions(draw: st.DrawFn, start: date, today: date) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ("property", "property", "tag", "model", "segment", "event", "event", "first_time", "sequence",
             "regular", "stopped", "restarted")
        )
    )  # fmt: skip
    on = st.one_of(
        st.none(),
        st.integers(0, 8).map(lambda k: {"days_ago": k}),
        st.integers(0, 8).map(lambda k: iso(today - timedelta(days=k))),
    )
    if kind == "property":
        prop = draw(st.sampled_from(list(PROPERTY_KINDS)))
        return {"type": "property", "property": prop, **draw(compared(PROPERTY_KINDS[prop], start))}
    if kind == "tag":
        tag = draw(st.sampled_from(list(TAGS)))
        c = {"type": "tag", "tag": tag, **draw(compared(TAGS[tag].type, today, TAGS[tag].order))}
        if (day := draw(on)) is not None:
            c["on"] = day
        return c
    if kind == "model":
        field = draw(st.sampled_from(list(MODEL_KINDS)))
        return {"type": "model", "model": "test", "field": field, **draw(compared(MODEL_KINDS[field], today))}
    if kind == "segment":
        c = {"type": "segment", "segment": draw(st.sampled_from(SEGMENTS)), "member": draw(st.booleans())}
        if (day := draw(on)) is not None:
            c["on"] = day
        return c
    ref = draw(event_refs())
    if kind == "event":
        c = {"type": "event", **ref, "did": draw(st.booleans()), "window": draw(windows(start))}
        which = draw(st.integers(0, 2))
        if which == 1:
            c["count"] = draw(comparisons(4))
        elif which == 2:
            c["sum"] = {"property": "amount", **draw(comparisons(120))}
        return c
    if kind == "first_time":
        return {"type": "first_time", **ref, "window": draw(windows(start))}
    if kind == "sequence":
        steps = draw(st.lists(event_refs((*EVENTS[:3], "$any")), min_size=2, max_size=3))
        return {"type": "sequence", "steps": steps, "within": draw(st.sampled_from(WITHIN)),
                "window": draw(windows(start))}  # fmt: skip
    if kind == "regular":
        of = draw(st.integers(1, 3))
        return {"type": "regular", **ref, "weeks": {"min": draw(st.integers(1, of)), "of": of}}
    if kind == "stopped":
        return {"type": "stopped", **ref, "days": draw(st.integers(1, 10))}
    if draw(st.booleans()):  # a busy event, so that some people restart
        ref = {"event": draw(st.sampled_from(("$any", "view")))}
    return {"type": "restarted", **ref, "days": draw(st.integers(1, 3)), "gap_days": draw(st.integers(1, 3))}


def rules(start: date, today: date) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        conditions(start, today),
        lambda parts: st.one_of(
            st.lists(parts, max_size=3).map(lambda xs: {"all": xs}),
            st.lists(parts, max_size=3).map(lambda xs: {"any": xs}),
            parts.map(lambda x: {"not": x}),
        ),
        max_leaves=4,
    )


@st.composite
def snapshots(draw: st.DrawFn, people: list[str], values: st.SearchStrategy[Any], today: date) -> Snapshots:
    first = today - timedelta(days=draw(st.integers(-2, 8)))
    dates = [first, first + timedelta(days=draw(st.integers(1, 6)))][: draw(st.integers(1, 2))]
    return Snapshots([(d, draw(per_person(people, values))) for d in dates])


@st.composite
def per_person(draw: st.DrawFn, people: list[str], values: st.SearchStrategy[Any]) -> dict[str, Any]:
    """A value for most people (a missing value now and then)."""
    drawn = draw(st.lists(st.one_of(st.none(), values, values), min_size=len(people), max_size=len(people)))
    return {p: v for p, v in zip(people, drawn, strict=True) if v is not None}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[ProfileLog, World, list[dict[str, Any]], int]:
    log = draw(profile_logs(max_events=45, days=8))
    today = log.start + timedelta(days=draw(st.integers(-1, 14)))
    w = world_of(log, draw(st.sampled_from(TZS)), today)
    people = sorted(w.people)
    w.tags = {
        "tier": TagRef("enum", TIERS, draw(snapshots(people, st.sampled_from(TIERS), today))),
        "score": TagRef("number", None, draw(snapshots(people, st.sampled_from((0.0, 10.0, 20.0, 30.0)), today))),
        "since": TagRef(
            "date", None, draw(snapshots(people, st.integers(-40, 40).map(lambda k: today + timedelta(k)), today))
        ),
    }
    run_dates = sorted(draw(st.sets(st.integers(-4, 2), min_size=1, max_size=3)))
    row = st.fixed_dictionaries(
        {
            "prob": st.sampled_from((0.0, 10.0, 20.0, 30.0)),
            "tier": st.sampled_from((*CITIES, "mid")),
            "flag": st.one_of(st.none(), st.booleans()),
        }
    )
    w.models = {"test": [(today + timedelta(d), draw(per_person(people, row))) for d in run_dates]}
    w.model_kinds = {"test": MODEL_KINDS}
    w.segments = {s: draw(snapshots(people, st.booleans(), today)) for s in SEGMENTS}
    start = log.start
    return log, w, draw(st.lists(rules(start, today), min_size=4, max_size=7)), draw(st.integers(1, 2))


@SETTINGS
@given(scenario=scenarios())
def test_rules_equal_the_reference(
    ws: Workspace, scenario: tuple[ProfileLog, World, list[dict[str, Any]], int]
) -> None:
    log, w, drawn, chunks = scenario
    _, project = fresh_project(ws, w.timezone)
    load_profile_log(project, log, chunks=chunks)
    install(project, w)
    rctx = context(project, w)
    for rule in drawn:
        check(project, rctx, w, rule)


# named examples ----------------------------------------------------------------------------------------------------
SHANGHAI = "Asia/Shanghai"
TODAY = date(2026, 3, 10)


def local_ms(text: str, tz: str = SHANGHAI) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def track(who: str, event: str, at: str, eid: str, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {"type": "track", "event": event, "distinct_id": who, "time": local_ms(at), "event_id": eid,
            "properties": props}  # fmt: skip


def profile(who: str, i: int, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {"type": "profile_set", "distinct_id": who, "time": local_ms("2025-01-01 00:00") + i, "properties": props}


NAMED_LOG = ProfileLog(
    profiles=[
        profile("L1", 0, city="上海", age=30, vip=True, birthday="1990-01-02"),
        profile("L2", 1, age=50),
        profile("a2", 2, vip=True, city="北京", age=20),  # merges into L2: L2's age wins, a2 fills city and vip
        profile("a3", 3, birthday="2000-02-29", city="杭州"),
    ],
    events=[
        track("L1", "pay", "2026-03-01 10:00", "e01", amount=30),
        track("L1", "pay", "2026-03-05 10:00", "e02", amount=40),
        track("L1", "cart", "2026-03-09 09:00", "e03"),
        track("L1", "pay", "2026-03-09 09:30", "e04", amount=50),
        track("L1", "pay", "2026-03-09 23:30", "e05", amount=0),  # 15:30 UTC: still 9 March in Shanghai
        track("a2", "view", "2026-02-01 12:00", "e06"),
        {
            "type": "track_signup",
            "event": "$SignUp",
            "distinct_id": "L2",
            "original_id": "a2",
            "time": local_ms("2026-02-01 12:05"),
            "event_id": "s1",
            "properties": {"$is_login_id": True},
        },
        track("L2", "view", "2026-03-10 00:10", "e07"),  # 9 March 16:10 UTC: already 10 March in Shanghai
        track("a3", "view", "2026-02-10 10:00", "e08"),
        track("a4", "view", "2026-01-20 10:00", "e09"),
        track("a4", "view", "2026-03-09 10:00", "e10"),
        track("a5", "view", "2026-02-24 10:00", "e11"),
        track("a5", "view", "2026-03-03 10:00", "e12"),
        track("a5", "view", "2026-03-10 10:00", "e13"),
        track("a6", "view", "2026-03-10 23:59", "e14"),
        track("a6", "pay", "2026-03-11 00:00", "e15", amount=99),  # tomorrow: never counts
    ],
)
EVERYONE = {"L1", "L2", "a3", "a4", "a5", "a6"}


@pytest.fixture(scope="module")
def named(ws: Workspace) -> tuple[ProjectStore, RuleContext, World]:
    return named_world(ws)


def named_world(ws: Workspace) -> tuple[ProjectStore, RuleContext, World]:
    """The named examples' project (a fresh one in ``ws``), its rule context and the reference world."""
    _, project = fresh_project(ws, SHANGHAI)
    load_profile_log(project, NAMED_LOG)
    w = world_of(NAMED_LOG, SHANGHAI, TODAY)
    w.tags = {
        "tier": TagRef("enum", TIERS, Snapshots([(date(2026, 3, 1), {"L1": "low", "a3": "high"}),
                                                 (date(2026, 3, 8), {"L1": "high", "a4": "mid"})])),
        "score": TagRef("number", None, Snapshots([(date(2026, 3, 1), {"L1": 10.0})])),
        "since": TagRef("date", None, Snapshots([(date(2026, 3, 1), {"a5": date(2026, 3, 4)})])),
    }  # fmt: skip
    w.models = {"test": [(date(2026, 3, 1), {"L1": {"prob": 0.9, "tier": "high", "flag": True}}),
                         (date(2026, 3, 12), {"L1": {"prob": 0.1, "tier": "low", "flag": False}})]}  # fmt: skip
    w.model_kinds = {"test": MODEL_KINDS}
    w.segments = {7: Snapshots([(date(2026, 3, 1), {"L1": True, "a3": False}), (date(2026, 3, 9), {"a4": True})]),
                  8: Snapshots([(date(2026, 3, 9), {"a3": True})])}  # fmt: skip
    install(project, w)
    return project, context(project, w), w


def ev(event: str, window: Any = None, **more: Any) -> dict[str, Any]:
    return {"type": "event", "event": event, "window": window or {"last": 30}, **more}


NAMED: dict[str, tuple[dict[str, Any], set[str]]] = {
    # profiles, identity merges
    "merged city from the anonymous profile": ({"type": "property", "property": "city", "value": "北京"}, {"L2"}),
    "login profile wins a merge": ({"type": "property", "property": "age", "op": "eq", "value": 50}, {"L2"}),
    "vip": ({"type": "property", "property": "vip", "value": True}, {"L1", "L2"}),
    "neq keeps people without a value": (
        {"type": "property", "property": "city", "op": "neq", "value": "上海"}, EVERYONE - {"L1"}),
    "not of a comparison keeps people without a value": (
        {"not": {"type": "property", "property": "city", "op": "eq", "value": "上海"}}, EVERYONE - {"L1"}),
    "contains": ({"type": "property", "property": "city", "op": "contains", "value": "海"}, {"L1"}),
    # profile values are what the profile holds now: a6 was last seen tomorrow
    "last seen in the last day": (
        {"type": "property", "property": "last_seen", "op": "in_last_days", "value": 1}, {"L2", "a5"}),
    "last seen in the next day": (
        {"type": "property", "property": "last_seen", "op": "in_next_days", "value": 1}, {"L2", "a5", "a6"}),
    "first seen before 30 days ago": (
        {"type": "property", "property": "first_seen", "op": "before_days_ago", "value": 30}, {"L2", "a4"}),
    # behaviour
    "paid at least 3 times in 30 days": (ev("pay", count={"op": "gte", "value": 3}), {"L1"}),
    "paid at most 2 times includes never": (ev("pay", count={"op": "lte", "value": 2}), EVERYONE - {"L1"}),
    "paid exactly 0 times": (ev("pay", count={"op": "eq", "value": 0}), EVERYONE - {"L1"}),
    "did not pay": (ev("pay", did=False), EVERYONE - {"L1"}),
    "spent at least 90 from 5 to 9 March": (
        ev("pay", {"from": "2026-03-05", "to": "2026-03-09"}, sum={"property": "amount", "op": "gte", "value": 90}),
        {"L1"}),
    "spent at most 40 to 8 March": (
        ev("pay", {"from": "2026-03-05", "to": "2026-03-08"}, sum={"property": "amount", "op": "lte", "value": 40}),
        EVERYONE),
    "local day boundary: 23:30 counts on 9 March": (
        ev("pay", {"from": "2026-03-09", "to": "2026-03-09"}, count={"op": "eq", "value": 3}), set()),
    "local day boundary: two payments on 9 March": (
        ev("pay", {"from": "2026-03-09", "to": "2026-03-09"}, count={"op": "eq", "value": 2}), {"L1"}),
    "local day boundary: 00:10 is 10 March": (
        ev("view", {"from": "2026-03-10", "to": "2026-03-10"}), {"L2", "a5", "a6"}),
    "filters": (ev("pay", filters=[{"property": "amount", "op": "gt", "value": 45}]), {"L1"}),
    "events after today never count": (ev("pay", {"from": "2026-03-11", "to": "2026-03-20"}), set()),
    "first payment in the last 7 days": ({"type": "first_time", "event": "pay", "window": {"last": 7}}, set()),
    "first payment in the last 10 days": ({"type": "first_time", "event": "pay", "window": {"last": 10}}, {"L1"}),
    "cart then pay within an hour": (
        {"type": "sequence", "steps": [{"event": "cart"}, {"event": "pay"}], "within": {"value": 1, "unit": "hour"},
         "window": {"last": 7}}, {"L1"}),
    "cart then pay within 10 minutes": (
        {"type": "sequence", "steps": [{"event": "cart"}, {"event": "pay"}],
         "within": {"value": 10, "unit": "minute"}, "window": {"last": 7}}, set()),
    "pay then cart never happened": (
        {"type": "sequence", "steps": [{"event": "pay"}, {"event": "cart"}], "within": {"value": 3, "unit": "day"},
         "window": {"last": 30}}, set()),
    "viewed in 3 of the last 4 weeks": (
        {"type": "regular", "event": "view", "weeks": {"min": 3, "of": 4}}, {"a5"}),
    "stopped viewing 20 days ago": ({"type": "stopped", "event": "view", "days": 20}, {"a3"}),
    "restarted viewing after a month (merged history counts)": (
        {"type": "restarted", "event": "view", "days": 7, "gap_days": 30}, {"L2", "a4"}),
    # tags, models, segments
    "tier at least mid now": ({"type": "tag", "tag": "tier", "op": "gte", "value": "mid"}, {"L1", "a4"}),
    "tier at least mid on 5 March": (
        {"type": "tag", "tag": "tier", "op": "gte", "value": "mid", "on": "2026-03-05"}, {"a3"}),
    "tier low 9 days ago": ({"type": "tag", "tag": "tier", "value": "low", "on": {"days_ago": 9}}, {"L1"}),
    "tier not high keeps people without a tier": (
        {"type": "tag", "tag": "tier", "op": "neq", "value": "high"}, EVERYONE - {"L1"}),
    "no tier before the first run": (
        {"type": "tag", "tag": "tier", "op": "is_not_set", "on": "2026-02-20"}, EVERYONE),
    "tier between low and mid": (
        {"type": "tag", "tag": "tier", "op": "between", "value": ["low", "mid"]}, {"a4"}),
    "date tag in the last 7 days": ({"type": "tag", "tag": "since", "op": "in_last_days", "value": 7}, {"a5"}),
    "model run on or before today": ({"type": "model", "model": "test", "field": "prob", "op": "gt", "value": 0.5},
                                     {"L1"}),
    "model field is set": ({"type": "model", "model": "test", "field": "tier", "op": "is_set"}, {"L1"}),
    "segment member now": ({"type": "segment", "segment": 7}, {"a4"}),
    "segment member on 5 March": ({"type": "segment", "segment": 7, "on": "2026-03-05"}, {"L1"}),
    "not in segment": ({"type": "segment", "segment": 7, "member": False}, EVERYONE - {"a4"}),
    "in either segment": ({"any": [{"type": "segment", "segment": 7}, {"type": "segment", "segment": 8}]},
                          {"a3", "a4"}),
    # groups
    "empty all is everyone": ({"all": []}, EVERYONE),
    "empty any is no one": ({"any": []}, set()),
    "nested groups": (
        {"any": [{"all": [{"type": "property", "property": "vip", "value": True},
                          {"not": ev("pay", count={"op": "gte", "value": 3})}]},
                 {"type": "stopped", "event": "view", "days": 20}]}, {"L2", "a3"}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(NAMED))
def test_named_example(named: tuple[ProjectStore, RuleContext, World], name: str) -> None:
    project, rctx, w = named
    rule, want = NAMED[name]
    assert run_rule(project, rctx, rule) == want
    assert evaluate(rule, w) == want  # the reference agrees, so the random comparisons rest on it


def test_birthday_within_7_days_across_the_new_year(ws: Workspace) -> None:
    births = {"b1": "1990-01-02", "b2": "1985-01-05", "b3": "1970-12-28", "b4": "2000-12-27", "b5": "2000-01-04",
              "b6": "2000-02-29"}  # fmt: skip
    log = ProfileLog(profiles=[profile(p, i, birthday=b) for i, (p, b) in enumerate(births.items())], events=[])
    _, project = fresh_project(ws, SHANGHAI)
    load_profile_log(project, log)

    def within(today: date, days: int) -> set[str]:
        rctx = RuleContext(ctx=Engine(project, SHANGHAI).context(today))
        rule = {"type": "property", "property": "birthday", "op": "anniversary_in_next_days", "value": days}
        got = run_rule(project, rctx, rule)
        assert got == evaluate(rule, world_of(log, SHANGHAI, today))
        return got

    assert within(date(2026, 12, 28), 7) == {"b1", "b3", "b5"}  # 28 Dec … 4 Jan
    assert within(date(2027, 2, 22), 6) == {"b6"}  # 22–28 Feb 2027: 29 Feb taken as 28 Feb
    assert within(date(2028, 2, 22), 6) == set()  # 22–28 Feb 2028: 29 Feb comes the day after
    assert within(date(2028, 2, 22), 7) == {"b6"}
    assert within(date(2026, 1, 3), 400) == set(births)


# the compiled statement --------------------------------------------------------------------------------------------
def test_count_and_references(named: tuple[ProjectStore, RuleContext, World]) -> None:
    project, rctx, _ = named
    rule = {
        "all": [
            {"type": "tag", "tag": "tier", "value": "high"},
            {"any": [{"type": "segment", "segment": 7}, {"not": {"type": "segment", "segment": 8}}]},
        ]
    }
    with project.store.lock:
        assert project.con.execute(render(count_rule(rule, rctx))).fetchall() == [(1,)]
    parsed = parse_rule(rule)
    assert referenced_tags(parsed) == {"tier"}
    assert referenced_segments(parsed) == {7, 8}


def test_model_fields_reads_per_person_tables(named: tuple[ProjectStore, RuleContext, World]) -> None:
    project, _, _ = named
    with project.store.lock:
        project.con.execute(f"CREATE TABLE {project.table('model_notes')} (run_date DATE, report VARCHAR)")
    fields = model_fields(project)
    assert fields == {"test": {"prob": "number", "tier": "string", "flag": "bool"}}


def test_behaviour_scans_only_the_window(named: tuple[ProjectStore, RuleContext, World]) -> None:
    """The window is a predicate on the events scan, so DuckDB reads only those days' row groups."""
    _, rctx, _ = named
    text = render(compile_rule(ev("pay", count={"op": "gte", "value": 3}), rctx))
    assert 'FROM "p_' in text and '"e"."time" >= CAST(' in text and "GROUP BY" in text


ERRORS = {
    "unknown tag": ({"type": "tag", "tag": "teir", "value": "x"}, "rule: unknown tag 'teir'; similar: tier"),
    "unknown model": ({"type": "model", "model": "tset", "field": "prob", "value": 1}, "unknown model 'tset'"),
    "unknown field": ({"type": "model", "model": "test", "field": "pro", "value": 1},
                      "has no field 'pro'; similar: prob"),
    "unknown segment": ({"all": [{"type": "segment", "segment": 99}]}, "all[0]: unknown segment 99"),
    "unknown property": ({"any": [{"all": []}, {"type": "property", "property": "cty", "value": "x"}]},
                         "any[1]: unknown user (profile) property 'cty'"),
    "sum of text": (ev("pay", sum={"property": "event", "op": "gte", "value": 1}), "'sum' adds up a number"),
    "relative date on a number": ({"type": "property", "property": "age", "op": "in_last_days", "value": 3},
                                  "'in_last_days' works on dates"),
    "order of an unordered value": ({"type": "model", "model": "test", "field": "flag", "op": "gt", "value": True},
                                    "yes/no"),
    "enum value not in the order": ({"type": "tag", "tag": "tier", "op": "gt", "value": "huge"},
                                    "'huge' is not a value"),
    "future on": ({"type": "segment", "segment": 7, "on": "2026-03-11"}, "after today"),
    "bad value type": ({"type": "property", "property": "age", "value": "old"}, "cannot use the value 'old'"),
    "count and sum": (ev("pay", count={"op": "gte", "value": 1}, sum={"property": "amount", "op": "gte", "value": 1}),
                      "not both"),
    "too deep": ({"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"all": []}}}}}}}}}},
                 "nest at most 8"),
    "too many": ({"any": [{"type": "segment", "segment": 7}] * 101}, "at most 100"),
    "wrong shape": ({"all": [{"type": "event", "event": "pay"}]}, "all[0]: window: Field required"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(ERRORS))
def test_clear_errors(named: tuple[ProjectStore, RuleContext, World], name: str) -> None:
    _, rctx, _ = named
    rule, message = ERRORS[name]
    with pytest.raises(ValidationError, match=None) as caught:
        compile_rule(rule, rctx)
    assert message in caught.value.message, caught.value.message


def test_depth_8_is_allowed(named: tuple[ProjectStore, RuleContext, World]) -> None:
    project, rctx, _ = named
    rule: dict[str, Any] = {"type": "segment", "segment": 7}
    for _ in range(8):
        rule = {"not": rule}
    assert run_rule(project, rctx, rule) == {"a4"}


def test_parse_accepts_json_text() -> None:
    assert parse_rule('{"all": []}') == parse_rule({"all": []})
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_rule("{")
