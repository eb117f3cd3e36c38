"""The drilldown kind: per-value splits of a metric's change equal a brute-force reference on random logs; the
Adtributor ranking and the sentences on hand cases; refusals; SQL snapshots."""

from __future__ import annotations

import itertools
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
from userloop.query.kinds.drilldown import js_surprise
from userloop.schema.types import PropertyType
from userloop.store import Workspace

SETTINGS = settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SH = "Asia/Shanghai"
DIMENSIONS = [
    {"property": "channel"},
    {"property": "event"},
    {"property": "amount"},
    {"property": "plan", "source": "user"},
]


def ms(local: str, tz: str = SH) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def span(first: date, last: date) -> dict[str, str]:
    return {"from": first.isoformat(), "to": last.isoformat()}


@st.composite
def periods(draw: st.DrawFn, shift: int) -> tuple[dict[str, Any], dict[str, tuple[date, date]]]:
    """'current' (and sometimes an explicit 'baseline' before or after it) and the days the reference uses."""
    first = ref.FIRST_DAY + timedelta(days=shift + draw(st.integers(3, 14)))
    last = first + timedelta(days=draw(st.integers(0, 6)))
    fields: dict[str, Any] = {"current": span(first, last)}
    if draw(st.booleans()):
        return fields, {"current": (first, last), "baseline": ref.previous(first, last)}
    length = last - first  # a baseline is as long as the current period
    if draw(st.booleans()):
        b_last = first - timedelta(days=draw(st.integers(1, 3)))
        b_first = b_last - length
    else:
        b_first = last + timedelta(days=draw(st.integers(1, 3)))
        b_last = b_first + length
    fields["baseline"] = span(b_first, b_last)
    return fields, {"current": (first, last), "baseline": (b_first, b_last)}


@pytest.mark.parametrize(("tz", "shift"), ref.ZONES)
@SETTINGS
@given(data=st.data())
def test_drilldown_matches_reference(ws: Workspace, tz: str, shift: int, data: st.DataObject) -> None:
    records, profiles = data.draw(ref.logs_with_profiles(shift))
    engine = ref.prepare(ws, tz, records, chunks=data.draw(st.integers(1, 2)))
    evs = ref.events_of(records)
    fields, days = data.draw(periods(shift))
    dims = data.draw(st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=4, unique_by=lambda d: d["property"]))
    for math_op in ("total", "users", "sum"):
        series = data.draw(ref.event_refs()) | {"math": math_op}
        if math_op == "sum":
            series["property"] = "amount"
        q = {
            "kind": "drilldown",
            "series": series,
            "dimensions": dims,
            "top": data.draw(st.integers(1, 3)),
            "filters": data.draw(st.lists(ref.filters(), max_size=1)),
            **fields,
        }
        got = engine.run(q).result
        want = ref.drilldown(evs, tz, days, q, profiles)
        check(got, want, q)
        for earlier in got["test"]["earlier"][:2]:  # the comparable earlier periods' totals, brute force
            span_ = (date.fromisoformat(earlier["start"]), date.fromisoformat(earlier["end"]))
            assert earlier["value"] == ref.drilldown(evs, tz, {"current": span_}, q, profiles)["totals"]["current"]


def check(got: dict[str, Any], want: dict[str, Any], q: dict[str, Any]) -> None:
    totals = want["totals"]
    assert (got["current"]["value"], got["baseline"]["value"]) == (totals["current"], totals["baseline"]), q
    assert got["current"]["start"] == q["current"]["from"]
    change = totals["current"] - totals["baseline"]
    assert got["change"] == change
    by_name = {d["property"]: d for d in got["dimensions"]}
    assert set(by_name) == {d["property"] for d in q["dimensions"]}
    for name, rows in want["dimensions"].items():
        dim = by_name[name]
        seen = {v["label"]: (v["kind"], v["values_folded"], v["current"], v["baseline"]) for v in dim["values"]}
        assert seen == rows, (name, q)
        assert len(seen) == len(dim["values"])
        for v in dim["values"]:
            assert v["contribution"] == ((v["current"] - v["baseline"]) / change if change else None)
        # Adtributor's set, from the values whose change differs significantly from the rest's
        significant = {v["label"] for v in dim["values"] if v["significant"]}
        assert all(v["kind"] != "other" and v["p_value"] < 0.05 for v in dim["values"] if v["significant"])
        assert not significant or got["test"]["significant"]
        chosen, _ = ref.explanatory({k: r for k, r in rows.items() if k in significant}, totals)
        assert dim["root_cause"] == (chosen is not None), (name, q)
        assert dim["explanatory"] == (chosen or []), (name, q)
    # ranked: root causes first, by the surprise of their explanatory set
    keys = [(not d["root_cause"], -(d["score"] or 0.0)) for d in got["dimensions"]]
    for a, b in itertools.pairwise(keys):
        assert a[0] < b[0] or (a[0] == b[0] and (a[0] or a[1] <= b[1] + 1e-12)), keys
    assert got["summary"]["en"] and got["summary"]["zh"]


def test_surprise_is_jensen_shannon() -> None:
    assert js_surprise(0.5, 0.5) == 0.0
    assert js_surprise(1.0, 0.0) == pytest.approx(0.5)
    for p, q in ((0.2, 0.6), (0.01, 0.3), (0.7, 0.1)):
        assert js_surprise(p, q) == pytest.approx(ref.js(p, q))
    # surprise grows with the distance between the two shares
    assert js_surprise(0.3, 0.31) < js_surprise(0.3, 0.5) < js_surprise(0.3, 0.9)


def hand_log() -> list[dict[str, Any]]:
    """Baseline day 2026-01-06: 100 people on channel a, 100 on b. Current day 2026-01-07: 30 on a, 100 on b.
    Plan gold/free splits both channels evenly (so plan explains nothing), and the b people also do 'cart'."""
    records = []
    for day, n_a in (("2026-01-06", 100), ("2026-01-07", 30)):
        for channel, n in (("a", n_a), ("b", 100)):
            for i in range(n):
                who = f"{channel}{i}"
                t = ms(f"{day} 09:00") + i * 1000
                records.append(ref.track("view", who, t, event_id=f"{day}-{who}", channel=channel))
                if channel == "b":
                    records.append(ref.track("cart", who, t + 1, event_id=f"{day}-{who}-c", channel="c"))
    return records


def test_drilldown_hand_case(ws: Workspace) -> None:
    engine = ref.prepare(ws, SH, hand_log())
    q = {
        "kind": "drilldown",
        "series": {"event": "view", "math": "users", "name": "DAU"},
        "current": {"from": "2026-01-07", "to": "2026-01-07"},
        "dimensions": [{"property": "event"}, {"property": "channel"}],
    }
    got = engine.run(q).result
    assert (got["current"]["value"], got["baseline"]["value"], got["change"]) == (130.0, 200.0, -70.0)
    assert got["baseline"]["start"] == got["baseline"]["end"] == "2026-01-06"
    assert got["change_pct"] == pytest.approx(-0.35)
    channel, event = got["dimensions"]
    assert channel["property"] == "channel" and channel["root_cause"] and channel["explanatory"] == ["a"]
    assert [(v["label"], v["current"], v["baseline"], v["contribution"]) for v in channel["values"]] == [
        ("a", 30.0, 100.0, 1.0),
        ("b", 100.0, 100.0, 0.0),
    ]
    assert not event["root_cause"]  # one value holds everything in both periods: no surprise
    assert got["summary"] == {
        "en": "DAU fell 35%: 100% of the drop is channel = a",
        "zh": "DAU 下降 35%：100% 的下降来自 channel = a",
    }
    # people are attributed by their first event: with $any, b people count under 'view' (09:00:00.xxx),
    # never under 'cart' (1 ms later), so 'cart' never appears
    anyq = {**q, "series": {"event": "$any", "math": "users"}, "dimensions": [{"property": "event"}]}
    values = engine.run(anyq).result["dimensions"][0]["values"]
    assert [(v["label"], v["current"], v["baseline"]) for v in values] == [("view", 130.0, 200.0)]
    # events: 'cart' has channel c, so channel's values are a, b, c; top 1 folds b and c into $other
    totalq = {**q, "series": {"event": "$any"}, "dimensions": [{"property": "channel"}], "top": 1}
    totals = engine.run(totalq).result
    assert [(v["label"], v["kind"], v["values_folded"], v["current"], v["baseline"])
            for v in totals["dimensions"][0]["values"]] == [
        ("a", "value", 1, 30.0, 100.0),
        ("$other", "other", 2, 200.0, 200.0),
    ]  # fmt: skip
    assert totals["summary"]["en"] == "$any events fell 23%: 100% of the drop is channel = a"


def test_drilldown_sentences_for_edge_cases(ws: Workspace) -> None:
    engine = ref.prepare(ws, SH, hand_log())
    same = {
        "kind": "drilldown",
        "series": {"event": "view", "filters": [{"property": "channel", "value": "b"}]},
        "current": {"from": "2026-01-07", "to": "2026-01-07"},
        "dimensions": [{"property": "channel"}],
    }
    got = engine.run(same).result
    assert got["summary"] == {
        "en": "view events did not change (100 in both periods).",
        "zh": "view 次数 没有变化（两个时期都是 100）。",
    }
    assert got["dimensions"][0]["values"][0]["contribution"] is None
    rise = {**same, "series": {"event": "view"}, "current": {"from": "2026-01-06", "to": "2026-01-06"}}
    got = engine.run(rise).result
    assert got["baseline"]["value"] == 0.0 and got["change_pct"] is None
    assert got["summary"] == {  # both channels came from nothing: the rise is everywhere at once
        "en": "view events rose from 0 to 200, spread evenly across values: no value stands out.",
        "zh": "view 次数 从 0 上升到 200，各维度均匀变化，没有突出的取值。",
    }

    def even(n_base: int, n_cur: int) -> list[dict[str, Any]]:
        return [
            ref.track("view", f"{c}{i}", ms(f"{day} 10:00") + i, event_id=f"{day}{c}{i}", channel=c)
            for day, n in (("2026-01-06", n_base), ("2026-01-07", n_cur))
            for c in "ab"
            for i in range(n)
        ]

    # a rise spread evenly over the values: significant, but no value stands out, so none is named
    engine = ref.prepare(ws, SH, even(20, 40))
    got = engine.run({**same, "series": {"event": "view", "math": "sum", "property": "amount"}}).result
    assert got["summary"]["en"] == "sum of amount in view did not change (0 in both periods)."
    got = engine.run({**same, "series": {"event": "view"}}).result
    assert got["verdict"] == "even" and got["test"]["significant"] and not got["dimensions"][0]["root_cause"]
    assert got["summary"]["en"] == "view events rose 100%, spread evenly across values: no value stands out."
    # 4 → 8 events: a doubling, but within counting noise (z = 4 / sqrt(4 + 8) = 1.15): no cause named
    engine = ref.prepare(ws, SH, even(2, 4))
    got = engine.run({**same, "series": {"event": "view"}}).result
    assert got["verdict"] == "noise" and got["test"]["method"] == "poisson"
    assert got["test"]["statistic"] == pytest.approx(4 / 12**0.5)
    assert got["summary"] == {
        "en": "view events rose 100%, within normal variation (a usual change is ±3.46): no cause named.",
        "zh": "view 次数 上升 100%，在正常波动范围内（通常变化 ±3.46），不指认原因。",
    }


BAD = [
    ({"series": {"event": "view"}, "current": {"last": 7}, "dimensions": []}, "dimensions"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "dimensions": [{"property": "channel"}] * 2},
     "only once"),
    ({"series": {"event": "view"}, "current": {"last": 7},
      "dimensions": [{"property": f"p{i}"} for i in range(11)]}, "at most 10"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "dimensions": [{"property": "nope"}]},
     "unknown event property 'nope'"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "dimensions": [{"property": "nope", "source": "user"}]},
     "unknown user"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "dimensions": [{"property": "tags"}]}, "is a list"),
    ({"series": {"event": "view", "math": "sum"}, "current": {"last": 7}, "dimensions": [{"property": "channel"}]},
     "needs a numeric 'property'"),
    ({"series": {"event": "view", "math": "sum", "property": "channel"}, "current": {"last": 7},
      "dimensions": [{"property": "channel"}]}, "not a numeric"),
    ({"series": {"event": "view", "math": "users", "property": "amount"}, "current": {"last": 7},
      "dimensions": [{"property": "channel"}]}, "takes no 'property'"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "baseline": {"last": 7},
      "dimensions": [{"property": "channel"}]}, "overlaps"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "baseline": {"from": "2026-01-01", "to": "2026-01-14"},
      "dimensions": [{"property": "channel"}]}, "has 14 days and current"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "date_range": {"last": 7},
      "dimensions": [{"property": "channel"}]}, "no 'date_range'"),
    ({"series": {"event": "view"}, "dimensions": [{"property": "channel"}]}, "current"),
    ({"series": {"event": "view"}, "current": {"last": 7}, "top": 0, "dimensions": [{"property": "channel"}]},
     "top"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "message"), BAD)
def test_bad_input_is_a_clear_error(ws: Workspace, definition: dict[str, Any], message: str) -> None:
    engine = ref.prepare(ws, SH, [])
    with engine.project.store.transaction():
        engine.project.register("events", {"tags": PropertyType.LIST})
    with pytest.raises(ValidationError, match=re.escape(message)):
        engine.run({"kind": "drilldown", **definition})


SNAPSHOTS = {
    "drilldown_users_mixed": (
        SH,
        {
            "kind": "drilldown",
            "series": {"event": "$any", "math": "users", "name": "DAU"},
            "current": {"last": 7},
            "dimensions": [{"property": "channel"}, {"property": "plan", "source": "user"}],
            "filters": [{"property": "channel", "op": "neq", "value": "x"}],
        },
    ),
    "drilldown_sum_dst": (
        "America/New_York",
        {
            "kind": "drilldown",
            "series": {"event": "pay", "math": "sum", "property": "amount"},
            "current": {"from": "2026-03-08", "to": "2026-03-14"},
            "baseline": {"from": "2026-02-22", "to": "2026-02-28"},
            "dimensions": [{"property": "channel"}, {"property": "plan", "source": "user"}],
            "top": 5,
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
