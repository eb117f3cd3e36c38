"""``userloop migrate`` on a whole simulated workspace: events, people, identities and items, every model's
output, the starter tags' histories and their run log all reach ClickHouse with every count equal, and an
analysis over them gives the same numbers on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.store.test_clickhouse_parity import same
from userloop.models.pipeline import run_models
from userloop.profile.materialise import materialise
from userloop.profile.tags import install_starter
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseStore
from userloop.store.mirror import copy_project

END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(tmp_path_factory.mktemp("migrate") / "ws")
    run_simulation(ws, "default", users=600, days=60, seed=3, end_date=END)
    project = ws.project("default")
    info = ws.project_info("default")
    results = run_models(project, END, timezone=info.timezone)
    ran = {name for name, r in results.items() if "error" not in r}
    assert {"rfm", "lifecycle", "value", "activity", "preference"} <= ran, results  # churn, CLV need more history
    install_starter(ws.meta, project, info.id)
    materialise(project, ws.meta, info.id, info.timezone, END)
    yield ws
    ws.close()


def test_a_simulated_workspace_with_models_and_tags_moves_whole(simulated: Workspace, tmp_path: Path) -> None:
    project = simulated.project("default")
    store = ClickHouseStore(f"chdb://{tmp_path / 'ch'}")
    try:
        counts = copy_project(project, store)
        tables = {c.table for c in counts}
        assert {"events", "users", "identities", "items"} <= tables
        assert any(t.startswith("model_") for t in tables) and any(t.startswith("tag_") for t in tables)
        assert "profile_runs" in tables
        assert all(c.equal for c in counts), [c for c in counts if not c.equal]
        assert next(c.duckdb for c in counts if c.table == "events") > 10_000
        definition = {"kind": "trends", "date_range": {"from": "2026-05-01", "to": "2026-06-30"}, "interval": "week",
                      "series": [{"event": "$any", "math": "users"}]}  # fmt: skip
        tz = simulated.project_info("default").timezone
        ours = Engine(project, tz).run(definition, today=END, use_cache=False).result
        theirs = Engine(store.project(project.schema), tz).run(definition, today=END, use_cache=False).result
        assert same(theirs, ours)
    finally:
        store.close()
