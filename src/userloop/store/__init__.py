"""Storage: the DuckDB event store, the metadata database and the workspace that holds both.

The names below load on first use (PEP 562), so that a light submodule (:mod:`userloop.store.owner`, which
the CLI reads to find a running server) does not import DuckDB and SQLAlchemy with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
