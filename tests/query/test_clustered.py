"""Clustering a project's events by person and time (``ProjectStore.cluster_events``) changes no analysis: the
same random logs give the same funnels, retention, trends and paths before and after, and with events appended
after a clustering as without it."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import event_logs, fresh_project, load, shift
from userloop.query.engine import Engine
from userloop.store import ProjectStore, Workspace

TODAY = date(2026, 3, 1)
RANGE = {"from": "2026-01-05", "to": "2026-01-25"}
STEPS = [{"event": "view"}, {"event": "cart"}, {"event": "pay"}]
DEFINITIONS: list[dict[str, Any]] = [
    {"kind": "funnel", "date_range": RANGE, "steps": STEPS, "window": {"value": 2, "unit": "day"}},
    {"kind": "funnel", "date_range": RANGE, "steps": STEPS, "order": "strict"},
    {"kind": "funnel", "date_range": RANGE, "steps": STEPS, "order": "any", "breakdown": {"property": "channel"}},
    {"kind": "funnel", "date_range": RANGE, "steps": [{"event": "$any"}, {"event": "$any"}]},
    {"kind": "retention", "date_range": RANGE, "start": {"event": "$any"}, "start_type": "first_time",
     "interval": "day", "periods": 7},
    {"kind": "retention", "date_range": RANGE, "start": {"event": "view"}, "return_event": {"event": "pay"},
     "start_type": "recurring", "interval": "week", "periods": 2},
    {"kind": "trends", "date_range": RANGE, "series": [{"event": "view"}, {"event": "$any", "math": "users"}],
     "breakdown": {"property": "channel"}},
    {"kind": "paths", "date_range": RANGE, "start": {"event": "view"}},
]  # fmt: skip


def results(project: ProjectStore) -> list[dict[str, Any]]:
    engine = Engine(project, "Asia/Shanghai")
    return [engine.run(d, today=TODAY, use_cache=False).result for d in DEFINITIONS]


@settings(max_examples=examples(8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=event_logs(max_events=30), cut=st.floats(0, 1))
def test_clustering_changes_no_result(ws: Workspace, records: list[dict[str, Any]], cut: float) -> None:
    records = shift(records, 0)  # a seed event registers the properties the definitions name
    at = int(len(records) * cut)
    _, plain = fresh_project(ws)
    load(plain, records[:at])
    load(plain, records[at:])
    _, clustered = fresh_project(ws)
    load(clustered, records[:at])
    version = clustered.data_version()
    assert clustered.cluster_events() == at  # every record is one event (sign-ups too)
    assert clustered.data_version() == version  # the rows are the same rows: cached results stay valid
    load(clustered, records[at:])  # appended after the clustered rows
    assert results(clustered) == results(plain)
    assert clustered.cluster_events() == len(records)
    assert results(clustered) == results(plain)
