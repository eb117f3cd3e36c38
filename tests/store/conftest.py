"""Fixtures of the ClickHouse tests: one DuckDB workspace and one ClickHouse store (chdb) per module; chdb serves
one folder per process at a time, so a module's store is closed before the next module opens its own. The
simulated workspace (the simulator's 60 days, the models run and the starter tags materialised: about 30 s) is
built once per session and shared by the modules that read it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseStore


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("duck") / "ws")
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(f"chdb://{tmp_path_factory.mktemp('clickhouse') / 'ch'}")
    yield store
    store.close()


#: The simulated workspace's last day.
SIM_END = date(2026, 6, 30)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """600 people over 60 days of the simulator, with every model that has enough history run and the starter
    tags installed and materialised as of :data:`SIM_END`."""
    from userloop.models.pipeline import run_models
    from userloop.profile.materialise import materialise
    from userloop.profile.tags import install_starter
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(tmp_path_factory.mktemp("simulated") / "ws")
    run_simulation(ws, "default", users=600, days=60, seed=3, end_date=SIM_END)
    project = ws.project("default")
    info = ws.project_info("default")
    results = run_models(project, SIM_END, timezone=info.timezone)
    ran = {name for name, r in results.items() if "error" not in r}
    assert {"rfm", "lifecycle", "value", "activity", "preference"} <= ran, results  # churn, CLV need more history
    install_starter(ws.meta, project, info.id)
    materialise(project, ws.meta, info.id, info.timezone, SIM_END)
    yield ws
    ws.close()
