"""Storage: the DuckDB event store, the metadata database and the workspace that holds both.

The names below load on first use (PEP 562), so that a light submodule (:mod:`userloop.store.owner`, which
the CLI reads to find a running server) does not import DuckDB and SQLAlchemy with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from userloop.core.lazy import lazy_exports

if TYPE_CHECKING:
    from userloop.store.duck import EventStore, ProjectStore
    from userloop.store.meta import MetaStore
    from userloop.store.workspace import DEFAULT_PROJECT, Secrets, Workspace

__all__ = ["DEFAULT_PROJECT", "EventStore", "MetaStore", "ProjectStore", "Secrets", "Workspace"]

_HOMES = {
    "EventStore": "userloop.store.duck",
    "ProjectStore": "userloop.store.duck",
    "MetaStore": "userloop.store.meta",
    "DEFAULT_PROJECT": "userloop.store.workspace",
    "Secrets": "userloop.store.workspace",
    "Workspace": "userloop.store.workspace",
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())
