"""``userloop migrate`` on a whole simulated workspace: events, people, identities and items, every model's
output, the starter tags' histories and their run log all reach ClickHouse with every count equal, and an
analysis over them gives the same numbers on both backends."""

from __future__ import annotations

from pathlib import Path

from tests.store.conftest import SIM_END
from tests.store.test_clickhouse_parity import same
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseStore
from userloop.store.mirror import copy_project

END = SIM_END


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
