"""Shared fixtures: real workspaces on real DuckDB in temp folders."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from userloop.query.warm import warm
from userloop.store import ProjectStore, Workspace

NOW_MS = int(time.time() * 1000)

# Hypothesis: `make test` runs the deterministic profile (the same examples on every run, so a red CI means a change
# broke something); `make test-deep` runs the random, longer one. A failure found by either stays as an @example.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("deep", derandomize=False, print_blob=True, deadline=None)
PROFILE = os.environ.get("USERLOOP_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
_DEEP_FACTOR = 10


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``make test`` runs ``-n 2 --dist loadfile`` (pytest-xdist): one process takes a module whole, and modules
    that share a costly session fixture together (:mod:`tests.xdist_units`)."""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist: pytest-xdist's own scheduler
    from tests.xdist_units import ModuleScheduling

    return ModuleScheduling(config, log)


def examples(n: int) -> int:
    """``n`` examples in the deterministic profile, ten times as many in the deep one."""
    return n * _DEEP_FACTOR if PROFILE == "deep" else n


@pytest.fixture(scope="session", autouse=True)
def _folds_compiled() -> None:
    """The folds' compiled loops loaded before any test (compiled first on a fresh checkout run without
    ``make install``), so that no query's time limit pays for the compile (userloop/query/warm.py)."""
    warm()


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
