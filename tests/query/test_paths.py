"""Paths: hand cases with known answers, the engine against a brute-force reference on random logs, bad input."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query import reference_funnel
from tests.query.logs import BASE_MS, CHANNELS, Ev, event_logs, fresh_project, load, reference_events, shift
from tests.query.reference_paths import PathsOptions, reference_paths
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

MINUTE = 60_000
DAY = date(2026, 1, 5)
RANGE = {"from": "2026-01-05", "to": "2026-01-06"}


def ev(event: str, who: str, minute: float, event_id: str, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {
        "type": "track",
        "event": event,
        "distinct_id": who,
        "time": BASE_MS + int(minute * MINUTE),
        "event_id": event_id,
        "properties": props,
    }


def run(project: ProjectStore, tz: str, **definition: Any) -> dict[str, Any]:
    doc = {"kind": "paths", **({} if "after_funnel" in definition else {"date_range": RANGE}), **definition}
    return Engine(project, tz).run(doc, today=DAY, use_cache=False).result


def links(result: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [(lk["source"], lk["target"], lk["users"], lk["events"]) for lk in result["links"]]


def paths(result: dict[str, Any]) -> list[tuple[list[str], int, int]]:
    return [(p["events"], p["users"], p["count"]) for p in result["paths"]]


# hand cases ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shop(ws: Workspace) -> ProjectStore:
    """L0: a session view, view, cart, pay and, two hours later, view, pay. a1: view, cart."""
    _, project = fresh_project(ws, "UTC")
    load(
        project,
        [
            ev("view", "L0", 0, "e01", channel="b"),
            ev("view", "L0", 1, "e02", channel="a"),
            ev("cart", "L0", 2, "e03"),
            ev("pay", "L0", 3, "e04"),
            ev("view", "L0", 200, "e05"),
            ev("pay", "L0", 201, "e06"),
            ev("view", "a1", 0, "e07"),
            ev("cart", "a1", 5, "e08"),
        ],
    )
    return project


def test_session_starts_forward(shop: ProjectStore) -> None:
    result = run(shop, "UTC", steps=3)
    assert (result["direction"], result["users"], result["paths_total"]) == ("forward", 2, 3)
    assert links(result) == [
        ("0:view", "1:cart", 2, 2),
        ("0:view", "1:pay", 1, 1),
        ("1:cart", "2:$end", 1, 1),
        ("1:cart", "2:pay", 1, 1),
        ("1:pay", "2:$end", 1, 1),
    ]
    nodes = {n["id"]: (n["users"], n["events"]) for n in result["nodes"]}
    assert nodes == {"0:view": (2, 3), "1:cart": (2, 2), "1:pay": (1, 1), "2:$end": (2, 2), "2:pay": (1, 1)}
    assert paths(result) == [(["view", "cart"], 1, 1), (["view", "cart", "pay"], 1, 1), (["view", "pay"], 1, 1)]


def test_repeats_kept_and_top_limits(shop: ProjectStore) -> None:
    result = run(shop, "UTC", steps=3, collapse_repeats=False, top=2, top_paths=1)
    # L0's first session is view, view, cart: three steps, so no $end; a1 is view, cart, $end.
    assert links(result) == [("0:view", "1:cart", 1, 1), ("0:view", "1:pay", 1, 1)]
    assert [n["id"] for n in result["nodes"]] == ["0:view", "1:cart", "1:pay"]
    assert paths(result) == [(["view", "cart"], 1, 1)]
    longer = run(shop, "UTC", steps=4, collapse_repeats=False)
    assert ["view", "view", "cart", "pay"] in [p for p, _, _ in paths(longer)]


def test_backward_to_an_end_event(shop: ProjectStore) -> None:
    result = run(shop, "UTC", steps=3, end={"event": "pay"})
    assert (result["direction"], result["users"], result["paths_total"]) == ("backward", 1, 2)
    assert links(result) == [
        ("-2:$start", "-1:view", 1, 1),
        ("-2:view", "-1:cart", 1, 1),
        ("-1:cart", "0:pay", 1, 1),
        ("-1:view", "0:pay", 1, 1),
    ]
    assert paths(result) == [(["view", "cart", "pay"], 1, 1), (["view", "pay"], 1, 1)]


def test_between_start_and_end(shop: ProjectStore) -> None:
    result = run(shop, "UTC", steps=3, start={"event": "view"}, end={"event": "pay"})
    assert (result["users"], result["paths_total"]) == (1, 2)
    assert paths(result) == [(["view", "cart", "pay"], 1, 1), (["view", "pay"], 1, 1)]
    assert all("$end" not in lk["target"] for lk in result["links"])
    # two steps are not enough to get from the first session's view to its pay
    assert paths(run(shop, "UTC", steps=2, start={"event": "view"}, end={"event": "pay"})) == [(["view", "pay"], 1, 1)]


def test_start_conditions_see_the_event_that_stands_for_a_run(shop: ProjectStore) -> None:
    start = {"event": "view", "filters": [{"property": "channel", "value": "a"}]}
    # collapsed, L0's view(b), view(a) is one step held by view(b): no anchor in that session
    assert run(shop, "UTC", steps=3, start=start)["paths_total"] == 0
    kept = run(shop, "UTC", steps=3, start=start, collapse_repeats=False)
    assert paths(kept) == [(["view", "cart", "pay"], 1, 1)]


def test_session_gap_and_include(shop: ProjectStore) -> None:
    one_session = run(shop, "UTC", steps=6, session_gap_minutes=240, start={"event": "pay"})
    assert paths(one_session) == [(["pay", "view", "pay"], 1, 1)]
    only = run(shop, "UTC", steps=3, include=["view", "pay"], start={"event": "view"})
    assert paths(only) == [(["view", "pay"], 1, 2), (["view"], 1, 1)]
    # equal people: more paths first, then the earlier step
    assert links(only) == [("0:view", "1:pay", 1, 2), ("1:pay", "2:$end", 1, 2), ("0:view", "1:$end", 1, 1)]


def test_ties_and_identity_merge(ws: Workspace) -> None:
    """Same instant: (time, event_id) decides; a0's events count for L1 once they are bound."""
    _, project = fresh_project(ws, "Asia/Shanghai")
    signup = {
        "type": "track_signup",
        "event": "$SignUp",
        "distinct_id": "L1",
        "original_id": "a0",
        "time": BASE_MS,
        "event_id": "s_a0",
        "properties": {"$is_login_id": True},
    }
    load(project, [ev("view", "a0", 0, "e1"), signup, ev("cart", "L1", 0, "e0")], chunks=3)
    result = run(project, "Asia/Shanghai", steps=3)
    assert paths(result) == [(["cart", "view", "$SignUp"], 1, 1)]
    result = run(project, "Asia/Shanghai", steps=3, exclude=["$SignUp"])
    assert paths(result) == [(["cart", "view"], 1, 1)]
    assert links(result)[-1] == ("1:view", "2:$end", 1, 1)


# after a funnel drop-off -------------------------------------------------------------------------------------------
FUNNEL = {
    "steps": [{"event": "view"}, {"event": "cart"}, {"event": "pay"}],
    "window": {"value": 1, "unit": "day"},
    "date_range": RANGE,
}


def test_paths_after_a_funnel_drop_off(ws: Workspace) -> None:
    """a1 stops at cart, a2 at view (its chosen attempt is the instant one on its first view), L0 converts."""
    _, project = fresh_project(ws, "UTC")
    load(
        project,
        [
            ev("view", "a1", 0, "e10"),
            ev("cart", "a1", 5, "e11"),
            ev("view", "a1", 6, "e12"),
            ev("view", "a2", 0, "e20"),
            ev("view", "a2", 1, "e21"),
            ev("home", "a2", 2, "e22"),
            ev("view", "L0", 0, "e30"),
            ev("cart", "L0", 1, "e31"),
            ev("pay", "L0", 2, "e32"),
        ],
    )

    def after(step: int, **more: Any) -> dict[str, Any]:
        doc = {"kind": "paths", "steps": 4, "after_funnel": {"funnel": FUNNEL, "step": step}, **more}
        return Engine(project, "UTC").run(doc, today=DAY, use_cache=False).result

    assert paths(after(1)) == [(["view", "home"], 1, 1)]
    assert paths(after(2)) == [(["cart", "view"], 1, 1)]
    assert links(after(2)) == [("0:cart", "1:view", 1, 1), ("1:view", "2:$end", 1, 1)]
    assert paths(after(1, collapse_repeats=False)) == [(["view", "view", "home"], 1, 1)]
    assert paths(after(1, end={"event": "home"})) == [(["view", "home"], 1, 1)]
    assert after(2, end={"event": "pay"})["paths_total"] == 0


# bad input ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"steps": 1}, "steps"),
        ({"steps": 11}, "steps"),
        ({"start": {"event": "view"}, "exclude": ["view"]}, "start event 'view' is excluded"),
        ({"end": {"event": "pay"}, "include": ["view"]}, "end event 'pay' is not in 'include'"),
        ({"include": ["view"], "exclude": ["view"]}, "both included and excluded"),
        ({"include": []}, "include"),
        ({"session_gap_minutes": 0}, "session_gap_minutes"),
        ({"top": 0}, "top"),
        ({"start": {"event": "view", "filters": [{"property": "nope", "value": 1}]}}, "unknown event property 'nope'"),
        ({"filters": [{"property": "channel", "op": "gt", "value": "x", "source": "user"}]}, "unknown user"),
        ({"bogus": 1}, "bogus"),
        ({"after_funnel": {"funnel": FUNNEL, "step": 3}}, "below the funnel's last step"),
        ({"after_funnel": {"funnel": {**FUNNEL, "order": "any"}, "step": 1}}, "ordered funnel"),
        ({"after_funnel": {"funnel": FUNNEL, "step": 1}, "start": {"event": "view"}}, "remove 'start'"),
        ({"after_funnel": {"funnel": FUNNEL, "step": 1}, "date_range": RANGE}, "funnel's date_range applies"),
        ({"after_funnel": {"funnel": FUNNEL, "step": 2}, "exclude": ["cart"]}, "step event 'cart' is excluded"),
        ({"after_funnel": {"funnel": {"steps": [{"event": "view"}]}, "step": 1}}, "steps"),
    ],
)
def test_bad_definitions_are_clear(shop: ProjectStore, definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        run(shop, "UTC", **definition)


def test_sql_snapshots(shop: ProjectStore) -> None:
    engine = Engine(shop, "Asia/Shanghai")
    common = {"kind": "paths", "date_range": {"last": 7}}
    assert_snapshot(
        "paths_start_exclude",
        engine,
        {
            **common,
            "start": {"event": "view", "filters": [{"property": "channel", "value": "a"}]},
            "exclude": ["push"],
            "filters": [{"property": "channel", "op": "neq", "value": "b"}],
            "steps": 4,
        },
    )
    assert_snapshot("paths_end_backward", engine, {**common, "end": {"event": "pay"}, "steps": 3})
    assert_snapshot(
        "paths_between_include",
        engine,
        {**common, "start": {"event": "view"}, "end": {"event": "pay"}, "include": ["view", "cart", "pay"]},
    )


# property: engine == reference --------------------------------------------------------------------------------------
# few names in one day: long sessions, repeats, several start and end events per session
EVENTS_USED = ("view", "cart", "pay")
NAMES = (*EVENTS_USED, "$SignUp")


def ref_strategy(any_event: bool) -> st.SearchStrategy[dict[str, Any]]:
    names = (*NAMES, "$any") if any_event else NAMES
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


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(["none", "start", "end", "both"]))
    d: dict[str, Any] = {
        "steps": draw(st.integers(2, 5)),
        "session_gap_minutes": draw(st.sampled_from([15, 30, 60, 180, 1440])),
        "collapse_repeats": draw(st.booleans()),
        "top": draw(st.integers(1, 12)),
        "top_paths": draw(st.integers(1, 6)),
    }
    if mode in ("start", "both"):
        d["start"] = draw(ref_strategy(True))
    if mode in ("end", "both"):
        d["end"] = draw(ref_strategy(True))
    anchors = {r["event"] for r in (d.get("start"), d.get("end")) if r is not None}
    exclude = [n for n in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2)) if n not in anchors]
    if exclude:
        d["exclude"] = exclude
    if draw(st.booleans()):
        include = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=4))
        include = sorted((set(include) | anchors) - {"$any"} - set(exclude))
        if include:
            d["include"] = include
    d["filters_index"] = draw(st.integers(0, len(GLOBAL_FILTERS) - 1))
    start_day = draw(st.integers(0, 1))
    d["date_range"] = {
        "from": (DAY + timedelta(days=start_day)).isoformat(),
        "to": (DAY + timedelta(days=start_day + draw(st.integers(0, 2)))).isoformat(),
    }
    return d


@pytest.mark.parametrize(
    ("tz", "days"),
    [("Asia/Shanghai", 0), ("America/New_York", 62)],  # +62 days puts the log across New York's DST start (Mar 8)
)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=event_logs(max_events=60, days=1, events=EVENTS_USED), d=definitions(), chunks=st.integers(1, 3))
def test_engine_matches_reference(
    ws: Workspace, tz: str, days: int, records: list[dict[str, Any]], d: dict[str, Any], chunks: int
) -> None:
    records = shift(records, days)
    _, project = fresh_project(ws, tz)
    load(project, records, chunks=chunks)
    filters, keep = GLOBAL_FILTERS[d.pop("filters_index")]
    rng = d["date_range"]
    first = date.fromisoformat(rng["from"]) + timedelta(days=days)
    last = date.fromisoformat(rng["to"]) + timedelta(days=days)
    doc = {**d, "kind": "paths", "filters": filters, "date_range": {"from": first.isoformat(), "to": last.isoformat()}}
    got = Engine(project, tz).run(doc, today=last, use_cache=False).result
    options = PathsOptions(
        first=first,
        last=last,
        timezone=tz,
        start=predicate(d["start"]) if "start" in d else None,
        end=predicate(d["end"]) if "end" in d else None,
        steps=d["steps"],
        gap_minutes=d["session_gap_minutes"],
        exclude=d.get("exclude", []),
        include=d.get("include"),
        collapse=d["collapse_repeats"],
        top=d["top"],
        top_paths=d["top_paths"],
        keep=keep,
    )
    assert got.pop("partial") is True  # the range ends today (tests/query/test_partial_periods.py has the rest)
    assert got == reference_paths(reference_events(records), options)


@st.composite
def funnels(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 3))
    steps = [draw(ref_strategy(False)) for _ in range(n)]
    if n == 3 and draw(st.booleans()):
        steps[1] = {**steps[1], "optional": True}
    start_day = draw(st.integers(0, 1))
    return {
        "steps": steps,
        "order": draw(st.sampled_from(["sequential", "strict"])),
        "window": draw(
            st.one_of(
                st.integers(1, 8).map(lambda v: {"value": 15 * v, "unit": "minute"}),
                st.integers(1, 6).map(lambda v: {"value": v, "unit": "hour"}),
            )
        ),
        "date_range": {
            "from": (DAY + timedelta(days=start_day)).isoformat(),
            "to": (DAY + timedelta(days=start_day + draw(st.integers(0, 1)))).isoformat(),
        },
    }


def funnel_drops(evs: list[Ev], funnel: dict[str, Any], tz: str, step: int) -> dict[str, int]:
    """Person → time (UTC ms) of the step event of their chosen attempt, for those whose depth is ``step``; by the
    funnel's own brute-force reference."""
    first, last = (date.fromisoformat(funnel["date_range"][k]) for k in ("from", "to"))
    lo = reference_funnel.utc_ms_of_local_midnight(first, tz)
    hi = reference_funnel.utc_ms_of_local_midnight(last + timedelta(days=1), tz)
    w_ms = funnel["window"]["value"] * reference_funnel.UNIT_SECONDS[funnel["window"]["unit"]] * 1000
    streams: dict[str, list[Ev]] = {}
    for e in evs:
        if lo <= e.time_ms < hi + w_ms:
            streams.setdefault(e.person, []).append(e)
    out = {}
    for person, stream in streams.items():
        stream.sort(key=lambda e: (e.time_ms, e.event_id))
        res = reference_funnel._ordered_person(stream, funnel, lo, hi, w_ms)
        if res is not None and not res.excluded and res.depth == step:
            out[person] = res.last_ms
    return out


@pytest.mark.parametrize(("tz", "days"), [("Asia/Shanghai", 0), ("America/New_York", 62)])
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=event_logs(max_events=60, days=1, events=EVENTS_USED), funnel=funnels(), data=st.data())
def test_after_funnel_matches_reference(
    ws: Workspace, tz: str, days: int, records: list[dict[str, Any]], funnel: dict[str, Any], data: st.DataObject
) -> None:
    records = shift(records, days)
    funnel["date_range"] = {
        k: (date.fromisoformat(v) + timedelta(days=days)).isoformat() for k, v in funnel["date_range"].items()
    }
    step = data.draw(st.integers(1, len(funnel["steps"]) - 1))
    d = {
        "steps": data.draw(st.integers(2, 4)),
        "session_gap_minutes": data.draw(st.sampled_from([15, 60, 1440])),
        "collapse_repeats": data.draw(st.booleans()),
    }
    if data.draw(st.booleans()):
        d["end"] = data.draw(ref_strategy(True))
    _, project = fresh_project(ws, tz)
    load(project, records)
    first = date.fromisoformat(funnel["date_range"]["from"])
    last = date.fromisoformat(funnel["date_range"]["to"])
    doc = {**d, "kind": "paths", "after_funnel": {"funnel": funnel, "step": step}}
    got = Engine(project, tz).run(doc, today=last, use_cache=False).result
    evs = reference_events(records)
    window_days = -(-funnel["window"]["value"] * reference_funnel.UNIT_SECONDS[funnel["window"]["unit"]] // 86_400)
    options = PathsOptions(
        first=first,
        last=last + timedelta(days=window_days),
        timezone=tz,
        end=predicate(d["end"]) if "end" in d else None,
        steps=d["steps"],
        gap_minutes=d["session_gap_minutes"],
        collapse=d["collapse_repeats"],
        drops=funnel_drops(evs, funnel, tz, step),
        drop_step=predicate(funnel["steps"][step - 1]),
    )
    assert got.pop("partial") is True  # the stream ends on or after today
    assert got == reference_paths(evs, options)
