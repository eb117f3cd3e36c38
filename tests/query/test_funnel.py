"""Funnels: the engine against a brute-force reference on random logs, hand-made cases with known answers, bad
options, SQL snapshots and the shape of the SQL for long funnels."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import BASE_MS, EVENTS, HOUR_MS, event_logs, fresh_project, load, person_names, reference_events
from tests.query.reference_funnel import run_reference
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.query.compile import render
from userloop.query.engine import Engine
from userloop.query.kinds.funnel import FunnelQuery, funnel_levels
from userloop.store import ProjectStore, Workspace

TODAY = date(2026, 2, 28)
SETTINGS = settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MINUTE_MS = 60_000


# random definitions ------------------------------------------------------------------------------------------------
FILTERS = (
    {"property": "channel", "op": "eq", "value": "a"},
    {"property": "amount", "op": "gt", "value": 40},
    {"property": "channel", "op": "is_set"},
    {"property": "channel", "op": "neq", "value": "b"},
)
WINDOWS = (
    {"value": 45, "unit": "minute"},
    {"value": 6, "unit": "hour"},
    {"value": 1, "unit": "day"},
    {"value": 3, "unit": "day"},
    {"value": 1, "unit": "week"},
    {"value": 2, "unit": "week"},
)
#: Logs dense enough that most examples have conversions, drop-offs and excluded people.
LOGS = event_logs(max_events=50, days=8, events=("view", "cart", "pay", "push", "other"))


@st.composite
def definitions(draw: st.DrawFn, orders: tuple[str, ...] = ("sequential", "strict", "any")) -> dict[str, Any]:
    order = draw(st.sampled_from(orders))
    n = draw(st.integers(2, 4))
    if order == "any":
        names = draw(st.lists(st.sampled_from(EVENTS), min_size=n, max_size=n, unique=True))
    else:
        names = draw(st.lists(st.sampled_from((*EVENTS[:3], "$any")), min_size=n, max_size=n))
    steps: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        step: dict[str, Any] = {"event": name}
        if draw(st.integers(0, 3)) == 0:
            step["filters"] = [draw(st.sampled_from(FILTERS))]
        if order != "any" and 0 < i < n - 1 and draw(st.integers(0, 2)) == 0:
            step["optional"] = True
        steps.append(step)
    start = date(2026, 1, 4) + timedelta(days=draw(st.integers(0, 4)))
    defn: dict[str, Any] = {
        "kind": "funnel",
        "order": order,
        "steps": steps,
        "window": draw(st.sampled_from(WINDOWS)),
        "date_range": {"from": start.isoformat(), "to": (start + timedelta(days=draw(st.integers(1, 9)))).isoformat()},
        "time_to_convert_bins": draw(st.integers(1, 6)),
    }
    required = [i + 1 for i, s in enumerate(steps) if not s.get("optional")]
    if order != "any" and draw(st.booleans()):
        f, t = sorted(draw(st.lists(st.sampled_from(required), min_size=2, max_size=2, unique=True)))
        defn["exclusions"] = [{"event": draw(st.sampled_from(("push", "other", "cart"))), "from_step": f, "to_step": t}]
    if draw(st.booleans()):
        defn["breakdown"] = {"property": draw(st.sampled_from(("channel", "amount"))), "limit": draw(st.integers(1, 3))}
        defn["breakdown_attribution"] = draw(
            st.sampled_from(["first_touch", "last_touch", {"step": draw(st.integers(1, n))}])
        )
    if draw(st.integers(0, 3)) == 0:
        defn["filters"] = [{"property": "channel", "op": "neq", "value": "c"}]
    k = draw(st.integers(1, n))
    status = "converted" if k == 1 else draw(st.sampled_from(("converted", "dropped")))
    defn["people"] = {"step": k, "status": status, "limit": 1000}
    defn["trend_interval"] = draw(st.sampled_from(("day", "week")))
    return defn


# comparing -----------------------------------------------------------------------------------------------------------
def close(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def check_series(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert [s["count"] for s in got["steps"]] == [s["count"] for s in want["steps"]], where
    for g, w in zip(got["steps"], want["steps"], strict=True):
        label = f"{where} step {g['step']}"
        assert close(g["avg_time_from_previous"], w["avg_gap"]), label
        assert close(g["median_time_from_previous"], w["median_gap"]), label
        assert close(g["avg_time_from_first"], w["avg_dur"]), label
        assert close(g["median_time_from_first"], w["median_dur"]), label


def check_against_reference(
    project: ProjectStore, tz: str, records: list[dict[str, Any]], defn: dict[str, Any], chunks: int = 1
) -> None:
    # a record long before any date range registers both properties whatever the random log holds
    seed = {"type": "track", "event": "seed", "distinct_id": "zz", "time": BASE_MS - 30 * 24 * HOUR_MS,
            "event_id": "seed", "properties": {"amount": 1.0, "channel": "a"}}  # fmt: skip
    records = [seed, *records]
    load(project, records, chunks=chunks)
    engine = Engine(project, tz)
    result = engine.run(defn, today=TODAY, use_cache=False).result
    first, last = date.fromisoformat(defn["date_range"]["from"]), date.fromisoformat(defn["date_range"]["to"])
    ref = run_reference(reference_events(records), defn, tz, first, last)
    names = person_names(project)

    check_series(result, ref["total"], "total")
    if "breakdown" in defn:
        got = {b["breakdown"]: b for b in result["breakdowns"]}
        assert sorted(got) == sorted(ref["breakdowns"])
        for value, series in ref["breakdowns"].items():
            check_series(got[value], series, f"breakdown {value}")
    assert [(b["from_seconds"], b["to_seconds"], b["count"]) for b in result["time_to_convert"]] == ref[
        "time_to_convert"
    ]
    people = result["people"]
    assert people["total"] == len(ref["people"])
    assert sorted(names[u] for u in people["user_ids"]) == sorted(ref["people"])
    for point in result["trend"]:
        assert (point["entered"], point["converted"]) == ref["trend"].get(point["bucket"], (0, 0)), point["bucket"]
    assert sum(p["entered"] for p in result["trend"]) == result["entered"]

    ctx = engine.context(TODAY)
    rows = project.con.execute(render(funnel_levels(ctx, FunnelQuery.model_validate(defn)))).fetchall()
    levels = {names[u]: (level, int(t.replace(tzinfo=UTC).timestamp() * 1000)) for u, level, t in rows}
    assert levels == ref["levels"]


# property tests ------------------------------------------------------------------------------------------------------
@SETTINGS
@given(records=LOGS, defn=definitions(("sequential", "strict")))
def test_ordered_funnels_match_the_reference(
    ws: Workspace, records: list[dict[str, Any]], defn: dict[str, Any]
) -> None:
    _, project = fresh_project(ws, "Asia/Shanghai")
    check_against_reference(project, "Asia/Shanghai", records, defn)


@SETTINGS
@given(records=LOGS, defn=definitions(("any",)))
def test_any_order_funnels_match_the_reference(
    ws: Workspace, records: list[dict[str, Any]], defn: dict[str, Any]
) -> None:
    _, project = fresh_project(ws, "Asia/Shanghai")
    check_against_reference(project, "Asia/Shanghai", records, defn)


@SETTINGS
@given(records=LOGS, defn=definitions(), chunks=st.integers(1, 3))
def test_funnels_match_the_reference_in_a_dst_zone_with_chunked_loads(
    ws: Workspace, records: list[dict[str, Any]], defn: dict[str, Any], chunks: int
) -> None:
    _, project = fresh_project(ws, "America/New_York")
    check_against_reference(project, "America/New_York", records, defn, chunks=chunks)


def plain(defn: dict[str, Any]) -> dict[str, Any]:
    """The definition without the options that need chain payloads (the general passes)."""
    out = {k: v for k, v in defn.items() if k not in ("exclusions", "breakdown", "breakdown_attribution")}
    out["steps"] = [{k: v for k, v in step.items() if k != "optional"} for step in defn["steps"]]
    return out


@SETTINGS
@given(
    records=LOGS,
    defn=definitions(("sequential",)).map(plain),
    tz=st.sampled_from(["Asia/Shanghai", "America/New_York"]),
)
def test_plain_sequential_funnels_take_the_fast_passes_and_match_the_reference(
    ws: Workspace, records: list[dict[str, Any]], defn: dict[str, Any], tz: str
) -> None:
    from userloop.query.kinds.funnel.statement import FunnelStatement

    _, project = fresh_project(ws, tz)
    assert FunnelStatement(Engine(project, tz).context(TODAY), FunnelQuery.model_validate(defn)).plain_sequential()
    check_against_reference(project, tz, records, defn)
    with patch.object(FunnelStatement, "plain_sequential", lambda self: False):  # the general passes, same result
        general = Engine(project, tz).run(defn, today=TODAY, use_cache=False).result
    assert Engine(project, tz).run(defn, today=TODAY, use_cache=False).result == general


# hand-made cases ----------------------------------------------------------------------------------------------------
def track(event: str, who: str, minutes: float, eid: str, **props: Any) -> dict[str, Any]:
    p = dict(props)
    if who.startswith("L"):
        p["$is_login_id"] = True
    return {
        "type": "track",
        "event": event,
        "distinct_id": who,
        "time": BASE_MS + int(minutes * MINUTE_MS),
        "event_id": eid,
        "properties": p,
    }


def run(ws: Workspace, records: list[dict[str, Any]], tz: str = "UTC", **defn: Any) -> dict[str, Any]:
    _, project = fresh_project(ws, tz)
    load(project, records)
    doc = {"kind": "funnel", "date_range": {"from": "2026-01-05", "to": "2026-01-11"}, **defn}
    return Engine(project, tz).run(doc, today=TODAY, use_cache=False).result


def counts(result: dict[str, Any]) -> list[int]:
    return [s["count"] for s in result["steps"]]


VCP = [{"event": "view"}, {"event": "cart"}, {"event": "pay"}]


def test_counts_conversion_drop_off_and_breakpoint(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e01"), track("cart", "a0", 10, "e02"), track("pay", "a0", 20, "e03"),
        track("view", "a1", 0, "e04"), track("cart", "a1", 30, "e05"),
        track("view", "a2", 0, "e06"),
        track("view", "a3", 0, "e07"),
    ]  # fmt: skip
    result = run(ws, records, steps=VCP)
    assert counts(result) == [4, 2, 1]
    view, cart, pay = result["steps"]
    assert (cart["conversion_from_first"], cart["conversion_from_previous"], cart["dropped"]) == (0.5, 0.5, 2)
    assert (pay["conversion_from_first"], pay["conversion_from_previous"], pay["dropped"]) == (0.25, 0.5, 1)
    assert cart["is_breakpoint"] and not pay["is_breakpoint"] and not view["is_breakpoint"]  # tie: the earlier
    assert cart["avg_time_from_previous"] == 20 * 60 and cart["median_time_from_previous"] == 20 * 60
    assert pay["avg_time_from_previous"] == 10 * 60 and pay["avg_time_from_first"] == 20 * 60
    assert result["avg_time_to_convert"] == 1200.0 and result["conversion_rate"] == 0.25
    assert result["time_to_convert"] == [{"from_seconds": 1200.0, "to_seconds": 1201.0, "count": 1}]


def test_people_lists_are_capped_with_a_total(ws: Workspace) -> None:
    records = [track("view", f"a{i}", i, f"e{i}") for i in range(4)] + [track("cart", "a3", 10, "e9")]
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    engine = Engine(project, "UTC")
    doc = {"kind": "funnel", "steps": VCP[:2], "date_range": {"from": "2026-01-05", "to": "2026-01-05"}}
    names = person_names(project)
    entered = engine.run({**doc, "people": {"step": 1, "limit": 2}}, today=TODAY).result["people"]
    assert entered["total"] == 4 and entered["user_ids"] == sorted(entered["user_ids"])
    assert len(entered["user_ids"]) == 2 and set(entered["user_ids"]) < set(names)
    dropped = engine.run({**doc, "people": {"step": 2, "status": "dropped"}}, today=TODAY).result["people"]
    assert sorted(names[u] for u in dropped["user_ids"]) == ["a0", "a1", "a2"] and dropped["total"] == 3


def test_funnel_levels_for_other_kinds(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 10, "e2"),
        track("view", "a1", 0, "e3"), track("cart", "a1", 5, "e4"), track("pay", "a1", 7, "e5"),
        track("cart", "a2", 0, "e6"),
    ]  # fmt: skip
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    ctx = Engine(project, "UTC").context(TODAY)
    query = FunnelQuery.model_validate({"kind": "funnel", "steps": VCP, "date_range": {"last": 60}})
    rows = project.con.execute(render(funnel_levels(ctx, query))).fetchall()
    names = person_names(project)
    start = datetime.fromtimestamp(BASE_MS / 1000, UTC).replace(tzinfo=None)
    assert sorted((names[u], level, t) for u, level, t in rows) == [
        ("a0", 2, start + timedelta(minutes=10)),
        ("a1", 3, start + timedelta(minutes=7)),
    ]


def test_ties_in_time_follow_event_id_and_one_event_fills_one_step(ws: Workspace) -> None:
    records = [
        # same instant: e2 (cart) sorts after e1 (view), so view → cart holds; pay at the same instant too
        track("view", "a0", 0, "e1"), track("cart", "a0", 0, "e2"), track("pay", "a0", 0, "e3"),
        # cart's id sorts before view's: at the same instant the cart came first, so no conversion
        track("view", "a1", 0, "x9"), track("cart", "a1", 0, "x1"),
        # view, view needs two distinct view events
        track("view", "a2", 0, "v1"),
    ]  # fmt: skip
    result = run(ws, records, steps=VCP)
    assert counts(result) == [3, 1, 1]
    assert result["avg_time_to_convert"] == 0.0
    twice = run(ws, records, steps=[{"event": "view"}, {"event": "view"}])
    assert counts(twice) == [3, 0]
    records.append(track("view", "a2", 5, "v2"))
    assert counts(run(ws, records, steps=[{"event": "view"}, {"event": "view"}])) == [3, 1]


def test_window_is_inclusive_and_later_steps_may_follow_the_range(ws: Workspace) -> None:
    day = 24 * 60
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 60, "e2"),  # exactly one hour
        track("view", "a1", 0, "e3"), track("cart", "a1", 61, "e4"),  # one minute too late
        # step 1 on the range's last day, step 2 after the range's end but within the window
        track("view", "a2", 6 * day + 23 * 60 + 45, "e5"), track("cart", "a2", 7 * day + 30, "e6"),
        # step 1 after the range: not in the funnel at all
        track("view", "a3", 7 * day + 10, "e7"), track("cart", "a3", 7 * day + 20, "e8"),
    ]  # fmt: skip
    result = run(ws, records, steps=VCP[:2], window={"value": 1, "unit": "hour"})
    assert counts(result) == [3, 2]


def test_the_latest_start_is_used_so_a_late_conversion_counts(ws: Workspace) -> None:
    # the first view is too early for the window, the second one starts a conversion that fits
    records = [track("view", "a0", 0, "e1"), track("view", "a0", 100, "e2"), track("cart", "a0", 130, "e3")]
    result = run(ws, records, steps=VCP[:2], window={"value": 1, "unit": "hour"})
    assert counts(result) == [1, 1]
    assert result["steps"][1]["avg_time_from_previous"] == 30 * 60


def test_strict_order_allows_no_other_event_between(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 1, "e2"), track("pay", "a0", 2, "e3"),
        track("view", "a1", 0, "e4"), track("push", "a1", 1, "e5"), track("cart", "a1", 2, "e6"),
        track("view", "a2", 0, "e7"), track("cart", "a2", 1, "e8"), track("view", "a2", 2, "e9"),
        track("cart", "a2", 3, "e10"), track("pay", "a2", 4, "e11"),
    ]  # fmt: skip
    assert counts(run(ws, records, steps=VCP, order="strict")) == [3, 2, 2]
    assert counts(run(ws, records, steps=VCP, order="sequential")) == [3, 3, 2]
    # a global filter removes events from the stream, so the push no longer stands between
    filtered = run(
        ws, records, steps=VCP, order="strict", filters=[{"property": "event", "op": "neq", "value": "push"}]
    )
    assert counts(filtered) == [3, 3, 2]


def test_optional_steps_may_be_skipped(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("push", "a0", 1, "e2"), track("pay", "a0", 2, "e3"),
        track("view", "a1", 0, "e4"), track("pay", "a1", 2, "e5"),
        track("view", "a2", 0, "e6"), track("push", "a2", 1, "e7"),
    ]  # fmt: skip
    steps = [{"event": "view"}, {"event": "push", "optional": True}, {"event": "pay"}]
    result = run(ws, records, steps=steps)
    assert counts(result) == [3, 2, 2]
    push, pay = result["steps"][1], result["steps"][2]
    assert push["optional"] and push["dropped"] == 1 and not push["is_breakpoint"]
    assert pay["dropped"] == 1 and pay["conversion_from_previous"] == 2 / 3 and pay["is_breakpoint"]
    # the reported attempt for pay is the shortest; a0 went through push, a1 did not
    assert pay["avg_time_from_previous"] == (60 + 120) / 2
    dropped = run(ws, records, steps=steps, people={"step": 3, "status": "dropped"})["people"]
    assert dropped["total"] == 1


def test_exclusions_remove_people_entirely(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("other", "a0", 1, "e2"), track("cart", "a0", 2, "e3"),
        track("view", "a1", 0, "e4"), track("cart", "a1", 2, "e5"), track("other", "a1", 3, "e6"),
        # dropped at cart, but the excluded event came within the window after view: removed too
        track("view", "a2", 0, "e7"), track("other", "a2", 5, "e8"),
        # the excluded event after the window: stays, as a drop-off
        track("view", "a3", 0, "e9"), track("other", "a3", 200, "e10"),
    ]  # fmt: skip
    result = run(
        ws, records, steps=VCP[:2], window={"value": 1, "unit": "hour"},
        exclusions=[{"event": "other", "from_step": 1, "to_step": 2}],
    )  # fmt: skip
    assert counts(result) == [2, 1]


def test_any_order_counts_distinct_steps(ws: Workspace) -> None:
    records = [
        track("pay", "a0", 0, "e1"), track("cart", "a0", 1, "e2"), track("view", "a0", 2, "e3"),
        track("cart", "a1", 0, "e4"), track("cart", "a1", 1, "e5"),
        track("view", "a2", 0, "e6"), track("pay", "a2", 120, "e7"),
    ]  # fmt: skip
    result = run(ws, records, steps=VCP, order="any", window={"value": 1, "unit": "hour"})
    assert counts(result) == [3, 1, 1]
    assert result["steps"][2]["label"] == "3 of 3 steps"
    assert result["avg_time_to_convert"] == 120.0


def test_breakdown_attribution(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1", channel="a"), track("cart", "a0", 1, "e2", channel="b"),
        track("pay", "a0", 2, "e3", channel="c"),
        track("view", "a1", 0, "e4", channel="a"), track("cart", "a1", 1, "e5"),
        track("view", "a2", 0, "e6"),
    ]  # fmt: skip

    def by_value(attribution: Any) -> dict[str, list[int]]:
        result = run(ws, records, steps=VCP, breakdown={"property": "channel"}, breakdown_attribution=attribution)
        return {b["breakdown"]: counts(b) for b in result["breakdowns"]}

    assert by_value("first_touch") == {"a": [2, 2, 1], "$none": [1, 0, 0]}
    assert by_value("last_touch") == {"c": [1, 1, 1], "$none": [2, 1, 0]}
    assert by_value({"step": 2}) == {"b": [1, 1, 1], "$none": [2, 1, 0]}
    top1 = run(
        ws, records, steps=VCP, breakdown={"property": "channel", "limit": 1}, breakdown_attribution="last_touch"
    )
    assert {b["breakdown"] for b in top1["breakdowns"]} == {"c", "$none"}


def test_user_property_breakdown_and_people(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 1, "e2"),
        track("view", "L0", 0, "e3"), track("cart", "L0", 1, "e4"),
        track("view", "a1", 0, "e5"),
    ]  # fmt: skip
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    doc = {
        "kind": "funnel",
        "steps": VCP[:2],
        "date_range": {"from": "2026-01-05", "to": "2026-01-06"},
        "breakdown": {"property": "first_id", "source": "user"},
        "people": {"step": 2, "status": "converted", "breakdown": "a0", "limit": 5},
    }
    result = Engine(project, "UTC").run(doc, today=TODAY, use_cache=False).result
    assert {b["breakdown"]: counts(b) for b in result["breakdowns"]} == {"a0": [1, 1], "L0": [1, 1], "a1": [1, 0]}
    names = person_names(project)
    assert [names[u] for u in result["people"]["user_ids"]] == ["a0"]
    assert result["people"]["total"] == 1


def test_profile_filters_apply_to_every_step(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 1, "e2"),
        track("view", "a1", 0, "e3"), track("cart", "a1", 1, "e4"),
    ]  # fmt: skip
    only_a0 = [{"property": "first_id", "source": "user", "op": "eq", "value": "a0"}]
    assert counts(run(ws, records, steps=VCP[:2], filters=only_a0)) == [1, 1]
    assert counts(run(ws, records, steps=VCP[:2])) == [2, 2]


def test_identity_merge_joins_the_anonymous_and_login_events(ws: Workspace) -> None:
    records = [
        track("view", "a0", 0, "e1"),
        {"type": "track_signup", "event": "$SignUp", "distinct_id": "L0", "original_id": "a0",
         "time": BASE_MS + 5 * MINUTE_MS, "event_id": "s1", "properties": {"$is_login_id": True}},
        track("cart", "L0", 10, "e2"),
    ]  # fmt: skip
    assert counts(run(ws, records, steps=VCP[:2])) == [1, 1]
    # in strict order the sign-up is an event between the two steps
    assert counts(run(ws, records, steps=VCP[:2], order="strict")) == [1, 0]


def test_trend_buckets_by_the_first_step_one_event(ws: Workspace) -> None:
    day = 24 * 60
    records = [
        track("view", "a0", 0, "e1"), track("cart", "a0", 10, "e2"),
        track("view", "a1", day, "e3"), track("view", "a1", 2 * day, "e4"), track("cart", "a1", 2 * day + 5, "e5"),
        track("view", "a2", 2 * day, "e6"),
    ]  # fmt: skip
    result = run(ws, records, steps=VCP[:2], trend_interval="day", window={"value": 1, "unit": "hour"})
    trend = {p["bucket"]: (p["entered"], p["converted"]) for p in result["trend"]}
    assert len(trend) == 7
    assert trend["2026-01-05"] == (1, 1) and trend["2026-01-06"] == (1, 1) and trend["2026-01-07"] == (1, 0)
    weekly = run(ws, records, steps=VCP[:2], trend_interval="week", window={"value": 1, "unit": "hour"})
    assert [(p["bucket"], p["entered"], p["converted"]) for p in weekly["trend"]] == [("2026-01-05", 3, 2)]


def test_dst_zone_local_days(ws: Workspace) -> None:
    # 2026-03-08 02:00 America/New_York skips to 03:00: local days around the change keep their events
    base = int(datetime(2026, 3, 8, 4, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 on 03-07 in New York (EST)
    later = int(datetime(2026, 3, 9, 3, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 on 03-08 (EDT)
    records = [
        {"type": "track", "event": "view", "distinct_id": "a0", "time": base, "event_id": "e1", "properties": {}},
        {"type": "track", "event": "cart", "distinct_id": "a0", "time": base + HOUR_MS, "event_id": "e2",
         "properties": {}},
        {"type": "track", "event": "view", "distinct_id": "a1", "time": later, "event_id": "e3", "properties": {}},
    ]  # fmt: skip
    _, project = fresh_project(ws, "America/New_York")
    load(project, records)
    doc = {"kind": "funnel", "steps": VCP[:2], "date_range": {"from": "2026-03-08", "to": "2026-03-08"},
           "trend_interval": "day"}  # fmt: skip
    result = Engine(project, "America/New_York").run(doc, today=TODAY + timedelta(days=30), use_cache=False).result
    assert counts(result) == [1, 0]  # a0's view is on 03-07 local
    assert result["trend"] == [{"bucket": "2026-03-08", "entered": 1, "converted": 0, "rate": 0.0}]


def test_forty_steps_run_and_compile_linearly(ws: Workspace) -> None:
    events = ("view", "cart", "pay")
    records = [track(events[i % 3], "a0", i, f"e{i:03d}") for i in range(45)]
    records += [track(events[i % 3], "a1", i, f"f{i:03d}") for i in range(20)]
    steps = [{"event": events[i % 3]} for i in range(40)]
    result = run(ws, records, steps=steps)
    assert counts(result) == [2] * 20 + [1] * 20
    _, project = fresh_project(ws, "UTC")
    engine = Engine(project, "UTC")
    sizes = {}
    for n in (10, 20, 40):
        doc = {"kind": "funnel", "steps": steps[:n], "date_range": {"last": 7}}
        sizes[n] = engine.compile(doc, today=TODAY)["funnel"].count(" OVER (")
    # per step after the first: one window ordering, shared by its two functions (latest start, previous time);
    # step 2 needs only the first (a chain's step-1 time is its start)
    assert sizes == {10: 17, 20: 37, 40: 77}


# bad input -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": [{"event": "view"}]}, "at least 2"),
        ({"steps": [{"event": "view"}] * 41}, "at most 40"),
        ({"steps": [{"event": "view", "optional": True}, {"event": "pay"}]}, "first and the last step"),
        ({"steps": [{"event": "view"}, {"event": "pay", "optional": True}]}, "first and the last step"),
        ({"order": "any", "steps": [{"event": "view"}, {"event": "view"}]}, "different events"),
        ({"order": "any", "steps": [{"event": "view"}, {"event": "$any"}]}, "every step must name an event"),
        ({"order": "any", "exclusions": [{"event": "push"}]}, "need order 'sequential' or 'strict'"),
        ({"order": "upside_down"}, "order"),
        ({"exclusions": [{"event": "push", "from_step": 2, "to_step": 2}]}, "1 ≤ from < to ≤ 3"),
        ({"exclusions": [{"event": "push", "from_step": 1, "to_step": 4}]}, "1 ≤ from < to ≤ 3"),
        (
            {
                "steps": [{"event": "view"}, {"event": "cart", "optional": True}, {"event": "pay"}],
                "exclusions": [{"event": "push", "from_step": 2}],
            },
            "required",
        ),
        ({"window": {"value": 0, "unit": "day"}}, "window.value"),
        ({"window": {"value": 400, "unit": "day"}}, "366 days"),
        ({"window": {"value": 1, "unit": "year"}}, "window.unit"),
        ({"breakdown_attribution": {"step": 4}}, "the funnel has 3 steps"),
        ({"people": {"step": 4}}, "the funnel has 3 steps"),
        ({"people": {"step": 1, "status": "dropped"}}, "nobody drops off before step 1"),
        ({"people": {"step": 2, "breakdown": "a"}}, "needs a breakdown"),
        ({"trend_interval": "hour"}, "trend_interval"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_impossible_definitions_are_refused(ws: Workspace, change: dict[str, Any], message: str) -> None:
    _, project = fresh_project(ws, "UTC")
    doc = {"kind": "funnel", "steps": VCP, "date_range": {"last": 7}, **change}
    with pytest.raises(ValidationError, match=message):
        Engine(project, "UTC").run(doc, today=TODAY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"breakdown": {"property": "nope"}}, "unknown event property 'nope'"),
        ({"breakdown": {"property": "amount", "bins": 4}}, "remove 'bins'"),
        ({"breakdown": {"property": "tags"}}, "is a list"),
        (
            {"steps": [{"event": "view", "filters": [{"property": "nope", "op": "is_set"}]}, {"event": "pay"}]},
            "unknown event property",
        ),
        ({"filters": [{"property": "amount", "op": "gt", "value": "many"}]}, "cannot use the value"),
        ({"exclusions": [{"event": "push", "filters": [{"property": "ghost", "op": "is_set"}]}]}, "'ghost'"),
    ],
)
def test_options_that_do_not_fit_the_schema_are_refused(ws: Workspace, change: dict[str, Any], message: str) -> None:
    _, project = fresh_project(ws, "UTC")
    load(project, [track("view", "a0", 0, "e1", amount=3.0, channel="a", tags=["x"])])
    doc = {"kind": "funnel", "steps": VCP, "date_range": {"last": 7}, **change}
    with pytest.raises(ValidationError, match=message):
        Engine(project, "UTC").run(doc, today=TODAY)


# SQL snapshots ------------------------------------------------------------------------------------------------------
def test_sql_snapshots(ws: Workspace) -> None:
    _, project = fresh_project(ws, "Asia/Shanghai")
    load(project, [track("view", "a0", 0, "e1", amount=3.0, channel="a")])
    engine = Engine(project, "Asia/Shanghai")
    base = {"kind": "funnel", "steps": VCP, "date_range": {"last": 14}}
    assert_snapshot("funnel_sequential", engine, base)
    assert_snapshot(
        "funnel_sequential_options",
        engine,
        {
            **base,
            "steps": [
                {"event": "view"},
                {"event": "push", "optional": True},
                {"event": "pay", "filters": [{"property": "amount", "op": "gt", "value": 10}]},
            ],
            "exclusions": [{"event": "other", "from_step": 1, "to_step": 3}],
            "breakdown": {"property": "channel", "limit": 5},
            "breakdown_attribution": {"step": 3},
            "people": {"step": 3, "status": "dropped", "limit": 50},
            "trend_interval": "week",
            "filters": [{"property": "channel", "op": "neq", "value": "c"}],
        },
    )
    assert_snapshot("funnel_strict", engine, {**base, "order": "strict", "exclusions": [{"event": "other"}]})
    assert_snapshot(
        "funnel_any",
        engine,
        {**base, "order": "any", "breakdown": {"property": "channel"}, "breakdown_attribution": "last_touch"},
    )


def test_definition_model_defaults() -> None:
    q = FunnelQuery.model_validate({"kind": "funnel", "steps": VCP})
    assert (q.order, q.window.seconds, q.time_to_convert_bins) == ("sequential", 14 * 86_400, 10)
    assert q.predecessors(3) == [2]
    optional = FunnelQuery.model_validate(
        {
            "kind": "funnel",
            "steps": [VCP[0], {"event": "push", "optional": True}, {"event": "x", "optional": True}, VCP[2]],
        }
    )
    assert optional.predecessors(4) == [1, 2, 3] and optional.previous_required(4) == 1
