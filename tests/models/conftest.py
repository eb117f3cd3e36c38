"""Fixtures for the user models: small hand-made projects in memory, and one simulated workspace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from userloop.schema.types import PropertyType
from userloop.store import EventStore, ProjectStore, Workspace

SIM_END = date(2026, 6, 30)
EVENT_PROPS = {"order_amount": PropertyType.NUMBER, "line": PropertyType.STRING, "category": PropertyType.STRING,
               "price": PropertyType.NUMBER, "order_id": PropertyType.STRING, "page": PropertyType.STRING}  # fmt: skip

Row = tuple[int, str, datetime, float | None]  # user, event, naive UTC time, amount


def memory_project(rows: list[Row] | None = None, *, line: str | None = None) -> ProjectStore:
    """A project in an in-memory store holding ``rows`` (optionally all tagged with business ``line``)."""
    store = EventStore(":memory:")
    project = store.create_project("t")
    with store.transaction():
        project.register("events", EVENT_PROPS)
    if rows:
        insert(project, rows, line=line)
    return project


def insert(project: ProjectStore, rows: list[Row], *, line: str | None = None) -> None:
    events = project.table("events")
    project.con.executemany(
        f"INSERT INTO {events} (event_id, event, user_id, distinct_id, time, received_at, order_amount, line) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [[f"e{i}", ev, uid, f"d{uid}", t, t, amt, line] for i, (uid, ev, t, amt) in enumerate(rows)],
    )
    project.register_events(sorted({r[1] for r in rows}))


@pytest.fixture
def empty_project() -> Iterator[ProjectStore]:
    project = memory_project()
    yield project
    project.store.close()


@pytest.fixture(scope="session")
def sim_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Path]]:
    """3,000 simulated people over 120 days ending 2026-06-30 (seed 7), with the ground-truth path."""
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(tmp_path_factory.mktemp("sim") / "ws")
    report = run_simulation(ws, "default", users=3000, days=120, seed=7, end_date=SIM_END)
    yield ws, Path(report.ground_truth)
    ws.close()


#: The simulation the truth-graded acceptance is stated for: 10,000 people over 150 days (seed 11), models run
#: 30 days before the end so that what happened next is known.
GRADED_USERS, GRADED_DAYS, GRADED_LEAD_DAYS = 10_000, 150, 30


@pytest.fixture(scope="session")
def graded_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Path]]:
    """10,000 simulated people over 150 days ending 2026-06-30 (seed 11), with the ground-truth path."""
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(tmp_path_factory.mktemp("graded") / "ws")
    report = run_simulation(ws, "default", users=GRADED_USERS, days=GRADED_DAYS, seed=11, end_date=SIM_END)
    yield ws, Path(report.ground_truth)
    ws.close()
