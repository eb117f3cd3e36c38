"""A server per test module: starting one costs about a second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collect.serving import Server, new_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = new_server(Path(tmp_path_factory.mktemp("serve"))).start()
    yield srv
    srv.stop()
