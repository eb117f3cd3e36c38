"""Storage: the DuckDB event store, the metadata database and the workspace that holds both."""

from __future__ import annotations

from userloop.store.duck import EventStore, ProjectStore
from userloop.store.meta import MetaStore
from userloop.store.workspace import DEFAULT_PROJECT, Secrets, Workspace

__all__ = ["DEFAULT_PROJECT", "EventStore", "MetaStore", "ProjectStore", "Secrets", "Workspace"]
