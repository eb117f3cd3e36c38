"""Attribution: hand cases with known credit, the engine against a brute-force reference on random logs, bad input."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import BASE_MS, CHANNELS, Ev, event_logs, fresh_project, load, reference_events, shift
from tests.query.reference_attribution import AttributionOptions, reference_attribution
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

HOUR = 3_600_000
DAY = date(2026, 1, 5)
RANGE = {"from": "2026-01-05", "to": "2026-01-20"}
UNIT_MS = {"minute": 60_000, "hour": HOUR, "day": 24 * HOUR, "week": 7 * 24 * HOUR}


def ev(event: str, who: str, hours: float, event_id: str, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {
        "type": "track",
        "event": event,
        "distinct_id": who,
        "time": BASE_MS + int(hours * HOUR),
        "event_id": event_id,
        "properties": props,
    }


def run(project: ProjectStore, **definition: Any) -> dict[str, Any]:
    doc = {"kind": "attribution", "date_range": RANGE, "target": {"event": "pay"}, **definition}
    return Engine(project, "UTC").run(doc, today=date(2026, 1, 20), use_cache=False).result


def credits(result: dict[str, Any], model: str) -> dict[str, float]:
    return {c["channel"]: c["credit"][model]["conversions"] for c in result["channels"]}


def assert_close(got: Any, want: Any, where: str = "result") -> None:
    """Equal structures; floats equal within 1e-9 (relative, or absolute near zero)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: keys {got} != {want}"
        for k in want:
            assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool) and isinstance(got, int | float):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {got} != {want}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


# hand cases ---------------------------------------------------------------------------------------------------------
TOUCHES = [{"event": "push"}, {"event": "banner"}, {"event": "coupon"}]


@pytest.fixture(scope="module")
def three_touches(ws: Workspace) -> ProjectStore:
    """L0: push, banner, coupon one day apart, then pay 100. a1: pay 10 with no touch."""
    _, project = fresh_project(ws, "UTC")
    load(
        project,
        [
            ev("push", "L0", 0, "e1"),
            ev("banner", "L0", 24, "e2"),
            ev("coupon", "L0", 48, "e3"),
            ev("pay", "L0", 72, "e4", amount=100.0),
            ev("pay", "a1", 5, "e5", amount=10.0),
        ],
    )
    return project


def test_three_touches_under_each_model(three_touches: ProjectStore) -> None:
    result = run(
        three_touches, touches=TOUCHES, model="all", half_life={"value": 1, "unit": "day"}, value_property="amount"
    )
    assert (result["conversions"], result["converters"], result["attributed"], result["value"]) == (2, 2, 1, 110.0)
    want = {
        "first": {"push": 1.0, "banner": 0.0, "coupon": 0.0},
        "last": {"push": 0.0, "banner": 0.0, "coupon": 1.0},
        "linear": {"push": 1 / 3, "banner": 1 / 3, "coupon": 1 / 3},
        "position": {"push": 0.4, "banner": 0.2, "coupon": 0.4},
        # ages 3, 2, 1 days with a one-day half-life: 1/8, 1/4, 1/2 → 1/7, 2/7, 4/7
        "time_decay": {"push": 1 / 7, "banner": 2 / 7, "coupon": 4 / 7},
    }
    for model, shares in want.items():
        assert_close(credits(result, model), {**shares, "$none": 1.0}, model)
        by = {c["channel"]: c["credit"][model] for c in result["channels"]}
        assert_close(by["banner"]["value"], shares["banner"] * 100.0)
        assert_close(by["banner"]["share"], shares["banner"] / 2)
        assert_close(by["$none"]["value"], 10.0)
    assert [c["touched_conversions"] for c in result["channels"]] == [1, 1, 1, 1]
    for model in ("first", "last"):  # every channel in the lookback assisted, whoever got the credit
        single = run(three_touches, touches=TOUCHES, model=model)
        assert [c["touched_conversions"] for c in single["channels"]] == [1, 1, 1, 1]


def test_position_with_one_and_two_touches(ws: Workspace) -> None:
    _, project = fresh_project(ws, "UTC")
    load(
        project,
        [
            ev("push", "L0", 0, "e1"),
            ev("pay", "L0", 1, "e2"),
            ev("push", "L1", 0, "e3"),
            ev("banner", "L1", 1, "e4"),
            ev("pay", "L1", 2, "e5"),
        ],
    )
    result = run(project, touches=TOUCHES, model="position")
    assert_close(credits(result, "position"), {"push": 1.5, "banner": 0.5, "coupon": 0.0, "$none": 0.0})
    assert result["channels"][0]["credit"]["position"]["value"] is None


def test_ties_lookback_edge_and_merges(ws: Workspace) -> None:
    """A touch at the conversion's instant counts only if its event_id sorts first; a touch exactly one lookback old
    counts, one a millisecond older does not; an anonymous touch counts once the id is bound to the buyer."""
    _, project = fresh_project(ws, "UTC")
    signup = {
        "type": "track_signup",
        "event": "$SignUp",
        "distinct_id": "L2",
        "original_id": "a2",
        "time": BASE_MS,
        "event_id": "s_a2",
        "properties": {"$is_login_id": True},
    }
    load(
        project,
        [
            ev("push", "L0", 10, "e0"),  # same instant as the pay, sorts before it: a touch
            ev("pay", "L0", 10, "e1"),
            ev("banner", "L0", 10, "e2"),  # same instant, sorts after: not a touch
            ev("coupon", "L1", 24, "f1"),  # exactly 24 h before the pay
            ev("banner", "L1", 24 - 1 / 3_600_000, "f0"),  # 1 ms older than that
            ev("pay", "L1", 48, "f2"),
            ev("push", "a2", 30, "g0"),
            signup,
            ev("pay", "L2", 31, "g1"),
        ],
        chunks=3,
    )
    result = run(project, touches=TOUCHES, model="linear", lookback={"value": 1, "unit": "day"})
    assert_close(credits(result, "linear"), {"push": 2.0, "banner": 0.0, "coupon": 1.0, "$none": 0.0})
    assert result["converters"] == 3


def test_first_matching_touch_entry_wins(three_touches: ProjectStore) -> None:
    touches = [{"event": "$any", "name": "anything"}, {"event": "push"}]
    result = run(three_touches, touches=touches, model="linear")
    assert_close(credits(result, "linear"), {"anything": 1.0, "push": 0.0, "$none": 1.0})


def test_lookback_excludes_old_touches(three_touches: ProjectStore) -> None:
    result = run(three_touches, touches=TOUCHES, model="first", lookback={"value": 36, "unit": "hour"})
    assert_close(credits(result, "first"), {"push": 0.0, "banner": 0.0, "coupon": 1.0, "$none": 1.0})


# bad input ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"touches": [{"event": "push"}, {"event": "push"}]}, "appear more than once"),
        ({"touches": [{"event": "push", "name": "$none"}]}, "unattributed"),
        ({"touches": TOUCHES, "model": "last", "half_life": {"value": 1}}, "half_life"),
        ({"touches": TOUCHES, "value_property": "distinct_id"}, "not a numeric event property"),
        ({"touches": TOUCHES, "value_property": "price"}, "unknown event property 'price'"),
        ({"touches": TOUCHES, "lookback": {"value": 0}}, "lookback"),
        ({"touches": TOUCHES, "lookback": {"value": 400, "unit": "day"}}, "at most 366 days"),
        ({"touches": TOUCHES, "lookback": {"value": 1, "unit": "month"}}, "lookback"),
        ({"touches": []}, "touches"),
        ({"touches": TOUCHES, "model": "shapley"}, "model"),
        ({"touches": [{"event": "push", "filters": [{"property": "nope", "value": 1}]}]}, "unknown event property"),
    ],
)
def test_bad_definitions_are_clear(three_touches: ProjectStore, definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        run(three_touches, **definition)


def test_sql_snapshots(three_touches: ProjectStore) -> None:
    engine = Engine(three_touches, "Asia/Shanghai")
    common = {"kind": "attribution", "date_range": {"last": 14}, "target": {"event": "pay"}}
    assert_snapshot("attribution_last", engine, {**common, "touches": TOUCHES})
    assert_snapshot(
        "attribution_all_value",
        engine,
        {
            **common,
            "touches": [{"event": "push", "filters": [{"property": "lib", "value": "js"}]}, {"event": "coupon"}],
            "model": "all",
            "lookback": {"value": 3, "unit": "day"},
            "value_property": "amount",
            "filters": [{"property": "amount", "op": "gt", "value": 0}],
        },
    )


# property: engine == reference --------------------------------------------------------------------------------------
# few names over two days: dense touches, conversions with several of them
EVENTS_USED = ("push", "view", "pay", "other")
NAMES = (*EVENTS_USED, "$SignUp")


def ref_strategy(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    plain = st.sampled_from(names).map(lambda e: {"event": e})
    filtered = st.tuples(st.sampled_from(names), st.sampled_from(CHANNELS)).map(
        lambda t: {"event": t[0], "filters": [{"property": "channel", "value": t[1]}]}
    )
    return st.one_of(plain, filtered)


def predicate(ref: dict[str, Any]) -> Any:
    def matches(e: Ev) -> bool:
        if ref["event"] != "$any" and e.event != ref["event"]:
            return False
        return all(e.channel == f["value"] for f in ref.get("filters", []))

    return matches


GLOBAL_FILTERS: list[tuple[list[dict[str, Any]], Any]] = [
    ([], lambda e: True),
    ([{"property": "amount", "op": "gt", "value": 40}], lambda e: e.amount is not None and e.amount > 40),
    ([{"property": "channel", "op": "neq", "value": "a"}], lambda e: e.channel != "a"),
]

# multiples of the logs' 15-minute grid, so touches exactly one lookback before a conversion are common
durations = st.one_of(
    st.integers(1, 16).map(lambda v: {"value": 15 * v, "unit": "minute"}),
    st.integers(1, 8).map(lambda v: {"value": v, "unit": "hour"}),
    st.just({"value": 1, "unit": "day"}),
)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    touches = draw(st.lists(ref_strategy((*NAMES, "$any")), min_size=1, max_size=3))
    d: dict[str, Any] = {
        "target": draw(ref_strategy(NAMES)),
        "touches": [{**t, "name": f"c{i}"} for i, t in enumerate(touches)],
        "lookback": draw(durations),
        "model": draw(st.sampled_from(["first", "last", "linear", "position", "time_decay", "all"])),
        "filters_index": draw(st.integers(0, len(GLOBAL_FILTERS) - 1)),
    }
    if d["model"] in ("time_decay", "all") and draw(st.booleans()):
        d["half_life"] = draw(durations)
    if draw(st.booleans()):
        d["value_property"] = "amount"
    start_day = draw(st.integers(0, 1))
    d["date_range"] = {
        "from": (DAY + timedelta(days=start_day)).isoformat(),
        "to": (DAY + timedelta(days=start_day + draw(st.integers(0, 2)))).isoformat(),
    }
    return d


@pytest.mark.parametrize(
    ("tz", "days"),
    [("Asia/Shanghai", 0), ("America/New_York", 61)],  # +61 days puts the log across New York's DST start (Mar 8)
)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=event_logs(max_events=40, days=2, events=EVENTS_USED), d=definitions(), chunks=st.integers(1, 3))
def test_engine_matches_reference(
    ws: Workspace, tz: str, days: int, records: list[dict[str, Any]], d: dict[str, Any], chunks: int
) -> None:
    records = shift(records, days)
    _, project = fresh_project(ws, tz)
    load(project, records, chunks=chunks)
    filters, keep = GLOBAL_FILTERS[d.pop("filters_index")]
    first = date.fromisoformat(d["date_range"]["from"]) + timedelta(days=days)
    last = date.fromisoformat(d["date_range"]["to"]) + timedelta(days=days)
    doc = {
        **d,
        "kind": "attribution",
        "filters": filters,
        "date_range": {"from": first.isoformat(), "to": last.isoformat()},
    }
    got = Engine(project, tz).run(doc, today=last, use_cache=False).result
    half_life = d.get("half_life", {"value": 7, "unit": "day"})
    options = AttributionOptions(
        first=first,
        last=last,
        timezone=tz,
        target=predicate(d["target"]),
        touches=[(t["name"], predicate(t)) for t in d["touches"]],
        lookback_ms=d["lookback"]["value"] * UNIT_MS[d["lookback"]["unit"]],
        model=d["model"],
        half_life_ms=half_life["value"] * UNIT_MS[half_life["unit"]],
        with_value="value_property" in d,
        keep=keep,
    )
    assert got.pop("partial") is True  # the range ends today (tests/query/test_partial_periods.py has the rest)
    assert_close(got, reference_attribution(reference_events(records), options))
