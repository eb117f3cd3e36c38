"""Fixtures of the ClickHouse tests: one DuckDB workspace and one ClickHouse store (chdb) per module; chdb serves
one folder per process at a time, so a module's store is closed before the next module opens its own."""

from __future__ import annotations

from collections.abc import Iterator

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
