"""Write keys for the collector: authenticated against the metadata DB, cached for a few seconds.

A revoked key stops working within ``ttl`` seconds; the cache keeps SQLite off the hot path of every request.
The caches (keys, negative answers included, and project settings) are LRU maps with a size cap, so made-up
keys cannot grow memory. CORS: a response carries ``Access-Control-Allow-Origin`` only when its project lists
the exact origin (or lists ``*`` as its one entry); see :func:`userloop.store.service_tables.check_origins`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from userloop.core import ids
from userloop.store.meta import MetaStore
from userloop.store.service_tables import collector_settings

V = TypeVar("V")
#: Request headers a browser may send to the collector (preflight answers with this fixed list, never an echo).
ALLOWED_HEADERS = "Content-Type, Content-Encoding, Authorization, Dry-Run"


class TtlCache(Generic[V]):
    """A thread-safe map whose entries expire after ``ttl`` seconds, holding at most ``max_size`` (LRU)."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[bool, V | None]:
        """(found, value); an expired entry is not found."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] <= time.monotonic():
                return False, None
            self._items.move_to_end(key)
            return True, hit[1]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class WriteKey:
    key_id: int
    project: str
    rate_per_second: float | None
    cors_origins: frozenset[str]
    burst: float | None = None


class KeyBook:
    """Resolves a presented secret to its project, with a short cache (negative answers too)."""

    def __init__(self, meta: MetaStore, *, ttl: float = 5.0, max_size: int = 10_000) -> None:
        self.meta = meta
        self.ttl = ttl
        self._keys: TtlCache[WriteKey | None] = TtlCache(ttl, max_size)
        self._projects: TtlCache[WriteKey | None] = TtlCache(ttl, 1_000)
        self._origins: TtlCache[bool] = TtlCache(ttl, 1_000)

    def write_key(self, secret: str | None) -> WriteKey | None:
        if not secret or len(secret) > 200:
            return None
        digest = ids.digest(secret)
        found, key = self._keys.get(digest)
        if found:
            return key
        key = self._lookup(secret)
        self._keys.put(digest, key)
        return key

    def project_key(self, project: str) -> WriteKey | None:
        """The collector settings of ``project`` in the form of a key (id 0), for writes made with an API token."""
        found, key = self._projects.get(project)
        if found:
            return key
        info = self.meta.project(project)
        key = None if info is None else self._settings(0, info.id, info.name)
        self._projects.put(project, key)
        return key

    def _lookup(self, secret: str) -> WriteKey | None:
        key = self.meta.authenticate(secret, "write")
        if key is None or key.project_id is None:
            return None
        project = next((p for p in self.meta.projects() if p.id == key.project_id), None)
        if project is None:
            return None
        return self._settings(key.id, project.id, project.name)

    def _settings(self, key_id: int, project_id: int, name: str) -> WriteKey:
        settings = collector_settings(self.meta, project_id)
        return WriteKey(key_id, name, settings.rate_per_second, settings.origins, settings.burst)

    def forget(self) -> None:
        for cache in (self._keys, self._projects, self._origins):
            cache.clear()

    def cors_headers(self, project: str, origin: str | None) -> dict[str, str]:
        """CORS headers for a collector response to ``origin``, when the project allows that exact origin."""
        if not origin:
            return {}
        key = self.project_key(project)
        allowed = key.cors_origins if key is not None else frozenset()
        if allowed == {"*"} or origin.lower() in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def any_project_allows(self, origin: str) -> bool:
        """For preflight requests, which carry no key: does any project allow this exact origin?"""
        if len(origin) > 300:
            return False
        found, allowed = self._origins.get(origin.lower())
        if found:
            return bool(allowed)
        allowed = False
        for project in self.meta.projects():
            origins = collector_settings(self.meta, project.id).origins
            if origins == {"*"} or origin.lower() in origins:
                allowed = True
                break
        self._origins.put(origin.lower(), allowed)
        return allowed
