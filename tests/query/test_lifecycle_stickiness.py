"""Lifecycle and stickiness: the engine equals brute-force references on random logs (ties, merges, a fixed and a
DST zone), plus hand cases with known answers, bad input and SQL snapshots."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query import reference_retention as ref
from tests.query.logs import BASE_MS, DAY_MS, HOUR_MS, event_logs, fresh_project, load, person_names, reference_events
from tests.query.snapshot import assert_snapshot
from tests.query.test_retention import DST_SHIFT_DAYS, NOT_C, REFS, ZONES, with_props
from userloop.core.errors import ValidationError
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

BASE_DAY = date(2026, 1, 5)
SETTINGS = settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def cases(draw: st.DrawFn, intervals: tuple[str, ...]) -> dict[str, Any]:
    tz = draw(st.sampled_from(ZONES))
    shift_days = DST_SHIFT_DAYS if tz == "America/New_York" and draw(st.booleans()) else 0
    base = BASE_DAY + timedelta(days=shift_days)
    first = base + timedelta(days=draw(st.integers(-3, 14)))
    event = draw(st.sampled_from(sorted(REFS)))
    return {
        "tz": tz,
        "shift": shift_days,
        "today": base + timedelta(days=draw(st.integers(0, 30))),
        "event": event,
        "filters": [NOT_C] if draw(st.booleans()) else [],
        "interval": draw(st.sampled_from(intervals)),
        "first": first,
        "last": first + timedelta(days=draw(st.integers(0, 20))),
        "records": draw(event_logs(max_events=40)),
        "chunks": draw(st.integers(1, 3)),
        "people": draw(st.none() | st.tuples(st.integers(0, 30), st.integers(0, 3))),
        "limit": draw(st.sampled_from((2, 10_000))),
    }


def setup(ws: Workspace, case: dict[str, Any]) -> tuple[ProjectStore, Any, dict[str, Any]]:
    """Load the case's log; the reference predicate; the definition's common fields."""
    records = with_props(case["records"], case["shift"])
    _, project = fresh_project(ws, case["tz"])
    load(project, records, chunks=case["chunks"])
    ref_pred = REFS[case["event"]][1]
    pred = (lambda e: ref_pred(e) and e.channel != "c") if case["filters"] else ref_pred
    definition = {
        "event": REFS[case["event"]][0],
        "interval": case["interval"],
        "filters": case["filters"],
        "date_range": {"from": case["first"].isoformat(), "to": case["last"].isoformat()},
    }
    case["evs"] = reference_events(records)
    return project, pred, definition


def check_people(project: ProjectStore, people: dict[str, Any], want: set[str], limit: int) -> None:
    names = person_names(project)
    assert people["total"] == len(want)
    assert people["user_ids"] == sorted(people["user_ids"])
    assert len(people["user_ids"]) == min(limit, len(want))
    got = {names[u] for u in people["user_ids"]}
    assert got <= want
    if limit >= len(want):
        assert got == want


# lifecycle -------------------------------------------------------------------------------------------------------
@SETTINGS
@given(case=cases(("day", "week", "month")))
def test_lifecycle_equals_reference(ws: Workspace, case: dict[str, Any]) -> None:
    project, pred, definition = setup(ws, case)
    expected = ref.lifecycle(
        case["evs"],
        case["tz"],
        pred=pred,
        interval=case["interval"],
        first=case["first"],
        last=case["last"],
        today=case["today"],
    )
    buckets = sorted(expected)
    chosen = None
    if case["people"] is not None:
        b = buckets[case["people"][0] % len(buckets)]
        status = ("new", "returning", "resurrecting", "dormant")[case["people"][1]]
        definition["people"] = {"bucket": b.isoformat(), "status": status, "limit": case["limit"]}
        chosen = (b, status)
    result = Engine(project, case["tz"]).run({"kind": "lifecycle", **definition}, today=case["today"]).result
    assert [date.fromisoformat(r["bucket"]) for r in result["buckets"]] == buckets
    for row in result["buckets"]:
        want = expected[date.fromisoformat(row["bucket"])]
        if want is None:
            assert (row["new"], row["returning"], row["resurrecting"], row["dormant"]) == (None,) * 4
            continue
        got = (row["new"], row["returning"], row["resurrecting"], row["dormant"])
        assert got == (len(want["new"]), len(want["returning"]), len(want["resurrecting"]), -len(want["dormant"]))
    if chosen is not None:
        status_people = expected[chosen[0]]
        check_people(project, result["people"], status_people[chosen[1]] if status_people else set(), case["limit"])


def track(event: str, who: str, day: date, n: int, hour: int = 12) -> dict[str, Any]:
    """An event at ``hour`` o'clock Shanghai time on ``day``."""
    t = BASE_MS + (day - BASE_DAY).days * DAY_MS + (hour - 8) * HOUR_MS
    return {"type": "track", "event": event, "distinct_id": who, "time": t, "event_id": f"h{n}", "properties": {}}


@pytest.fixture(scope="module")
def hand(ws: Workspace) -> tuple[ProjectStore, Engine]:
    d = BASE_DAY  # Monday 2026-01-05
    days = {
        "old": [d - timedelta(days=20), d + timedelta(days=2)],  # seen long before the range: resurrecting
        "p": [d, d + timedelta(days=1), d + timedelta(days=3)],
        "q": [d - timedelta(days=1), d + timedelta(days=1)],  # active the day before the range
        "r": [d + timedelta(days=3)],
    }
    records = [
        track("view", who, day, i * 10 + j) for i, (who, ds) in enumerate(days.items()) for j, day in enumerate(ds)
    ]
    records.append(track("pay", "p", d + timedelta(days=2), 99))
    _, project = fresh_project(ws, "Asia/Shanghai")
    load(project, records)
    return project, Engine(project, "Asia/Shanghai")


def test_lifecycle_hand(hand: tuple[ProjectStore, Engine]) -> None:
    project, engine = hand
    d = {"kind": "lifecycle", "event": {"event": "view"}, "date_range": {"from": "2026-01-05", "to": "2026-01-08"}}
    out = engine.run(d, today=date(2026, 1, 7)).result
    rows = [
        (r["bucket"], r["new"], r["returning"], r["resurrecting"], r["dormant"], r["complete"]) for r in out["buckets"]
    ]
    assert rows == [
        ("2026-01-05", 1, 0, 0, -1, True),  # p new; q (active 01-04) dormant
        ("2026-01-06", 0, 1, 1, 0, True),  # p returning; q resurrecting
        ("2026-01-07", 0, 0, 1, -2, False),  # old resurrecting (seen 20 days before); p and q dormant; today
        ("2026-01-08", None, None, None, None, False),  # not begun
    ]
    people = engine.run({**d, "people": {"bucket": "2026-01-07", "status": "dormant"}}, today=date(2026, 1, 7))
    assert {person_names(project)[u] for u in people.result["people"]["user_ids"]} == {"p", "q"}
    weekly = engine.run({**d, "interval": "week"}, today=date(2026, 1, 31)).result
    assert [(r["bucket"], r["new"], r["returning"], r["resurrecting"], r["dormant"]) for r in weekly["buckets"]] == [
        ("2026-01-05", 2, 1, 1, 0)  # p, r new; q returning (week before); old resurrecting
    ]


# stickiness ------------------------------------------------------------------------------------------------------
@SETTINGS
@given(case=cases(("day", "week", "month")))
def test_stickiness_equals_reference(ws: Workspace, case: dict[str, Any]) -> None:
    project, pred, definition = setup(ws, case)
    n, expected = ref.stickiness(
        case["evs"],
        case["tz"],
        pred=pred,
        interval=case["interval"],
        first=case["first"],
        last=case["last"],
        today=case["today"],
    )
    k = None
    if case["people"] is not None:
        k = 1 + case["people"][0] % n
        definition["people"] = {"intervals": k, "limit": case["limit"]}
    result = Engine(project, case["tz"]).run({"kind": "stickiness", **definition}, today=case["today"]).result
    total = sum(len(p) for p in expected.values())
    assert result["periods"] == n
    assert result["total"] == total
    assert [r["intervals"] for r in result["rows"]] == list(range(1, n + 1))
    assert [r["people"] for r in result["rows"]] == [len(expected.get(k, set())) for k in range(1, n + 1)]
    if total:
        assert result["average"] == pytest.approx(sum(k * len(p) for k, p in expected.items()) / total)
        assert sum(r["share"] for r in result["rows"]) == pytest.approx(1.0)
    else:
        assert result["average"] is None
    if k is not None:
        check_people(project, result["people"], expected.get(k, set()), case["limit"])


def test_stickiness_hand(hand: tuple[ProjectStore, Engine]) -> None:
    project, engine = hand
    d = {"kind": "stickiness", "event": {"event": "view"}, "date_range": {"from": "2026-01-05", "to": "2026-01-11"}}
    out = engine.run({**d, "people": {"intervals": 2}}, today=date(2026, 1, 31)).result
    assert out["periods"] == 7
    assert out["total"] == 4
    assert [r["people"] for r in out["rows"]] == [3, 0, 1, 0, 0, 0, 0]  # p on 3 days; q, r, old on 1
    assert out["rows"][0]["share"] == 0.75
    assert out["average"] == 1.5
    assert out["people"] == {"total": 0, "user_ids": []}
    any_event = engine.run({**d, "event": {"event": "$any"}, "people": {"intervals": 4}}, today=date(2026, 1, 31))
    assert {person_names(project)[u] for u in any_event.result["people"]["user_ids"]} == {"p"}  # the pay adds a day
    weekly = engine.run(
        {**d, "interval": "week", "date_range": {"from": "2026-01-01", "to": "2026-01-06"}}, today=date(2026, 1, 31)
    ).result
    assert weekly["periods"] == 2  # the weeks of 2025-12-29 and 2026-01-05
    assert [r["people"] for r in weekly["rows"]] == [3, 1]  # q in both weeks; p, r and old in the second (whole)


# bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"kind": "lifecycle", "event": {"event": "view"}, "interval": "hour"}, "interval"),
        ({"kind": "lifecycle"}, "event"),
        (
            {
                "kind": "lifecycle",
                "event": {"event": "view"},
                "people": {"bucket": "2026-01-06", "status": "new"},
                "interval": "week",
            },
            "not the first day of a week",
        ),
        (
            {"kind": "lifecycle", "event": {"event": "view"}, "people": {"bucket": "2025-01-06", "status": "new"}},
            "outside the periods",
        ),
        (
            {"kind": "lifecycle", "event": {"event": "view"}, "people": {"bucket": "2026-01-06", "status": "gone"}},
            "people.status",
        ),
        ({"kind": "stickiness", "event": {"event": "view"}, "interval": "hour"}, "interval"),
        ({"kind": "stickiness", "event": {"event": "view"}, "people": {"intervals": 0}}, "people.intervals"),
        ({"kind": "stickiness", "event": {"event": "view"}, "people": {"intervals": 32}}, "holds 31 days"),
        ({"kind": "stickiness", "event": {"event": "view", "filters": [{"property": "nope"}]}}, "needs one value"),
        (
            {"kind": "stickiness", "event": {"event": "view"}, "filters": [{"property": "nope", "op": "is_set"}]},
            "unknown event property 'nope'",
        ),
    ],
)
def test_bad_input(hand: tuple[ProjectStore, Engine], definition: dict[str, Any], message: str) -> None:
    _, engine = hand
    d = {"date_range": {"from": "2026-01-01", "to": "2026-01-31"}, **definition}
    with pytest.raises(ValidationError, match=message):
        engine.run(d, today=date(2026, 2, 1))


# snapshots -------------------------------------------------------------------------------------------------------
def test_snapshots(ws: Workspace) -> None:
    ws.create_project("snap_lifecycle")
    project = ws.project("snap_lifecycle")
    load(project, [track("view", "u", BASE_DAY, 0) | {"properties": {"channel": "a"}}])
    common = {"event": {"event": "view"}, "filters": [NOT_C], "date_range": {"last": 28}}
    assert_snapshot(
        "lifecycle_weekly",
        Engine(project, "Asia/Shanghai"),
        {
            "kind": "lifecycle",
            "interval": "week",
            **common,
            "people": {"bucket": "2026-03-16", "status": "resurrecting"},
        },
    )
    assert_snapshot(
        "lifecycle_daily_dst",
        Engine(project, "America/New_York"),
        {"kind": "lifecycle", "interval": "day", **common, "date_range": {"from": "2026-03-01", "to": "2026-03-14"}},
    )
    assert_snapshot(
        "stickiness_daily",
        Engine(project, "Asia/Shanghai"),
        {"kind": "stickiness", **common, "people": {"intervals": 3, "limit": 50}},
    )
    assert_snapshot(
        "stickiness_monthly_dst",
        Engine(project, "America/New_York"),
        {"kind": "stickiness", "interval": "month", **common, "date_range": {"from": "2026-01-01", "to": "2026-06-30"}},
    )
