"""Shared fixtures: real workspaces on real DuckDB in temp folders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from userloop.store import ProjectStore, Workspace

NOW_MS = int(time.time() * 1000)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws, _ = Workspace.init(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture
def project(workspace: Workspace) -> ProjectStore:
    return workspace.project()


def rows(project: ProjectStore, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    """Run SQL where ``{events}``, ``{users}``… name the project's tables."""
    names = {t: project.table(t) for t in ("events", "users", "identities", "items", "registry", "rejects")}
    return project.con.execute(sql.format(**names), params or []).fetchall()
