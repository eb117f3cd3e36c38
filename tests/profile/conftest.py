"""One workspace per test module: each Hypothesis example takes a fresh project in it (``logs.fresh_project``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from userloop.store import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("profile") / "ws")
    yield workspace
    workspace.close()
