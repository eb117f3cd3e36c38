"""The background loader: drains the spool into the event store in large batches.

It reads whole lines from the committed offset and loads each project's records on their own: ``E`` lines
grouped by source with :func:`userloop.ingest.load_json_lines` (one DuckDB transaction per group), ``X`` lines
(refused at the door) into the project's ``rejects`` table. Only then does it persist the new committed offset.
A crash at any point replays from the last committed offset; every record carries its ``event_id``, so the
loader's dedupe makes the replay idempotent.

Nothing acknowledged is dropped, and no record can stop the others:

- a group that fails to load is split in halves until the failing records stand alone; each of those is set
  aside in its project's ``rejects`` table with the error, and the rest is loaded. Other projects' records
  are never part of that group, so one tenant's poison never touches another tenant's events;
- an error that says nothing about the records (I/O, memory) is not bisected: the pass stops and is retried;
- every load is counted in the spool before it begins (``attempts.json``), so a batch that fails, or ends the
  process (an out-of-memory kill), is known on the next start: its range is then loaded
  :data:`CAREFUL_LINES` records at a time; after a second failure the records of the load that failed are
  loaded one at a time, and the record that fails a third time is set aside with its raw input instead of
  being retried forever.
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
from userloop.collect.spool import Attempt, Position, SpoolFiles
from userloop.core.clock import utcnow
from userloop.ingest import load_json_lines
from userloop.ingest.loader import LoadResult, TimePolicy
from userloop.store import rejects
from userloop.store.duck import IO_ERRORS, TRANSIENT_ERRORS, ProjectStore
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)
READ_BYTES = 16 << 20
#: Failed loads of one range after which the record that failed alone is set aside.
MAX_FAILURES = 3
#: Records per load in a range that failed once (then one per load).
CAREFUL_LINES = 64
#: Errors of the machine, not of the records: never a reason to set records aside.
TRANSIENT: tuple[type[BaseException], ...] = (OSError, MemoryError, *TRANSIENT_ERRORS)
MAX_ERROR_CHARS = 500


@dataclass
class DrainStats:
    """Counters since start, for ``/api/v1/collector`` and the benchmark."""

    loaded: LoadResult = field(default_factory=LoadResult)
    batches: int = 0
    dead_lettered: int = 0
    set_aside: int = 0  # records the loader failed on, isolated and kept in the rejects table
    position: Position = field(default_factory=lambda: Position(0, 0))
    last_error: str | None = None  # the error of the last pass, while it keeps failing; None once one succeeds


@dataclass(frozen=True)
class SpoolLine:
    """One spooled record: ``E`` (to load) or ``X`` (refused at the door), with its project and source."""

    kind: bytes
    project: str
    source: str
    payload: bytes

    @classmethod
    def parse(cls, line: bytes) -> SpoolLine | None:
        parts = line.split(b"\t", 4)
        if len(parts) != 5 or parts[0] not in (b"E", b"X"):
            return None
        return cls(parts[0], parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace"), parts[4])


class BackgroundLoader:
    """A thread that loads the spool into the workspace. ``on_loaded(project, store)`` runs after each load."""

    def __init__(
        self, ws: Workspace, spool: SpoolFiles, *, on_loaded: Callable[[str, ProjectStore], None] | None = None
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
        while not self._stop.is_set():
            start = self.stats.position
            try:
                data, end = self.spool.read(start, READ_BYTES)
            except OSError as exc:  # the disk: say so and try again, never let the loader thread die
                self.stats.last_error = f"reading the spool failed: {exc}"[:MAX_ERROR_CHARS]
                log.exception("reading the spool failed")
                self._stop.wait(1.0)
                continue
            if end == start:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            try:
                end = self._pass(start, data, end)
            except Exception as exc:  # retried smaller, then set aside: never lost, never stuck
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                last = self.spool.last_attempt()
                failures = last.failed(start) if last else 1
                log.exception("loading spooled records failed (failure %d)", failures)
                if isinstance(exc, (OSError, *IO_ERRORS)) and last is not None and last.at == start:
                    # the disk, not the records: not counted towards setting a record aside
                    self.spool.begin_attempt(Attempt(last.at, last.lines, last.end, last.failures - 1))
                self._stop.wait(min(2.0, 0.1 * 2**failures))
                continue
            self.spool.commit(end)
            self.stats.position = end
            self.stats.last_error = None

    def _pass(self, start: Position, data: bytes, end: Position) -> Position:
        """Load the lines of ``data`` (fewer in a range that failed before); returns where the loaded lines end."""
        lines = data.split(b"\n")[:-1]  # the spool returns whole lines only
        if not lines:
            return end
        last = self.spool.last_attempt()
        failed = last.failed(start) if last else 0
        range_end = end
        if last is not None and failed > 0:
            if failed >= MAX_FAILURES and last.at == start and last.lines == 1:
                self._set_aside(lines[0], failed)
                after = _after(start, lines[:1])
                self.spool.begin_attempt(Attempt(after, 0, after, 0))  # the culprit is found: full speed again
                return after
            range_end = last.end
            if failed >= 2 and last.at == start:  # the smaller load that failed here holds the culprit
                range_end = min(range_end, _after(start, lines[: max(last.lines, 1)]))
            lines = _within(start, lines[: CAREFUL_LINES if failed == 1 else 1], range_end)
            end = _after(start, lines)
        self.spool.begin_attempt(Attempt(start, len(lines), range_end, failed + 1))
        self._load(lines)
        return end

    def _load(self, lines: list[bytes]) -> None:
        by_project: dict[str, list[SpoolLine]] = defaultdict(list)
        for line in lines:
            parsed = SpoolLine.parse(line)
            if parsed is None:
                log.warning("an unreadable spool line of %d bytes was skipped", len(line))
                continue
            by_project[parsed.project].append(parsed)
        for project, entries in by_project.items():
            store = self._store(project)
            if store is None:
                log.warning("%d spooled records for unknown project %r skipped", len(entries), project)
                continue
            self._load_project(project, store, entries)
        self.stats.batches += 1

    def _load_project(self, project: str, store: ProjectStore, entries: list[SpoolLine]) -> None:
        """One project's records: each source's records loaded (poison isolated), then its door refusals."""
        records: dict[str, list[str]] = defaultdict(list)
        refusals: list[tuple[str, bytes]] = []
        for entry in entries:
            if entry.kind == b"E":
                records[entry.source].append(entry.payload.decode("utf-8", "replace"))
            else:
                refusals.append((entry.source, entry.payload))
        policy = self._policy(project)
        for source, lines in records.items():
            self._load_isolating(project, store, source, lines, policy)
        if refusals:
            self._write_rejects(store, [_refusal_row(source, payload) for source, payload in refusals])
        if records and self.on_loaded:
            try:  # a cache refresh for the front door: its failure must not fail (and replay) a committed load
                self.on_loaded(project, store)
            except Exception:
                log.exception("refreshing the front door's rules of project %r failed", project)

    def _load_isolating(
        self, project: str, store: ProjectStore, source: str, lines: list[str], policy: TimePolicy
    ) -> None:
        """Load ``lines``; a failing group is halved until each failing record is alone, then set aside."""
        pending = [lines]
        while pending:
            group = pending.pop()
            try:
                result = load_json_lines(store, group, source=f"collector:{source}", policy=policy)
            except TRANSIENT:
                raise
            except Exception as exc:
                if len(group) > 1:
                    half = len(group) // 2
                    pending += [group[half:], group[:half]]  # the first half next: record order is kept
                    continue
                log.warning("a record of project %r failed to load and was set aside: %s", project, exc)
                reason = (
                    f"the loader failed on this record ({type(exc).__name__}: {exc})"[:MAX_ERROR_CHARS]
                    + "; it was set aside so that the other records could load"
                )
                self._write_rejects(store, [(f"collector:{source}", None, "record", reason, group[0])])
                self.stats.set_aside += 1
                continue
            self.stats.loaded.add(result)

    def _set_aside(self, line: bytes, attempts: int) -> None:
        """Keep a record that failed ``attempts`` loads in a row (or ended the process) in the rejects table."""
        parsed = SpoolLine.parse(line)
        store = self._store(parsed.project) if parsed else None
        if parsed is None or store is None:
            log.error("a spooled record that failed %d loads cannot be attributed to a project; skipped", attempts)
            return
        reason = (
            f"loading this record failed {attempts} times in a row (an error, or the server stopped while loading "
            "it); it was set aside so that the records after it could load"
        )
        row: tuple[str, object, object, object, object]
        if parsed.kind == b"E":
            row = (f"collector:{parsed.source}", None, "record", reason, parsed.payload.decode("utf-8", "replace"))
        else:
            row = _refusal_row(parsed.source, parsed.payload)
        self._write_rejects(store, [row])
        self.stats.set_aside += 1

    def _store(self, project: str) -> ProjectStore | None:
        if project not in self._stores:
            if self.ws.meta.project(project) is None:
                return None
            self._stores[project] = self.ws.project(project)
        return self._stores[project]

    def _policy(self, project: str) -> TimePolicy:
        info = self.ws.project_info(project)
        return TimePolicy(max_future_seconds=info.max_future_seconds, max_past_days=info.max_past_days)

    def _write_rejects(self, store: ProjectStore, rows: list[tuple[str, object, object, object, object]]) -> None:
        now = utcnow()
        with store.atomic() as session:
            session.executemany(rejects.insert_rows(store.ref(rejects.TABLE)), [(*row, now) for row in rows])
        self.stats.dead_lettered += len(rows)


def _after(start: Position, lines: list[bytes]) -> Position:
    """The position after ``lines`` read from ``start``."""
    return Position(start.segment, start.offset + sum(len(line) + 1 for line in lines))


def _within(start: Position, lines: list[bytes], end: Position) -> list[bytes]:
    """The first of ``lines`` that end at or before ``end`` (always at least one)."""
    kept: list[bytes] = []
    offset = start.offset
    for line in lines:
        offset += len(line) + 1
        if kept and offset > end.offset:
            break
        kept.append(line)
    return kept


def _refusal_row(source: str, payload: bytes) -> tuple[str, object, object, object, object]:
    """The rejects row of an ``X`` line: the door's row, field, reason and raw input."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        text = payload.decode("utf-8", "replace")
        return f"collector:{source}", None, "record", "a refusal of the collector could not be read", text
    row = doc.get("row")
    return (
        f"collector:{source}",
        row if isinstance(row, int) and not isinstance(row, bool) and abs(row) < 1 << 62 else None,
        _text(doc.get("field")),
        _text(doc.get("reason")) or "refused at the door",
        _text(doc.get("raw")),
    )


def _text(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def rules_for(ws: Workspace, project: str, store: ProjectStore) -> Rules:
    """The front-line rules of a project: its time policy and a fresh snapshot of its registry."""
    info = ws.project_info(project)
    return Rules(
        max_future_ms=info.max_future_seconds * 1000,
        max_past_ms=info.max_past_days * 86_400_000,
        registry=dict(store.registry()),
    )
