"""Write keys for the collector: authenticated against the metadata DB, cached for a few seconds.

A revoked key stops working within ``ttl`` seconds; the cache keeps SQLite off the hot path of every request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from userloop.core import ids
from userloop.service.tables import collector_settings
from userloop.store.meta import MetaStore


@dataclass(frozen=True)
class WriteKey:
    key_id: int
    project: str
    rate_per_second: float | None
    cors_origins: frozenset[str]


class KeyBook:
    """Resolves a presented secret to its project, with a short cache (negative answers too)."""

    def __init__(self, meta: MetaStore, *, ttl: float = 5.0) -> None:
        self.meta = meta
        self.ttl = ttl
        self._cache: dict[str, tuple[float, WriteKey | None]] = {}
        self._lock = threading.Lock()

    def write_key(self, secret: str | None) -> WriteKey | None:
        if not secret or len(secret) > 200:
            return None
        digest = ids.digest(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = self._lookup(secret)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, found)
        return found

    def _lookup(self, secret: str) -> WriteKey | None:
        key = self.meta.authenticate(secret, "write")
        if key is None or key.project_id is None:
            return None
        project = next((p for p in self.meta.projects() if p.id == key.project_id), None)
        if project is None:
            return None
        settings = collector_settings(self.meta, project.id)
        origins = frozenset(o for o in (settings.cors_origins or "").split() if o)
        return WriteKey(key.id, project.name, settings.rate_per_second, origins)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def cors_headers(self, project: str, origin: str | None) -> dict[str, str]:
        """CORS headers for a response to ``origin``, when the project allows it."""
        if not origin:
            return {}
        with self._lock:
            keys = [k for _, k in self._cache.values() if k is not None and k.project == project]
        allowed = keys[0].cors_origins if keys else frozenset()
        if "*" in allowed or origin in allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def any_project_allows(self, origin: str) -> bool:
        """For preflight requests, which carry no key: does any project allow this origin?"""
        for project in self.meta.projects():
            origins = (collector_settings(self.meta, project.id).cors_origins or "").split()
            if "*" in origins or origin in origins:
                return True
        return False
