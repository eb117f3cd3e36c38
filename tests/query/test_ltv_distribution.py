"""The ltv, distribution and interval kinds: engine == brute-force reference on random logs, hand cases with known
answers, refusals of impossible options, and SQL snapshots."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query import reference_misc as ref
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.query.engine import Engine
from userloop.query.kinds.distribution import AUTO_COUNT_EDGES, AUTO_SUM_EDGES, INTERVAL_EDGES, human
from userloop.schema.types import PropertyType
from userloop.store import Workspace

SETTINGS = settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SH = "Asia/Shanghai"


def ms(local: str, tz: str = SH) -> int:
    """Epoch ms of a local wall-clock time like '2026-01-05 10:00'."""
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def days_between(draw: Any, shift: int) -> tuple[date, date]:
    first = ref.FIRST_DAY + timedelta(days=shift + draw(st.integers(-1, 12)))
    return first, first + timedelta(days=draw(st.integers(0, 12)))


def span(first: date, last: date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ltv ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tz", "shift"), ref.ZONES)
@SETTINGS
@given(data=st.data())
def test_ltv_matches_reference(ws: Workspace, tz: str, shift: int, data: st.DataObject) -> None:
    records, profiles = data.draw(ref.logs_with_profiles(shift))
    engine = ref.prepare(ws, tz, records, chunks=data.draw(st.integers(1, 3)))
    evs = ref.events_of(records)
    first, last = days_between(data.draw, shift)
    today = first + timedelta(days=data.draw(st.integers(-1, 30)))
    for math_op in ("sum", "count"):
        q: dict[str, Any] = {
            "kind": "ltv",
            "date_range": span(first, last),
            "cohort_event": data.draw(ref.event_refs()),
            "cohort_interval": data.draw(st.sampled_from(["day", "week", "month"])),
            "value_event": data.draw(ref.event_refs()),
            "math": math_op,
            "days": data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 7, 14, 30]), min_size=1, max_size=4)),
            "filters": data.draw(st.lists(ref.filters(), max_size=1)),
        }
        if math_op == "sum":
            q["value_property"] = "amount"
        got = engine.run(q, today=today).result
        assert got == ref.ltv(evs, tz, first, last, today, q, profiles), q


def test_ltv_hand_case(ws: Workspace) -> None:
    """Value from the first 'view' on: ties count, earlier pays do not, day N is by local day; people whose first
    view is before the range are in no cohort."""
    records = [
        ref.track("view", "L1", ms("2026-01-05 10:00"), event_id="e01"),
        ref.track("pay", "L1", ms("2026-01-05 12:00"), event_id="e02", amount=10.0),
        ref.track("pay", "L1", ms("2026-01-06 09:00"), event_id="e03", amount=5.0),
        ref.track("pay", "L1", ms("2026-01-12 23:59"), event_id="e04", amount=100.0),
        ref.track("pay", "L1", ms("2026-01-20 08:00"), event_id="e05", amount=7.0),
        ref.track("view", "L2", ms("2026-01-06 23:30"), event_id="e06"),
        ref.track("pay", "L2", ms("2026-01-06 23:45"), event_id="e07", amount=20.0),
        ref.track("pay", "L2", ms("2026-01-07 00:15"), event_id="e08", amount=1.0),
        ref.track("view", "a0", ms("2026-01-03 10:00"), event_id="e09"),
        ref.track("view", "a0", ms("2026-01-05 10:00"), event_id="e10"),
        ref.track("pay", "a0", ms("2026-01-05 11:00"), event_id="e11", amount=1000.0),
        ref.track("pay", "a1", ms("2026-01-05 09:00"), event_id="e12", amount=50.0),
        ref.track("view", "a1", ms("2026-01-05 11:00"), event_id="e13"),
        ref.track("pay", "a1", ms("2026-01-05 11:00"), event_id="e14", amount=3.0),
    ]
    engine = ref.prepare(ws, SH, records)
    q = {
        "kind": "ltv",
        "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
        "cohort_event": {"event": "view"},
        "value_event": {"event": "pay"},
        "value_property": "amount",
        "days": [7, 0, 1],
    }
    got = engine.run(q, today=date(2026, 1, 13)).result
    assert got["days"] == [0, 1, 7]
    assert [(c["cohort"], c["size"], c["values"]) for c in got["cohorts"]] == [
        ("2026-01-05", 2, [6.5, 9.0, 59.0]),
        ("2026-01-06", 1, [20.0, 21.0, 21.0]),
        ("2026-01-07", 0, [None, None, None]),
    ]
    assert got["all"]["size"] == 3
    assert got["all"]["totals"] == [33.0, 39.0, 139.0]
    assert got["all"]["values"] == [11.0, 13.0, 139.0 / 3]
    # a day earlier, day 7 of the 6th's cohort is still ahead; the weighted row uses the cohorts that reached it
    earlier = engine.run(q, today=date(2026, 1, 12)).result
    assert [c["values"][2] for c in earlier["cohorts"]] == [59.0, None, None]
    assert earlier["all"]["values"] == [11.0, 13.0, 59.0]
    weekly = engine.run({**q, "cohort_interval": "week", "math": "count", "value_property": None}).result
    assert weekly["cohorts"][0]["cohort"] == "2026-01-05" and weekly["cohorts"][0]["size"] == 3
    assert weekly["cohorts"][0]["totals"] == [3.0, 5.0, 6.0]


# distribution ----------------------------------------------------------------------------------------------------
def listed(counts: dict[int, int], n_edges: int, explicit: bool) -> list[int]:
    if explicit:
        return list(range(0 if counts.get(0) else 1, n_edges + 1))
    return list(range(min(counts), max(counts) + 1)) if counts else []


def check_histogram(
    got: list[dict[str, Any]], values: list[float], edges: list[float], *, explicit: bool, keys: tuple[str, ...]
) -> None:
    """The listed buckets, as (lo, hi, how many) under the result's ``keys``, equal the reference's."""
    counts = ref.bucket_counts(values, edges)
    bounds = [None, *edges, None]
    want = [(bounds[i], bounds[i + 1], counts.get(i, 0)) for i in listed(counts, len(edges), explicit)]
    assert [tuple(b[k] for k in keys) for b in got] == want
    assert sum(b["share"] for b in got) == pytest.approx(1.0 if values else 0.0)


@pytest.mark.parametrize(("tz", "shift"), ref.ZONES)
@SETTINGS
@given(data=st.data())
def test_distribution_matches_reference(ws: Workspace, tz: str, shift: int, data: st.DataObject) -> None:
    records, profiles = data.draw(ref.logs_with_profiles(shift))
    engine = ref.prepare(ws, tz, records, chunks=data.draw(st.integers(1, 2)))
    evs = ref.events_of(records)
    first, last = days_between(data.draw, shift)
    for measure in ("count", "sum"):
        bins = data.draw(st.none() | st.lists(st.integers(-5, 120), min_size=1, max_size=5, unique=True).map(sorted))
        q: dict[str, Any] = {
            "kind": "distribution",
            "date_range": span(first, last),
            "event": data.draw(ref.event_refs()),
            "measure": measure,
            "include_zero": data.draw(st.booleans()),
            "filters": data.draw(st.lists(ref.filters(), max_size=1)),
        }
        if bins is not None:
            q["bins"] = [float(b) for b in bins]
        if measure == "sum":
            q["property"] = "amount"
        got = engine.run(q).result
        values = ref.distribution(evs, tz, first, last, q, profiles)
        edges = q.get("bins") or (AUTO_COUNT_EDGES if measure == "count" else AUTO_SUM_EDGES)
        assert got["people"] == len(values), q
        check_histogram(got["buckets"], values, edges, explicit=bins is not None, keys=("lo", "hi", "people"))
        assert close(got["mean"], sum(values) / len(values) if values else None)
        assert close(got["median"], ref.quantile(values, 0.5))
        assert close(got["p90"], ref.quantile(values, 0.9))
        assert close(got["min"], min(values, default=None))
        assert close(got["max"], max(values, default=None))


def test_distribution_hand_case(ws: Workspace) -> None:
    t = ms("2026-01-06 12:00")
    records = [ref.track("view", "L0", t + i, event_id=f"a{i:02d}", amount=1.5) for i in range(3)]
    records += [ref.track("view", "L1", t, event_id="b00", amount=120.0)]
    records += [ref.track("view", "L2", t + i, event_id=f"c{i:02d}") for i in range(12)]
    records += [ref.track("pay", "L3", t, event_id="d00", amount=9.0)]
    engine = ref.prepare(ws, SH, records)
    base = {
        "kind": "distribution",
        "date_range": {"from": "2026-01-06", "to": "2026-01-06"},
        "event": {"event": "view"},
    }
    got = engine.run({**base, "include_zero": True}).result
    assert [(b["label"], b["people"]) for b in got["buckets"]] == [
        ("0", 1),
        ("1", 1),
        ("2", 0),
        ("3", 1),
        *[(str(i), 0) for i in range(4, 10)],
        ("10–19", 1),
    ]
    assert (got["people"], got["mean"], got["median"], got["p90"]) == (4, 4.0, 2.0, pytest.approx(9.3))
    assert got["buckets"][0]["share"] == 0.25
    without = engine.run(base).result
    assert without["people"] == 3 and without["buckets"][0]["label"] == "1"
    sums = engine.run({**base, "measure": "sum", "property": "amount", "bins": [1, 10, 100]}).result
    assert [(b["label"], b["people"]) for b in sums["buckets"]] == [
        ("< 1", 1),
        ("[1, 10)", 1),
        ("[10, 100)", 0),
        ("≥ 100", 1),
    ]
    assert sums["mean"] == pytest.approx((4.5 + 120.0 + 0.0) / 3)
    auto = engine.run({**base, "measure": "sum", "property": "amount"}).result
    assert [(b["label"], b["people"]) for b in auto["buckets"]] == [
        ("[0, 1)", 1), ("[1, 2)", 0), ("[2, 5)", 1), ("[5, 10)", 0), ("[10, 20)", 0), ("[20, 50)", 0),
        ("[50, 100)", 0), ("[100, 200)", 1),
    ]  # fmt: skip


# interval --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tz", "shift"), ref.ZONES)
@SETTINGS
@given(data=st.data())
def test_interval_matches_reference(ws: Workspace, tz: str, shift: int, data: st.DataObject) -> None:
    records, profiles = data.draw(ref.logs_with_profiles(shift))
    engine = ref.prepare(ws, tz, records, chunks=data.draw(st.integers(1, 2)))
    evs = ref.events_of(records)
    first, last = days_between(data.draw, shift)
    for per in ("pair", "person"):
        q: dict[str, Any] = {
            "kind": "interval",
            "date_range": span(first, last),
            "from_event": data.draw(ref.event_refs()),
            "to_event": data.draw(ref.event_refs()),
            "max_gap": data.draw(
                st.sampled_from(
                    [{"value": 15, "unit": "minute"}, {"value": 3, "unit": "hour"}, {"value": 1, "unit": "day"},
                     {"value": 2, "unit": "week"}]
                )
            ),
            "per": per,
            "filters": data.draw(st.lists(ref.filters(), max_size=1)),
        }  # fmt: skip
        got = engine.run(q).result
        pairs = ref.intervals(evs, tz, first, last, q, profiles)
        gaps = [g for _, g in pairs]
        assert (got["pairs"], got["people"]) == (len(pairs), len({p for p, _ in pairs})), q
        gap_s = q["max_gap"]["value"] * {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}[q["max_gap"]["unit"]]
        edges = [e for e in INTERVAL_EDGES if e <= gap_s]
        check_histogram(got["histogram"], gaps, edges, explicit=True, keys=("lo_seconds", "hi_seconds", "count"))
        for name, qq in (("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9), ("p99", 0.99)):
            assert close(got[name], ref.quantile(gaps, qq)), name
        assert close(got["mean"], sum(gaps) / len(gaps) if gaps else None)
        assert close(got["max"], max(gaps, default=None))


def test_interval_hand_case(ws: Workspace) -> None:
    t = ms("2026-01-06 12:00")
    records = [
        ref.track("A", "L0", t, event_id="e1"),
        ref.track("A", "L0", t + 600_000, event_id="e2"),
        ref.track("B", "L0", t + 600_000, event_id="e3"),  # after e2 by event_id: e2 pairs with it, gap 0
        ref.track("B", "L0", t + 3_600_000, event_id="e4"),
        ref.track("A", "L0", t + 2 * 86_400_000, event_id="e5"),
        ref.track("B", "L0", t + 3 * 86_400_000 + 1000, event_id="e6"),  # 1 s beyond a day: e5 stays unpaired
        ref.track("B", "L1", t, event_id="f0"),
        ref.track("A", "L1", t, event_id="f1"),  # the B at the same instant comes first: no pair
    ]
    engine = ref.prepare(ws, SH, records)
    q = {
        "kind": "interval",
        "date_range": {"from": "2026-01-06", "to": "2026-01-10"},
        "from_event": {"event": "A"},
        "to_event": {"event": "B"},
        "max_gap": {"value": 1, "unit": "day"},
    }
    got = engine.run(q).result
    assert (got["pairs"], got["people"], got["min"], got["max"], got["p50"]) == (2, 1, 0.0, 600.0, 300.0)
    counted = [(b["label"], b["count"]) for b in got["histogram"] if b["count"]]
    assert counted == [("0s–10s", 1), ("10m–30m", 1)]
    assert got["histogram"][-1]["label"] == "≥ 1d"
    assert got["display"]["p50"] == "5m"
    person = engine.run({**q, "per": "person"}).result
    assert (person["pairs"], person["p50"]) == (1, 600.0)
    repeat = engine.run({**q, "from_event": {"event": "B"}, "max_gap": {"value": 2, "unit": "day"}}).result
    # B→B: e3→e4 (3000 s), e4→e6 (2 days + 1 s: too far)
    assert (repeat["pairs"], repeat["max"]) == (1, 3000.0)


def test_human_durations() -> None:
    assert [human(x) for x in (0, 0.5, 45, 60, 150, 7500, 86400 + 4 * 3600 + 59)] == [
        "0s", "0.5s", "45s", "1m", "2m 30s", "2h 5m", "1d 4h"
    ]  # fmt: skip


# bad input -------------------------------------------------------------------------------------------------------
BAD = [
    ({"kind": "ltv", "value_event": {"event": "pay"}}, "value_property"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "value_property": "nope"}, "unknown event property 'nope'"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "value_property": "channel"}, "not a numeric"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "math": "count", "value_property": "amount"}, "no 'value_"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "math": "count", "days": [-1]}, "between 0 and"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "math": "count", "days": []}, "days"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "math": "count", "cohort_interval": "hour"}, "cohort_interval"),
    ({"kind": "ltv", "value_event": {"event": "pay"}, "math": "count", "filters": [{"property": "x", "op": "is_set"}]},
     "unknown event property 'x'"),
    ({"kind": "distribution", "event": {"event": "pay"}, "measure": "sum"}, "needs a numeric 'property'"),
    ({"kind": "distribution", "event": {"event": "pay"}, "property": "amount"}, "takes no 'property'"),
    ({"kind": "distribution", "event": {"event": "pay"}, "bins": [5, 2]}, "strictly increasing"),
    ({"kind": "distribution", "event": {"event": "pay"}, "bins": list(range(51))}, "bins"),
    ({"kind": "distribution", "event": {"event": "pay"}, "measure": "sum", "property": "channel"}, "not numeric"),
    ({"kind": "distribution", "event": {"event": "pay"}, "measure": "sum", "property": "tags"}, "not numeric"),
    ({"kind": "distribution", "measure": "count"}, "event"),
    ({"kind": "interval", "from_event": {"event": "a"}, "to_event": {"event": "b"}, "max_gap": {"value": 400}},
     "at most 366 days"),
    ({"kind": "interval", "from_event": {"event": "a"}, "to_event": {"event": "b"}, "max_gap": {"value": 0}},
     "max_gap.value"),
    ({"kind": "interval", "from_event": {"event": "a"}, "to_event": {"event": "b"}, "per": "day"}, "per"),
    ({"kind": "interval", "from_event": {"event": "a", "filters": [{"property": "amount", "value": "x"}]},
      "to_event": {"event": "b"}}, "cannot use the value 'x'"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "message"), BAD)
def test_bad_input_is_a_clear_error(ws: Workspace, definition: dict[str, Any], message: str) -> None:
    engine = ref.prepare(ws, SH, [])
    with engine.project.store.transaction():
        engine.project.register("events", {"tags": PropertyType.LIST})
    with pytest.raises(ValidationError, match=re.escape(message)):
        engine.run(definition)


# snapshots ------------------------------------------------------------------------------------------------------
SNAPSHOTS = {
    "ltv_sum_week": (
        SH,
        {
            "kind": "ltv",
            "date_range": {"last": 30},
            "cohort_event": {"event": "signup"},
            "cohort_interval": "week",
            "value_event": {"event": "pay", "filters": [{"property": "channel", "op": "neq", "value": "x"}]},
            "value_property": "amount",
            "days": [0, 7, 30],
        },
    ),
    "ltv_count_dst": (
        "America/New_York",
        {"kind": "ltv", "date_range": {"last": 40}, "value_event": {"event": "pay"}, "math": "count", "days": [1, 7]},
    ),
    "distribution_count_auto_zero": (
        SH,
        {"kind": "distribution", "event": {"event": "pay"}, "include_zero": True, "date_range": {"last": 7}},
    ),
    "distribution_sum_bins": (
        SH,
        {
            "kind": "distribution",
            "event": {"event": "pay"},
            "measure": "sum",
            "property": "amount",
            "bins": [0, 10, 100],
            "filters": [{"property": "plan", "source": "user", "value": "gold"}],
        },
    ),
    "interval_person": (
        SH,
        {
            "kind": "interval",
            "from_event": {"event": "signup"},
            "to_event": {"event": "pay"},
            "max_gap": {"value": 2, "unit": "hour"},
            "per": "person",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
def test_sql_snapshot(workspace: Workspace, name: str) -> None:
    tz, definition = SNAPSHOTS[name]
    project = workspace.project()
    with project.store.transaction():
        project.register("events", {"amount": PropertyType.NUMBER, "channel": PropertyType.STRING})
        project.register("users", {"plan": PropertyType.STRING})
    assert_snapshot(name, Engine(project, tz), definition)
