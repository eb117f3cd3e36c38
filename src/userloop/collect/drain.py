"""The background loader: drains the spool into the event store in large batches.

It reads whole lines from the committed offset, groups ``E`` lines by (project, source) and loads each group
with :func:`userloop.ingest.load_json_lines` (one DuckDB transaction), writes ``X`` lines to the project's
``rejects`` table, and only then persists the new committed offset. A crash at any point replays from the last
committed offset; every record carries its ``event_id``, so the loader's dedupe makes the replay idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from userloop.collect.checks import Rules
from userloop.collect.spool import Position, Spool
from userloop.ingest import load_json_lines
from userloop.ingest.loader import LoadResult, TimePolicy
from userloop.store.duck import ProjectStore
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)
READ_BYTES = 16 << 20
MAX_FAILURES = 3


@dataclass
class DrainStats:
    """Counters since start, for ``/api/v1/collector`` and the benchmark."""

    loaded: LoadResult = field(default_factory=LoadResult)
    batches: int = 0
    dead_lettered: int = 0
    position: Position = field(default_factory=lambda: Position(0, 0))
    last_error: str | None = None


class BackgroundLoader:
    """A thread that loads the spool into the workspace. ``on_loaded(project, store)`` runs after each load."""

    def __init__(
        self, ws: Workspace, spool: Spool, *, on_loaded: Callable[[str, ProjectStore], None] | None = None
    ) -> None:
        self.ws = ws
        self.spool = spool
        self.on_loaded = on_loaded
        self.stats = DrainStats(position=spool.committed())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stores: dict[str, ProjectStore] = {}
        spool.on_durable(lambda _pos: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="userloop-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, drain: bool = True, timeout: float = 60.0) -> None:
        """Stop; with ``drain`` first load everything spooled so far (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while drain and self.stats.position < self.spool.durable and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=max(1.0, deadline - time.monotonic()))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until everything durable is loaded (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.stats.position < self.spool.durable:
            if time.monotonic() > deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            data, end = self.spool.read(self.stats.position, READ_BYTES)
            if end == self.stats.position:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                self._load(data, dead_letter=failures >= MAX_FAILURES)
            except Exception as exc:  # a failed batch is retried, then dead-lettered: never lost, never stuck
                failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("loading spooled records failed (attempt %d)", failures)
                time.sleep(min(2.0, 0.1 * 2**failures))
                continue
            failures = 0
            self.spool.commit(end)
            self.stats.position = end

    def _load(self, data: bytes, *, dead_letter: bool) -> None:
        records: dict[tuple[str, str], list[str]] = defaultdict(list)
        refusals: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for line in data.split(b"\n"):
            parts = line.split(b"\t", 4)
            if len(parts) != 5:
                continue
            kind, project, source, payload = parts[0], parts[1].decode(), parts[2].decode(), parts[4]
            if kind == b"E" and not dead_letter:
                records[(project, source)].append(payload.decode())
            else:
                refusals[project].append((source, payload if kind == b"X" else _failed(payload)))
        for (project, source), lines in records.items():
            store = self._store(project)
            if store is None:
                continue
            result = load_json_lines(store, lines, source=f"collector:{source}", policy=self._policy(project))
            self.stats.loaded.add(result)
            if self.on_loaded:
                self.on_loaded(project, store)
        for project, rows in refusals.items():
            self._write_refusals(project, rows)
        self.stats.batches += 1

    def _store(self, project: str) -> ProjectStore | None:
        if project not in self._stores:
            if self.ws.meta.project(project) is None:
                log.warning("spooled records for unknown project %r skipped", project)
                return None
            self._stores[project] = self.ws.project(project)
        return self._stores[project]

    def _policy(self, project: str) -> TimePolicy:
        info = self.ws.project_info(project)
        return TimePolicy(max_future_seconds=info.max_future_seconds, max_past_days=info.max_past_days)

    def _write_refusals(self, project: str, rows: list[tuple[str, bytes]]) -> None:
        store = self._store(project)
        if store is None:
            return
        values = []
        for source, payload in rows:
            doc = orjson.loads(payload)
            values.append([f"collector:{source}", doc.get("row"), doc.get("field"), doc.get("reason"), doc.get("raw")])
        with store.store.transaction() as con:
            con.executemany(f"INSERT INTO {store.table('rejects')} VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)", values)
        self.stats.dead_lettered += len(values)


def _failed(payload: bytes) -> bytes:
    return orjson.dumps(
        {"row": None, "field": "record", "reason": "the loader failed on this batch", "raw": payload.decode()}
    )


def rules_for(ws: Workspace, project: str, store: ProjectStore) -> Rules:
    """The front-line rules of a project: its time policy and a fresh snapshot of its registry."""
    info = ws.project_info(project)
    return Rules(
        max_future_ms=info.max_future_seconds * 1000,
        max_past_ms=info.max_past_days * 86_400_000,
        registry=dict(store.registry()),
    )
