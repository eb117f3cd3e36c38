"""The nightly maintenance job: it clusters a project's events by person once enough rows were appended since the
last clustering (and not before), runs from the scheduler with its run in the job history, and changes no
analysis's result."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from tests.query.logs import event_logs, fresh_project, load, shift
from tests.query.test_clustered import results
from userloop.service.maintenance import CLUSTERED, clustered_rows, maintenance
from userloop.service.scheduler import Scheduler, run_as_dict
from userloop.store import ProjectStore, Workspace
from userloop.store.service_tables import create_tables
from userloop.store.sqlbuild import sql


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("maintenance") / "ws")
    create_tables(workspace.meta)
    yield workspace
    workspace.close()


def _event(who: str, at: int, eid: str) -> dict[str, Any]:
    return {"type": "track", "event": "view", "distinct_id": who, "time": 1767600000000 + at * 60_000,
            "event_id": eid, "properties": {}}  # fmt: skip


def _stored_order(project: ProjectStore) -> list[tuple[Any, ...]]:
    """The events' (user_id, time, event_id) in the table's physical order."""
    return project.fetchall(sql("SELECT user_id, time, event_id FROM $e", e=project.ref("events")))


def _clustered(project: ProjectStore) -> bool:
    stored = _stored_order(project)
    return stored == sorted(stored)


def test_clusters_over_the_threshold_and_not_under_it(ws: Workspace) -> None:
    name, project = fresh_project(ws)
    job = maintenance(ws, share=0.5, rows=8)
    # 5 people, 4 events each, in time order: person after person interleaved
    load(project, [_event(f"u{i % 5}", i, f"e{i:03}") for i in range(20)])
    assert not _clustered(project)
    assert job.fn(name) == {"events": 20, "appended": 20, "clustered": True}
    assert _clustered(project) and clustered_rows(project) == 20
    load(project, [_event(f"u{i % 5}", i, f"e{i:03}") for i in range(20, 27)])  # 7 < min(8, 0.5 × 27)
    assert job.fn(name) == {"events": 27, "appended": 7, "clustered": False}
    assert not _clustered(project) and clustered_rows(project) == 20
    load(project, [_event(f"u{i % 5}", i, f"e{i:03}") for i in range(27, 29)])  # 9 ≥ min(8, 14.5)
    assert job.fn(name)["clustered"] is True
    assert _clustered(project) and clustered_rows(project) == 29
    assert job.fn(name) == {"events": 29, "appended": 0, "clustered": False}  # nothing new: nothing done
    with project.store.writer() as s:  # the counter is one row, replaced at each clustering
        assert s.scalar(sql("SELECT count(*) FROM $c WHERE name = ?", c=project.ref("counters")), [CLUSTERED]) == 1


def test_the_share_of_the_table_triggers_below_the_row_count(ws: Workspace) -> None:
    name, project = fresh_project(ws)
    job = maintenance(ws, share=0.1, rows=1_000_000)
    load(project, [_event(f"u{i % 3}", i, f"e{i:03}") for i in range(30)])
    assert job.fn(name)["clustered"] is True  # 30 appended ≥ 10% of 30
    load(project, [_event(f"u{i % 3}", i, f"e{i:03}") for i in range(30, 32)])
    assert job.fn(name)["clustered"] is False  # 2 < 3.2
    load(project, [_event(f"u{i % 3}", i, f"e{i:03}") for i in range(32, 34)])
    assert job.fn(name)["clustered"] is True  # 4 ≥ 3.4


def test_the_scheduler_runs_it_nightly_and_lists_the_run(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    create_tables(ws.meta)
    project = ws.project()
    load(project, [_event(f"u{i % 4}", i, f"e{i:03}") for i in range(12)])
    first = datetime(2025, 5, 1, 20, 0)  # 04:00 on 2 May in Asia/Shanghai: the 03:00 slot of 2 May is due
    for now in (first, first + timedelta(hours=1), first + timedelta(days=1)):
        scheduler = Scheduler(ws.meta, clock=lambda now=now: now)
        scheduler.register(maintenance(ws))
        scheduler.run_due()
    runs = [run_as_dict(r) for r in Scheduler(ws.meta).history(job="maintenance")]
    # the first slot a workspace shows is skipped (no rewrite the moment a large import is served); the next runs
    assert [(r["slot"], r["status"]) for r in runs] == [
        ("2025-05-03T03:00+0800", "succeeded"),
        ("2025-05-02T03:00+0800", "skipped"),
    ]
    assert runs[0]["result"] == {"events": 12, "appended": 12, "clustered": True}
    assert _clustered(project)
    ws.close()


@settings(max_examples=examples(8), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=event_logs(max_events=30), cut=st.floats(0, 1))
def test_no_result_changes(ws: Workspace, records: list[dict[str, Any]], cut: float) -> None:
    records = shift(records, 0)  # a seed event registers the properties the definitions name
    at = int(len(records) * cut)
    _, plain = fresh_project(ws)
    name, maintained = fresh_project(ws)
    job = maintenance(ws, share=0.0, rows=1)
    for project in (plain, maintained):
        load(project, records[:at])
    job.fn(name)
    if at:  # the seed event, first, registers the properties the definitions name
        assert results(maintained) == results(plain)
    for project in (plain, maintained):
        load(project, records[at:])  # appended after the clustered rows
    assert results(maintained) == results(plain)
    job.fn(name)
    assert _clustered(maintained)
    assert results(maintained) == results(plain)
