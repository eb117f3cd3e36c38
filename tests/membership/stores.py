"""The metadata database beside a workspace's event store, on either backend, for the tests that need both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.store.metadb import meta_url
from userloop.store import Workspace
from userloop.store.meta import MetaStore, Project


@contextmanager
def beside(workspace: Workspace, backend: str, tmp_path: Path) -> Iterator[tuple[MetaStore, Project]]:
    """The workspace's own SQLite metadata, or a fresh PostgreSQL one whose project ``default`` has the same id,
    with that project."""
    if backend == "sqlite":
        info = workspace.meta.project("default")
        assert info is not None
        yield workspace.meta, info
        return
    with meta_url("postgresql", tmp_path) as url:
        meta = MetaStore(url)
        meta.create_all()
        try:
            yield meta, meta.add_project("default", "Asia/Shanghai")
        finally:
            meta.dispose()
