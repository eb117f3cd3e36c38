"""Trends: the engine equals a plain-Python reference on random logs (ties, merges, two kinds of time zone)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import EVENTS, Ev, event_logs, fresh_project, load, reference_events
from tests.query.snapshot import assert_snapshot
from userloop.core.errors import ValidationError
from userloop.query.compile import bucket_of, buckets
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.sqlbuild import sql

RANGE = (date(2026, 1, 5), date(2026, 1, 25))


# reference ----------------------------------------------------------------------------------------------------
def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont, numpy's default)."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


STATS = {
    "avg": lambda xs: sum(xs) / len(xs),
    "min": min,
    "max": max,
    "sum": sum,
    "median": lambda xs: quantile(xs, 0.5),
    "p90": lambda xs: quantile(xs, 0.9),
    "p95": lambda xs: quantile(xs, 0.95),
    "p99": lambda xs: quantile(xs, 0.99),
}


def matches(ev: Ev, series: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    if series["event"] != "$any" and ev.event != series["event"]:
        return False
    for f in [*series.get("filters", []), *filters]:
        value = ev.channel if f["property"] == "channel" else ev.amount
        if f["op"] == "eq" and value != f["value"]:
            return False
        if f["op"] == "gt" and (value is None or not value > f["value"]):
            return False
    return True


def reference(
    evs: list[Ev], definition: dict[str, Any], tz: str
) -> dict[tuple[int, str | None], tuple[list[float | None], float | None]]:
    """(series index, breakdown) → (values per bucket, total over the range)."""
    first, last = (
        date.fromisoformat(definition["date_range"]["from"]),
        date.fromisoformat(definition["date_range"]["to"]),
    )
    interval = definition.get("interval", "day")
    labels = buckets(interval, first, last)
    by_breakdown = "breakdown" in definition
    out: dict[tuple[int, str | None], tuple[list[float | None], float | None]] = {}
    for i, s in enumerate(definition["series"]):
        math_ = s.get("math", "total")
        rolling = {"dau": 1, "wau": 7, "mau": 30}.get(math_)
        scan_first = first - timedelta(days=(rolling or 1) - 1)
        chosen = [
            e for e in evs if scan_first <= e.local_day(tz) <= last and matches(e, s, definition.get("filters", []))
        ]
        groups: dict[str | None, list[Ev]] = defaultdict(list)
        for e in chosen:
            key = (e.channel if e.channel is not None else "$none") if by_breakdown else None
            groups[key].append(e)
        for key, group in groups.items():
            if rolling:
                days_of = defaultdict(set)
                for e in group:
                    days_of[e.local_day(tz)].add(e.person)
                data: list[float | None] = []
                for b in labels:
                    end = b if interval == "day" else min(_next(b, interval) - timedelta(days=1), last)
                    people = set().union(*(days_of[end - timedelta(days=k)] for k in range(rolling)))
                    data.append(float(len(people)))
                out[(i, key)] = (data, None)
                continue
            in_range = [e for e in group if first <= e.local_day(tz)]
            per_bucket: dict[date, list[Ev]] = defaultdict(list)
            for e in in_range:
                per_bucket[bucket_of(e.local_day(tz), interval)].append(e)
            data = [_measure(per_bucket.get(b, []), s) for b in labels]  # type: ignore[arg-type]
            out[(i, key)] = (data, _measure(in_range, s))
    return out


def _next(b: date, interval: str) -> date:
    from userloop.query.compile import next_bucket

    return next_bucket(b, interval)  # type: ignore[arg-type]


def _measure(evs: list[Ev], s: dict[str, Any]) -> float | None:
    m = s.get("math", "total")
    if m == "total":
        return float(len(evs))
    if m == "users":
        return float(len({e.person for e in evs}))
    if m.startswith("per_user_"):
        counts: dict[str, int] = defaultdict(int)
        for e in evs:
            counts[e.person] += 1
        return float(STATS[m.removeprefix("per_user_")]([float(c) for c in counts.values()])) if counts else None
    values = [e.amount for e in evs if e.amount is not None]
    if m == "sum":
        return float(sum(values)) if values else (0.0 if not evs else None)
    return float(STATS[m](values)) if values else None


def engine_lines(result: dict[str, Any]) -> dict[tuple[int, str | None], tuple[list[float | None], float | None]]:
    return {
        ("ABCDEFGHIJ".index(line["series"]), line["breakdown"]): (line["data"], line["total"])
        for line in result["series"]
    }


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# property test -------------------------------------------------------------------------------------------------
MATHS = ["total", "users", "per_user_avg", "per_user_max", "per_user_median", "sum", "avg", "min", "p90", "dau", "wau"]


@st.composite
def trend_defs(draw: st.DrawFn) -> dict[str, Any]:
    series = []
    for _ in range(draw(st.integers(1, 2))):
        m = draw(st.sampled_from(MATHS))
        s: dict[str, Any] = {"event": draw(st.sampled_from([*EVENTS, "$any"])), "math": m}
        if m in ("sum", "avg", "min", "p90"):
            s["property"] = "amount"
        if draw(st.booleans()):
            s["filters"] = [{"property": "channel", "op": "eq", "value": draw(st.sampled_from(["a", "b"]))}]
        series.append(s)
    d: dict[str, Any] = {
        "kind": "trends",
        "date_range": {"from": RANGE[0].isoformat(), "to": RANGE[1].isoformat()},
        "interval": draw(st.sampled_from(["day", "week"])),
        "series": series,
    }
    if draw(st.booleans()):
        d["filters"] = [{"property": "amount", "op": "gt", "value": 30.0}]
    if draw(st.booleans()):
        d["breakdown"] = {"property": "channel"}
    return d


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    log=event_logs(max_events=40), definition=trend_defs(), tz=st.sampled_from(["Asia/Shanghai", "America/New_York"])
)
def test_trends_equal_the_reference(
    ws: Workspace, log: list[dict[str, Any]], definition: dict[str, Any], tz: str
) -> None:
    # the logs always carry both properties somewhere, so filters and breakdowns on them are valid
    log = [*log, _seed("amount", 5.0), _seed("channel", "a")]
    _, project = fresh_project(ws, tz)
    load(project, log, chunks=2)
    got = engine_lines(Engine(project, tz).run(definition).result)
    want = reference(reference_events(log), definition, tz)
    for key, (data, total) in want.items():
        assert key in got, f"missing line {key}"
        assert all(close(a, b) for a, b in zip(got[key][0], data, strict=True)), (key, got[key][0], data)
        assert close(got[key][1], total), (key, got[key][1], total)
    for key, (data, _total) in got.items():
        if key not in want:  # a line the reference lacks must be empty
            assert all(v in (0.0, None) for v in data), key


def _seed(prop: str, value: object) -> dict[str, Any]:
    """An event far outside the range that registers a property, so every definition compiles."""
    return {
        "type": "track",
        "event": "seed",
        "distinct_id": "seed",
        "time": 1_600_000_000_000,
        "event_id": f"seed_{prop}",
        "properties": {prop: value},
    }


# hand cases ----------------------------------------------------------------------------------------------------
def _ev(i: int, who: str, event: str, day: int, hour: int = 12, **props: Any) -> dict[str, Any]:
    from tests.query.logs import BASE_MS, DAY_MS, HOUR_MS

    if who.startswith("L"):
        props["$is_login_id"] = True
    return {
        "type": "track",
        "event": event,
        "distinct_id": who,
        "time": BASE_MS + day * DAY_MS + hour * HOUR_MS - 8 * HOUR_MS,  # hour is Shanghai local time
        "event_id": f"h{i}",
        "properties": props,
    }


@pytest.fixture(scope="module")
def hand(ws: Workspace) -> Engine:
    log = [
        _ev(1, "a0", "view", 0, channel="a", amount=10.0),
        _ev(2, "a0", "view", 0, channel="a"),
        _ev(3, "a1", "view", 0, channel="b", amount=30.0),
        _ev(4, "a1", "pay", 1, amount=100.0),
        _ev(5, "a2", "view", 1, hour=0, channel="c"),  # just after local midnight: day 1, not day 0
        _ev(6, "a2", "view", 8, channel="a"),
    ]
    _, project = fresh_project(ws)
    load(project, log)
    return Engine(project, "Asia/Shanghai")


def _run(engine: Engine, **d: Any) -> dict[str, Any]:
    base = {"kind": "trends", "date_range": {"from": "2026-01-05", "to": "2026-01-13"}}
    return engine.run(base | d).result


def test_counts_users_and_local_days(hand: Engine) -> None:
    r = _run(hand, series=[{"event": "view"}, {"event": "view", "math": "users"}])
    a, b = r["series"]
    assert a["data"][:3] == [3.0, 1.0, 0.0] and a["total"] == 5.0
    assert b["data"][:2] == [2.0, 1.0] and b["total"] == 3.0  # three people viewed over the range


def test_formula_and_division_by_zero(hand: Engine) -> None:
    r = _run(hand, series=[{"event": "pay", "math": "users"}, {"event": "view", "math": "users"}], formula="A/B*100")
    [line] = r["series"]
    assert line["series"] == "formula"
    assert line["data"][1] == 100.0 and line["data"][0] == 0.0 and line["data"][2] is None  # 0/0 → empty point
    assert line["total"] == pytest.approx(100 / 3)


def test_breakdown_top_values_and_other(hand: Engine) -> None:
    r = _run(hand, series=[{"event": "view"}], breakdown={"property": "channel", "limit": 1})
    by = {line["breakdown"]: line["total"] for line in r["series"]}
    assert by == {"a": 3.0, "$other": 2.0}
    assert r["series"][0]["breakdown"] == "a"


def test_numeric_bins_and_compare(hand: Engine) -> None:
    r = _run(hand, series=[{"event": "$any"}], breakdown={"property": "amount", "bins": 2})
    assert {line["breakdown"] for line in r["series"]} == {"10.0..55.0", "55.0..100.0", "$none"}
    r = _run(hand, series=[{"event": "view"}], compare=True, date_range={"from": "2026-01-13", "to": "2026-01-13"})
    assert r["series"][0]["data"] == [1.0] and r["compare"][0]["data"] == [0.0]
    assert r["compare_buckets"] == ["2026-01-12"]


def test_bad_definitions_are_clear(hand: Engine) -> None:
    with pytest.raises(ValidationError, match="unknown event property 'nope'"):
        _run(hand, series=[{"event": "view", "math": "sum", "property": "nope"}])
    with pytest.raises(ValidationError, match="not a numeric"):
        _run(hand, series=[{"event": "view", "math": "sum", "property": "channel"}])
    with pytest.raises(ValidationError, match="formula"):
        _run(hand, series=[{"event": "view"}], formula="__import__('os')")
    with pytest.raises(ValidationError, match="letters A–A"):
        _run(hand, series=[{"event": "view"}], formula="A/B")
    with pytest.raises(ValidationError, match="series"):
        _run(hand, series=[])
    with pytest.raises(ValidationError, match="hourly trends"):
        _run(hand, series=[{"event": "view"}], interval="hour", date_range={"last": 90})
    with pytest.raises(ValidationError, match="unknown analysis kind"):
        hand.run({"kind": "nope"})
    assert (
        "never been seen"
        in hand.run({"kind": "trends", "date_range": {"last": 7}, "series": [{"event": "typo"}]}).warnings[0]
    )


def test_injection_through_names_and_values_stays_data(hand: Engine) -> None:
    evil = "view'; DROP TABLE events; --"
    r = _run(hand, series=[{"event": evil, "filters": [{"property": "channel", "op": "eq", "value": evil}]}])
    assert r["series"][0]["total"] == 0.0
    with pytest.raises(ValidationError, match="unknown event property"):
        _run(hand, series=[{"event": "view", "filters": [{"property": 'x" OR 1=1 --', "value": "a"}]}])


def test_cache_serves_until_data_changes(hand: Engine) -> None:
    d = {"kind": "trends", "date_range": {"last": 7}, "series": [{"event": "view"}]}
    first = hand.run(d)
    second = hand.run(d)
    assert not first.cached and second.cached and second.result == first.result
    load(hand.project, [_ev(99, "a5", "view", 300)])
    assert not hand.run(d).cached


def test_snapshot(hand: Engine) -> None:
    assert_snapshot(
        "trends_breakdown_compare",
        hand,
        {
            "kind": "trends",
            "date_range": {"last": 14},
            "series": [{"event": "view", "math": "users"}, {"event": "pay", "math": "sum", "property": "amount"}],
            "breakdown": {"property": "channel"},
            "filters": [{"property": "amount", "op": "gt", "value": 1}],
            "compare": True,
        },
    )
    assert_snapshot(
        "trends_wau_per_user",
        hand,
        {
            "kind": "trends",
            "date_range": {"last": 14},
            "series": [{"event": "$any", "math": "wau"}, {"event": "view", "math": "per_user_p90"}],
        },
    )


def test_timeout_and_cancel(hand: Engine) -> None:
    from userloop.core.errors import QueryError

    heavy = {"kind": "trends", "date_range": {"last": 7}, "series": [{"event": "view"}]}
    with pytest.raises(QueryError, match="longer than"):
        # a statement that runs for seconds: interrupt it after 0.1 s
        hand._execute({"s": sql("SELECT count(*) FROM range(3000000000) a")}, timeout_s=0.1, query_id=None)
    assert hand.run(heavy, use_cache=False).result["series"]

    import threading
    import time

    from userloop.query.engine import cancel

    errors: list[Exception] = []

    def long_query() -> None:
        try:
            hand._execute({"s": sql("SELECT count(*) FROM range(3000000000) a")}, timeout_s=60, query_id="q1")
        except QueryError as exc:
            errors.append(exc)

    worker = threading.Thread(target=long_query)
    worker.start()
    deadline = time.monotonic() + 10
    while not cancel("q1"):
        assert time.monotonic() < deadline, "the query never started"
        time.sleep(0.02)
    worker.join(10)
    assert errors and errors[0].code == "query_cancelled"
    assert not cancel("q1")
