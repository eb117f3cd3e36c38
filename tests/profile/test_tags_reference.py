"""Event tags equal a plain-Python reference on random logs (identity merges, ties in time, loads in chunks,
Asia/Shanghai and America/New_York across its change to daylight saving time), with history and incremental runs.

Each example defines one to four random event tags (every aggregate, with and without filters, windows, bins
and enumerations) on a fresh project, then:

1. loads part of the log and computes the tags for day ``d1`` — equal to the reference on that part;
2. loads the rest and computes day ``d2 > d1`` (incremental where the tag allows) — equal to the reference on
   the whole log, while the values read back for ``d1`` are still the ``d1`` values;
3. recomputes ``d2`` in full — the same values as the incremental run.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.profile import reference_tags
from tests.query.logs import (
    BASE_MS,
    CHANNELS,
    EVENTS,
    event_logs,
    fresh_project,
    load,
    person_names,
    reference_events,
    shift,
)
from userloop.profile import materialise as mat
from userloop.profile import tags
from userloop.profile.history import values_on
from userloop.profile.tagdefs import parse_tag
from userloop.query.compile import render
from userloop.store import ProjectStore, Workspace

AGGS = ["count", "sum", "avg", "min", "max", "distinct_count", "first", "last", "most_frequent", "active_days",
        "first_time", "last_time", "days_since_first", "days_since_last"]  # fmt: skip
PROPERTY_AGGS = {"sum", "avg", "min", "max", "distinct_count", "first", "last", "most_frequent"}
NUMBER_AGGS = {"count", "sum", "avg", "distinct_count", "active_days", "days_since_first", "days_since_last"}
#: One event of every name, a year before the log, so every tag's event exists when the tags are saved.
SEEDS = [
    {"type": "track", "event": ev, "distinct_id": "seeder", "time": BASE_MS - 365 * 86_400_000 + i,
     "event_id": f"seed_{ev}", "properties": {}}
    for i, ev in enumerate(EVENTS)
]  # fmt: skip
#: Shifting the log by 55 days puts New York's change to daylight saving time (2026-03-08) inside it.
SHIFTS = {"Asia/Shanghai": (0, 55), "America/New_York": (55,)}


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        op = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "is_set", "is_not_set"]))
        value: Any = draw(st.integers(0, 100))
        prop = "amount"
    else:
        op = draw(st.sampled_from(["eq", "neq", "in", "not_in", "is_set", "is_not_set"]))
        value = draw(st.sampled_from(CHANNELS))
        prop = "channel"
    if op in ("in", "not_in"):
        value = [value]
    f = {"property": prop, "op": op}
    return f if op in ("is_set", "is_not_set") else {**f, "value": value}


@st.composite
def windows(draw: st.DrawFn, log_start: date) -> dict[str, Any] | None:
    form = draw(st.sampled_from(["none", "none", "last", "range"]))
    if form == "none":
        return None
    if form == "last":
        return {"last": draw(st.integers(1, 25)), "include_today": draw(st.booleans())}
    first = log_start + timedelta(days=draw(st.integers(-2, 20)))
    return {"from": first.isoformat(), "to": (first + timedelta(days=draw(st.integers(0, 12)))).isoformat()}


@st.composite
def event_tags(draw: st.DrawFn, name: str, log_start: date) -> dict[str, Any]:
    agg = draw(st.sampled_from(AGGS))
    source: dict[str, Any] = {"from": "events", "event": draw(st.sampled_from([*EVENTS, "$any"])),
                              "agg": agg, "filters": draw(st.lists(filters(), max_size=2))}  # fmt: skip
    if agg in ("sum", "avg"):
        source["property"] = "amount"
    elif agg in PROPERTY_AGGS:
        source["property"] = draw(st.sampled_from(["amount", "channel"]))
    window = draw(windows(log_start))
    if window is not None:
        source["window"] = window
    tag: dict[str, Any] = {"name": name, "kind": "behaviour", "source": source}
    natural = (
        "number" if agg in NUMBER_AGGS
        else "date" if agg in ("first_time", "last_time")
        else "string" if source["property"] == "channel"
        else "number"
    )  # fmt: skip
    if natural == "number" and draw(st.booleans()):
        edges = sorted(draw(st.sets(st.integers(0, 60), min_size=1, max_size=4)))
        return {**tag, "type": "enum", "bins": {"edges": edges, "labels": [f"b{i}" for i in range(len(edges) + 1)]}}
    if natural == "string" and draw(st.booleans()):
        return {**tag, "type": "enum", "values": draw(st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True))}
    return {**tag, "type": natural}


def engine_values(project: ProjectStore, tag: str, on: date) -> dict[int, Any]:
    rows = project.con.execute(render(values_on(project.schema, f"tag_{tag}", on))).fetchall()
    return {int(u): v for u, v in rows}


def by_name(values: dict[int, Any], names: dict[int, str]) -> dict[str, Any]:
    return {names[u]: v for u, v in values.items()}


def assert_same(got: dict[str, Any], want: dict[str, Any], what: str) -> None:
    assert got.keys() == want.keys(), f"{what}: people differ: {sorted(got.keys() ^ want.keys())}"
    for person, value in want.items():
        g = got[person]
        if isinstance(value, float) and not isinstance(g, str):
            assert math.isclose(g, value, rel_tol=1e-9, abs_tol=1e-9), f"{what}: {person}: {g} != {value}"
        else:
            assert g == value, f"{what}: {person}: {g!r} != {value!r}"


@settings(
    max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_event_tags_equal_reference_with_history_and_increments(ws: Workspace, data: st.DataObject) -> None:
    tz = data.draw(st.sampled_from(list(SHIFTS)), label="timezone")
    days = data.draw(st.sampled_from(SHIFTS[tz]), label="shift")
    records = [*SEEDS, *shift(data.draw(event_logs(max_events=30)), days)]
    log_start = datetime.fromtimestamp(BASE_MS / 1000, UTC).date() + timedelta(days=days)
    # the second load may be empty: then only the passing of days brings events into the tags
    cut = data.draw(st.one_of(st.just(len(records)), st.integers(len(SEEDS) + 1, len(records))), label="cut")
    n = data.draw(st.integers(1, 4), label="tags")
    defs = [data.draw(event_tags(f"t{i}", log_start), label=f"t{i}") for i in range(n)]
    d1 = log_start + timedelta(days=data.draw(st.integers(-1, 23), label="d1"))
    d2 = d1 + timedelta(days=data.draw(st.integers(1, 6), label="d2 - d1"))
    chunks = data.draw(st.integers(1, 3), label="chunks")

    name, project = fresh_project(ws, tz)
    project_id = ws.project_info(name).id
    load(project, records[:cut], chunks=chunks)
    for d in defs:
        tags.save(ws.meta, project, project_id, d)
    # every load of a test lands within milliseconds: no margin, and never fall back to a full run
    with patch.object(mat, "WATERMARK_MARGIN", timedelta(0)), patch.object(mat, "INCREMENTAL_MAX_SHARE", math.inf):
        mat.materialise(project, ws.meta, project_id, tz, d1)
        names = person_names(project)
        early = reference_events(records[:cut])
        first = {d["name"]: engine_values(project, d["name"], d1) for d in defs}
        for d in defs:
            want = reference_tags.tag_values(early, d, d1, tz)
            assert_same(by_name(first[d["name"]], names), want, f"{d['name']} on {d1} after the first load")

        load(project, records[cut:], chunks=chunks)
        runs = {r.target: r for r in mat.materialise(project, ws.meta, project_id, tz, d2)}
        names = person_names(project)
        evs = reference_events(records)
        second = {d["name"]: engine_values(project, d["name"], d2) for d in defs}
        for d in defs:
            tag = parse_tag(d)
            assert runs[tag.table].stats["mode"] == ("incremental" if tag.incremental else "full")
            assert_same(
                by_name(second[d["name"]], names), reference_tags.tag_values(evs, d, d2, tz), f"{d['name']} on {d2}"
            )
            assert engine_values(project, d["name"], d1) == first[d["name"]], "history of d1 changed"

        mat.materialise(project, ws.meta, project_id, tz, d2, full=True)
        for d in defs:
            assert engine_values(project, d["name"], d2) == second[d["name"]], f"{d['name']}: incremental != full"
