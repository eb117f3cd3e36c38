"""Retention: the engine equals a brute-force reference on random logs (ties, merges, a fixed and a DST zone),
plus hand cases with known answers, bad input and SQL snapshots."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query import reference_retention as ref
from tests.query.logs import (
    BASE_MS,
    DAY_MS,
    HOUR_MS,
    LOGIN,
    Ev,
    event_logs,
    fresh_project,
    load,
    person_names,
    reference_events,
    sql_only,
)
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.ingest import load_json_lines
from userloop.query.engine import Engine
from userloop.query.kinds.base import Staged
from userloop.query.kinds.retention import PeriodGrid, zone_offsets
from userloop.query.kinds.retention import fold as retention_fold
from userloop.store import ProjectStore, Workspace

BASE_DAY = date(2026, 1, 5)
#: Moving a log 56 days on puts America/New_York's spring-forward (2026-03-08) inside its 21 days.
DST_SHIFT_DAYS = 56
ZONES = ("Asia/Shanghai", "America/New_York")

#: Event references the random definitions pick from, with their plain-Python predicates.
REFS: dict[str, tuple[dict[str, Any], Any]] = {
    "any": ({"event": "$any"}, lambda e: True),
    "view": ({"event": "view"}, lambda e: e.event == "view"),
    "cart": ({"event": "cart"}, lambda e: e.event == "cart"),
    "big_pay": (
        {"event": "pay", "filters": [{"property": "amount", "op": "gte", "value": 30}]},
        lambda e: e.event == "pay" and e.amount is not None and e.amount >= 30,
    ),
}
NOT_C = {"property": "channel", "op": "neq", "value": "c"}


# logs ------------------------------------------------------------------------------------------------------------
def with_props(records: list[dict[str, Any]], shift_days: int = 0) -> list[dict[str, Any]]:
    """The log moved ``shift_days`` on, plus one event that registers both properties (so every definition
    compiles whatever the log drew)."""
    out = [{**r, "time": r["time"] + shift_days * DAY_MS} for r in records]
    out.append(
        {
            "type": "track",
            "event": "other",
            "distinct_id": "a5",
            "time": BASE_MS + shift_days * DAY_MS + 5 * HOUR_MS,
            "event_id": "fixed",
            "properties": {"amount": 1.0, "channel": "a"},
        }
    )
    return out


def plans_for(draw: st.DrawFn) -> dict[str, str]:
    return draw(st.dictionaries(st.sampled_from(LOGIN), st.sampled_from(("gold", "free")), max_size=len(LOGIN)))


def load_plans(project: ProjectStore, plans: dict[str, str]) -> None:
    """Profiles for some login ids, loaded after the events (so merges have happened); ``Lz``, who has no events,
    always gets one so that the property exists."""
    lines = [
        json.dumps(
            {
                "type": "profile_set",
                "distinct_id": login,
                "time": BASE_MS,
                "properties": {"$is_login_id": True, "plan": plan},
            }
        )
        for login, plan in {**plans, "Lz": "free"}.items()
    ]
    assert load_json_lines(project, lines, source="test").rejected == 0


def names_of(project: ProjectStore, user_ids: list[int]) -> set[str]:
    names = person_names(project)
    return {names[u] for u in user_ids}


# the property test -----------------------------------------------------------------------------------------------
@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    tz = draw(st.sampled_from(ZONES))
    shift_days = DST_SHIFT_DAYS if tz == "America/New_York" and draw(st.booleans()) else 0
    base = BASE_DAY + timedelta(days=shift_days)
    interval = draw(st.sampled_from(("day", "week", "month")))
    periods = draw(st.integers(1, {"day": 5, "week": 3, "month": 2}[interval]))
    mode = draw(st.sampled_from(("on", "on_or_after")))
    start = draw(st.sampled_from(sorted(REFS)))
    ret = draw(st.none() | st.sampled_from(sorted(REFS)))
    breakdown = draw(st.sampled_from((None, "channel", "plan")))
    first = base + timedelta(days=draw(st.integers(0, 14)))
    definition: dict[str, Any] = {
        "kind": "retention",
        "start": REFS[start][0],
        "start_type": draw(st.sampled_from(("first_time", "recurring"))),
        "interval": interval,
        "periods": periods,
        "mode": mode,
        "date_range": {"from": first.isoformat(), "to": (first + timedelta(days=draw(st.integers(0, 14)))).isoformat()},
        "filters": [NOT_C] if draw(st.booleans()) else [],
    }
    if ret is not None:
        definition["return_event"] = REFS[ret][0]
    if breakdown is not None:
        definition["breakdown"] = {"property": breakdown, "source": "event" if breakdown == "channel" else "user"}
        if draw(st.booleans()):
            definition["breakdown"]["limit"] = 1
    if mode == "on" and draw(st.booleans()):
        definition["value"] = {"property": "amount", "math": "sum"}
    return {
        "tz": tz,
        "shift": shift_days,
        "today": base + timedelta(days=draw(st.integers(2, 45))),
        "definition": definition,
        "records": draw(event_logs(max_events=40)),
        "plans": plans_for(draw) if breakdown == "plan" else {},
        "chunks": draw(st.integers(1, 3)),
        "people": draw(st.none() | st.tuples(st.integers(0, 40), st.none() | st.integers(0, 5), st.integers(0, 6))),
        "limit": draw(st.sampled_from((2, 10_000))),
    }


def run_reference(case: dict[str, Any], evs: list[Ev]) -> ref.RetentionRef:
    d = case["definition"]
    global_ok = (lambda e: e.channel != "c") if d["filters"] else (lambda e: True)
    start_pred = next(p for r, p in REFS.values() if r == d["start"])
    ret_pred = next(p for r, p in REFS.values() if r == d.get("return_event", d["start"]))
    bd = d.get("breakdown")
    return ref.retention(
        evs,
        case["tz"],
        start=lambda e: start_pred(e) and global_ok(e),
        ret=lambda e: ret_pred(e) and global_ok(e),
        start_type=d["start_type"],
        interval=d["interval"],
        periods=d["periods"],
        mode=d["mode"],
        first=date.fromisoformat(d["date_range"]["from"]),
        last=date.fromisoformat(d["date_range"]["to"]),
        today=case["today"],
        event_bd=(lambda e: e.channel) if bd and bd["source"] == "event" else None,
        person_bd=case["plans"] if bd and bd["source"] == "user" else None,
        bd_limit=bd.get("limit", 25) if bd else 25,
    )


def pick_people(case: dict[str, Any], expected: ref.RetentionRef) -> tuple[dict[str, Any], set[str]] | None:
    """A people request drawn from the case, and the people the reference puts behind it."""
    if case["people"] is None:
        return None
    j, k, b = case["people"]
    d = case["definition"]
    cohort = expected.cohorts[j % len(expected.cohorts)]
    period = None if k is None else min(k, d["periods"])
    labels = sorted({key[0] for key in expected.members if key[0] is not None} | {ref.OTHER, ref.NONE})
    label = None if "breakdown" not in d or b == 0 else labels[b % len(labels)]
    source = expected.members if period is None else expected.cells
    want: set[str] = set()
    for key, people in source.items():
        if key[1] == cohort and (period is None or key[2] == period) and (label is None or key[0] == label):
            want |= people
    request = {"cohort": cohort.isoformat(), "period": period, "limit": case["limit"]}
    if label is not None:
        request["breakdown"] = label
    return request, want


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_retention_equals_reference(ws: Workspace, case: dict[str, Any]) -> None:
    records = with_props(case["records"], case["shift"])
    _, project = fresh_project(ws, case["tz"])
    load(project, records, chunks=case["chunks"])
    if case["plans"] or "plan" in json.dumps(case["definition"]):
        load_plans(project, case["plans"])
    expected = run_reference(case, reference_events(records))
    d = dict(case["definition"])
    asked = pick_people(case, expected)
    if asked is not None:
        d["people"] = asked[0]
    result = Engine(project, case["tz"]).run(d, today=case["today"]).result
    today, interval, n = case["today"], d["interval"], d["periods"]

    rows = {(row["breakdown"], date.fromisoformat(row["cohort"])): row for row in result["cohorts"]}
    # every cohort for every breakdown value that has people (without a breakdown, one line even when empty)
    labels = {bd for bd, _ in expected.members} if "breakdown" in d else {None}
    assert set(rows) == {(bd, c) for bd in labels for c in expected.cohorts}
    for (bd, cohort), row in rows.items():
        assert row["size"] == len(expected.members.get((bd, cohort), set())), (bd, cohort)
        for k in range(n + 1):
            begun = ref.shift(cohort, k, interval) <= today
            want = len(expected.cells.get((bd, cohort, k), set()))
            assert row["counts"][k] == (want if begun else None), (bd, cohort, k)
            assert row["rates"][k] == (want / row["size"] if begun and row["size"] else None)
            if "value" in d:
                value = expected.values.get((bd, cohort, k), 0.0)
                assert row["value_totals"][k] == (value if begun else None), (bd, cohort, k)
    if asked is not None:
        people = result["people"]
        assert people["total"] == len(asked[1])
        assert people["user_ids"] == sorted(people["user_ids"])
        assert len(people["user_ids"]) == min(case["limit"], len(asked[1]))
        got = names_of(project, people["user_ids"])
        assert got <= asked[1]
        if case["limit"] >= len(asked[1]):
            assert got == asked[1]


def one_pass(case: dict[str, Any]) -> dict[str, Any]:
    """The case's definition narrowed to what the one-pass shape takes: first time, start = return, "on"."""
    d = {k: v for k, v in case["definition"].items() if k not in ("value", "return_event", "breakdown")}
    d |= {"start_type": "first_time", "mode": "on"}
    return {**case, "definition": d, "people": None, "plans": {}}


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases().map(one_pass))
def test_first_time_retention_in_one_pass_equals_the_reference_and_the_general_shape(
    ws: Workspace, case: dict[str, Any]
) -> None:
    from userloop.query.kinds.retention import RetentionQuery

    test_retention_equals_reference.hypothesis.inner_test(ws, case)  # type: ignore[attr-defined]
    _, project = fresh_project(ws, case["tz"])
    load(project, with_props(case["records"], case["shift"]), chunks=case["chunks"])
    engine = Engine(project, case["tz"])
    query = RetentionQuery.model_validate(case["definition"])
    assert query._one_pass(query.cohort_grid(engine.context(case["today"])))
    # on DuckDB the one-pass grouping by person is folded outside SQL (query/kinds/retention/fold.py)
    assert isinstance(query.statements(engine.context(case["today"]))["cells"], Staged)
    fast = engine.run(case["definition"], today=case["today"], use_cache=False).result
    with sql_only():
        in_sql = Engine(project, case["tz"]).run(case["definition"], today=case["today"], use_cache=False).result
    with patch.object(RetentionQuery, "_one_pass", lambda self, grid: False):
        general = engine.run(case["definition"], today=case["today"], use_cache=False).result
    # a fold that declines its rows halfway through the stream (keys too sparse): the statement runs in SQL alone
    with patch.object(retention_fold, "DENSE_SLOTS", 0), patch.object(retention_fold, "SPARSE_FACTOR", 0):
        declined = engine.run(case["definition"], today=case["today"], use_cache=False).result
    assert fast == in_sql == general == declined


# hand cases ------------------------------------------------------------------------------------------------------
def ms(day: date, hour: int = 12, minute: int = 0) -> int:
    """Epoch ms of ``day`` ``hour``:``minute`` in Shanghai (UTC+8)."""
    return BASE_MS + (day - BASE_DAY).days * DAY_MS + (hour - 8) * HOUR_MS + minute * 60_000


def track(event: str, who: str, t: int, n: int, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "distinct_id": who, "time": t, "event_id": f"h{n}", "properties": props}


@pytest.fixture(scope="module")
def hand(ws: Workspace) -> tuple[ProjectStore, Engine]:
    """Three people over three weeks (Shanghai): weeks start 01-05, 01-12, 01-19, 01-26."""
    w0, w1, w2 = BASE_DAY, BASE_DAY + timedelta(days=7), BASE_DAY + timedelta(days=14)
    events = [
        # u1: signs up in week 0 (Tue), views in week 0 after, week 1 and week 2
        ("signup", "u1", ms(w0 + timedelta(days=1)), {"channel": "a"}),
        ("view", "u1", ms(w0 + timedelta(days=1), 13), {}),
        ("view", "u1", ms(w1, 9), {}),
        ("pay", "u1", ms(w1, 10), {"amount": 10.0}),
        ("view", "u1", ms(w2 + timedelta(days=6), 23, 59), {}),
        # u2: a view before signing up in week 0 (does not count for period 0), then a pay in week 2
        ("view", "u2", ms(w0 + timedelta(days=2), 9), {}),
        ("signup", "u2", ms(w0 + timedelta(days=2), 10), {"channel": "b"}),
        ("pay", "u2", ms(w2, 0, 0), {"amount": 5.0}),
        ("view", "u2", ms(w2, 0, 0), {}),
        # u3: signs up in week 1; a view at the very same instant counts for period 0
        ("signup", "u3", ms(w1 + timedelta(days=3)), {"channel": "a"}),
        ("view", "u3", ms(w1 + timedelta(days=3)), {}),
        ("pay", "u3", ms(w1 + timedelta(days=4)), {"amount": 7.0}),
    ]
    _, project = fresh_project(ws, "Asia/Shanghai")
    load(project, [track(e, who, t, i, **p) for i, (e, who, t, p) in enumerate(events)])
    return project, Engine(project, "Asia/Shanghai")


def signups(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "retention",
        "start": {"event": "signup"},
        "return_event": {"event": "view"},
        "interval": "week",
        "periods": 2,
        "date_range": {"from": "2026-01-05", "to": "2026-01-18"},
        **extra,
    }


TODAY = date(2026, 2, 20)


def test_hand_weekly_matrix(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    out = engine.run(signups(), today=TODAY).result
    assert [(c["cohort"], c["size"], c["counts"]) for c in out["cohorts"]] == [
        ("2026-01-05", 2, [1, 1, 2]),  # u2's view before signing up is not period 0
        ("2026-01-12", 1, [1, 0, 0]),  # the same instant counts
    ]
    assert out["cohorts"][0]["rates"] == [0.5, 0.5, 1.0]
    assert all(all(c["complete"]) for c in out["cohorts"])
    avg = out["average"][0]
    assert avg["sizes"] == [3, 3, 3]
    assert avg["counts"] == [2, 1, 2]
    assert avg["rates"] == [2 / 3, 1 / 3, 2 / 3]
    cumulative = engine.run(signups(mode="on_or_after"), today=TODAY).result
    assert [c["counts"] for c in cumulative["cohorts"]] == [[2, 2, 2], [1, 0, 0]]


def test_hand_future_cells_and_average(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    # today is Wednesday of week 2: week 2 has begun but is not over; nothing later exists yet
    out = engine.run(signups(periods=3), today=date(2026, 1, 21)).result
    first, second = out["cohorts"]
    assert first["counts"] == [1, 1, 1, None]  # u1's view on Sunday is after today
    assert first["complete"] == [True, True, False, False]
    assert second["counts"] == [1, 0, None, None]
    assert second["complete"] == [True, False, False, False]
    assert out["average"][0]["sizes"] == [3, 2, 0, 0]
    assert out["average"][0]["rates"] == [2 / 3, 0.5, None, None]
    # a cumulative cell can still grow until the last period followed has ended
    cumulative = engine.run(signups(periods=3, mode="on_or_after"), today=date(2026, 1, 21)).result
    assert cumulative["cohorts"][0]["counts"] == [2, 2, 1, None]
    assert cumulative["cohorts"][0]["complete"] == [False] * 4
    assert cumulative["average"][0]["sizes"] == [0] * 4


def test_hand_default_return_is_start_and_period0_full(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    d = signups()
    del d["return_event"]
    out = engine.run(d, today=TODAY).result
    assert [c["counts"] for c in out["cohorts"]] == [[2, 0, 0], [1, 0, 0]]
    assert out["average"][0]["rates"][0] == 1.0


def test_hand_value_breakdown_and_people(hand: tuple[ProjectStore, Engine]) -> None:
    project, engine = hand
    d = signups(
        return_event={"event": "pay"},
        value={"property": "amount"},
        breakdown={"property": "channel"},
        people={"cohort": "2026-01-05", "period": 2, "breakdown": "b"},
    )
    out = engine.run(d, today=TODAY).result
    rows = {(c["breakdown"], c["cohort"]): c for c in out["cohorts"]}
    assert rows["a", "2026-01-05"]["value_totals"] == [0.0, 10.0, 0.0]
    assert rows["a", "2026-01-05"]["values"] == [0.0, 10.0, 0.0]
    assert rows["a", "2026-01-12"]["value_totals"] == [7.0, 0.0, 0.0]  # the pay the day after signing up
    assert rows["b", "2026-01-05"]["counts"] == [0, 0, 1]
    assert rows["b", "2026-01-12"]["size"] == 0
    assert [c["breakdown"] for c in out["cohorts"]] == ["a", "a", "b", "b"]
    assert [a["breakdown"] for a in out["average"]] == ["a", "b"]
    assert out["average"][0]["values"] == [7.0 / 2, 10.0 / 2, 0.0]
    assert names_of(project, out["people"]["user_ids"]) == {"u2"}
    assert out["people"]["total"] == 1


def test_hand_first_time_ignores_earlier_starts(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    # from week 1 on, u1 and u2 viewed before: first-time view cohorts hold only u3
    d = signups(start={"event": "view"}, date_range={"from": "2026-01-12", "to": "2026-01-25"})
    first_time = engine.run(d, today=TODAY).result
    assert [(c["cohort"], c["size"]) for c in first_time["cohorts"]] == [("2026-01-12", 1), ("2026-01-19", 0)]
    recurring = engine.run({**d, "start_type": "recurring"}, today=TODAY).result
    assert [(c["cohort"], c["size"], c["counts"]) for c in recurring["cohorts"]] == [
        ("2026-01-12", 2, [2, 1, 0]),
        ("2026-01-19", 2, [2, 0, 0]),
    ]


def test_hand_people_limit_and_whole_cohort(hand: tuple[ProjectStore, Engine]) -> None:
    project, engine = hand
    out = engine.run(signups(people={"cohort": "2026-01-05", "limit": 1}), today=TODAY).result
    assert out["people"]["total"] == 2
    assert len(out["people"]["user_ids"]) == 1
    assert names_of(project, out["people"]["user_ids"]) <= {"u1", "u2"}


def test_hand_month_and_day(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    month = engine.run(signups(interval="month", periods=1), today=TODAY).result
    assert [(c["cohort"], c["size"], c["counts"]) for c in month["cohorts"]] == [("2026-01-01", 3, [3, 0])]
    day = engine.run(
        signups(interval="day", periods=1, date_range={"from": "2026-01-06", "to": "2026-01-07"}), today=TODAY
    ).result
    assert [(c["cohort"], c["size"], c["counts"]) for c in day["cohorts"]] == [
        ("2026-01-06", 1, [1, 0]),
        ("2026-01-07", 1, [0, 0]),
    ]


# period helpers --------------------------------------------------------------------------------------------------
def test_zone_offsets_find_daylight_saving() -> None:
    from datetime import datetime

    pieces = zone_offsets("America/New_York", datetime(2026, 3, 1), datetime(2026, 11, 30))
    assert pieces == (
        (datetime(2026, 3, 1), -5 * 3600),
        (datetime(2026, 3, 8, 7), -4 * 3600),
        (datetime(2026, 11, 1, 6), -5 * 3600),
    )
    assert zone_offsets("Asia/Shanghai", datetime(2026, 1, 1), datetime(2026, 12, 31)) == (
        (datetime(2026, 1, 1), 8 * 3600),
    )


def test_period_grid() -> None:
    grid = PeriodGrid.covering("month", date(2026, 11, 15), date(2027, 2, 1))
    assert (grid.first, grid.count) == (date(2026, 11, 1), 4)
    assert [grid.start(i) for i in (-1, 0, 2, 3)] == [
        date(2026, 10, 1),
        date(2026, 11, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
    assert grid.end(1) == date(2026, 12, 31)
    assert grid.index(date(2027, 1, 31)) == 2
    week = PeriodGrid.covering("week", date(2026, 1, 7), date(2026, 1, 12))
    assert (week.first, week.count, week.index(date(2026, 1, 18))) == (date(2026, 1, 5), 2, 1)


# bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"periods": 0}, "periods"),
        ({"periods": 61}, "periods"),
        ({"interval": "hour"}, "interval"),
        ({"start_type": "sometimes"}, "start_type"),
        ({"mode": "on_or_after", "value": {"property": "amount"}}, "use mode 'on'"),
        ({"value": {"property": "amount", "math": "avg"}}, "value.math"),
        ({"value": {"property": "channel"}}, "NUMBER"),
        ({"value": {"property": "nope"}}, "unknown event property 'nope'"),
        ({"breakdown": {"property": "channel", "bins": 4}}, "bins"),
        ({"breakdown": {"property": "nope", "source": "user"}}, "unknown user"),
        ({"people": {"cohort": "2026-01-06"}}, "not the first day of a week"),
        ({"people": {"cohort": "2025-12-29"}}, "outside the cohorts"),
        ({"people": {"cohort": "2026-01-05", "period": 3}}, "periods run from 0 to 2"),
        ({"people": {"cohort": "2026-01-05", "breakdown": "a"}}, "no breakdown"),
        ({"people": {"cohort": "2026-01-05", "limit": 0}}, "people.limit"),
        ({"interval": "day", "date_range": {"from": "2024-12-01", "to": "2026-02-01"}}, "at most 400"),
        ({"start": {"event": "signup", "filters": [{"property": "amount", "op": "gt", "value": "x"}]}}, "amount"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input(hand: tuple[ProjectStore, Engine], change: dict[str, Any], message: str) -> None:
    _, engine = hand
    with pytest.raises(ValidationError, match=message):
        engine.run(signups(**change), today=TODAY)


def test_missing_start_is_a_clear_error(hand: tuple[ProjectStore, Engine]) -> None:
    _, engine = hand
    with pytest.raises(ValidationError, match="start"):
        engine.run({"kind": "retention"}, today=TODAY)


# snapshots -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snap(ws: Workspace) -> ProjectStore:
    ws.create_project("snap_retention")
    project = ws.project("snap_retention")
    load(project, [track("signup", "u1", BASE_MS, 0, amount=1.0, channel="a")])
    load_plans(project, {"u1": "gold"})
    return project


def test_snapshots(snap: ProjectStore) -> None:
    weekly = {
        "kind": "retention",
        "start": {"event": "signup"},
        "return_event": {"event": "$any"},
        "periods": 12,
        "date_range": {"last": 56},
    }
    assert_snapshot("retention_weekly_first_time", Engine(snap, "Asia/Shanghai"), weekly)
    assert_snapshot(
        "retention_recurring_value_breakdown_dst",
        Engine(snap, "America/New_York"),
        {
            **weekly,
            "start_type": "recurring",
            "interval": "day",
            "periods": 7,
            "date_range": {"from": "2026-03-01", "to": "2026-03-14"},
            "breakdown": {"property": "channel", "limit": 5},
            "value": {"property": "amount"},
            "filters": [NOT_C],
            "people": {"cohort": "2026-03-02", "period": 1, "breakdown": "a"},
        },
    )
    assert_snapshot(
        "retention_monthly_cumulative_user_breakdown",
        Engine(snap, "Asia/Shanghai"),
        {
            **weekly,
            "interval": "month",
            "periods": 3,
            "mode": "on_or_after",
            "breakdown": {"property": "plan", "source": "user"},
        },
    )
