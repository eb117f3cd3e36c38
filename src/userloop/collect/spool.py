"""The durable spool: an append-only log that acknowledges a request only once its records are on disk.

Layout (``WORKSPACE/spool/``)::

    seg-000000000001.log    one line per record: KIND \\t PROJECT \\t SOURCE \\t REQUEST_ID \\t JSON \\n
    committed.json          {"segment": n, "offset": bytes}: everything before it is in DuckDB
    attempts.json           the load the loader began last: where, how many lines, and how many loads of its
                            range failed (the loader's failure count, which survives a crash)

With collector processes (``userloop serve --collector-only``, :mod:`userloop.service.collectors`) each has its
own spool under ``WORKSPACE/spool/collectors/NAME/`` with the same files: the collector writes segments (it holds
``writer.lock``), the workspace's service reads them with a :class:`SpoolReader` and writes ``committed.json`` and
``attempts.json``; the collector learns how far the loader got from ``committed.json``.

``KIND`` is ``E`` (a Sensors-format record for the loader) or ``X`` (a collector-level reject: bad base64,
gzip or JSON, a record refused at the door) whose JSON holds field, reason and raw payload.

Group commit: request handlers hand their bytes to :meth:`Spool.append` and await the returned future; one
writer thread takes everything queued, writes it with one ``write`` and one ``os.fsync`` and then resolves all
the futures, so many concurrent requests share one fsync. A new segment is started at every start (a torn
line left by a crash is therefore always the tail of a closed segment, which the reader skips) and whenever
the active one passes ``segment_bytes``; a failed write truncates what it left behind and starts a new segment
too, so a fragment can never be glued to the next acknowledged line.

Reading returns whole lines of any length: a line longer than the read size is read on until its newline.
A torn tail is only ever the unterminated last fragment of a *closed* segment; a long line is never taken for
one. A segment file is deleted only once the committed position has moved past its last byte.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from userloop.core.errors import WorkspaceError

log = logging.getLogger(__name__)
SEGMENT_BYTES = 64 << 20
COMMITTED_FILE = "committed.json"
WRITER_LOCK = "writer.lock"
ATTEMPTS_FILE = "attempts.json"


@dataclass(frozen=True, order=True)
class Position:
    """A place in the spool: segment number and byte offset inside it."""

    segment: int
    offset: int


@dataclass(frozen=True)
class Attempt:
    """A load of ``lines`` lines begun at ``at``, inside a range up to ``end`` whose loads failed ``failures`` times.

    It is written before the load begins and counts that load as failed; a load that finishes moves the committed
    position past ``at``, which is how the next reader knows it did not fail.
    """

    at: Position
    lines: int
    end: Position
    failures: int

    def failed(self, position: Position) -> int:
        """How many loads of the range failed, seen from ``position`` (0 when outside the range)."""
        if not (self.at.segment == position.segment and self.at <= position < self.end):
            return 0
        return self.failures if self.at == position else self.failures - 1


def segment_name(n: int) -> str:
    return f"seg-{n:012d}.log"


class SpoolFiles(ABC):
    """Reading a spool's segments and keeping its offsets: what the loader needs, whoever writes the segments."""

    path: Path
    fsync: bool
    _attempt: Attempt | None
    _loaded: Position

    @property
    @abstractmethod
    def durable(self) -> Position:
        """End of what the reader may read: every whole line before it is on disk."""

    @abstractmethod
    def _active_segment(self) -> int:
        """The segment being written (the last one)."""

    @abstractmethod
    def on_durable(self, listener: Callable[[Position], None]) -> None:
        """Call ``listener(position)`` when more becomes readable."""

    # reading --------------------------------------------------------------------------------------------
    def segments(self) -> list[int]:
        """Numbers of the segment files present, oldest first."""
        return sorted(int(p.name[4:16]) for p in self.path.glob("seg-*.log"))

    def read(self, start: Position, max_bytes: int) -> tuple[bytes, Position]:
        """Whole lines from ``start`` (about ``max_bytes``, more when one line is longer) and the position after.

        Moves on to the next segment when ``start`` is at the end of a closed one; the unterminated last fragment
        of a closed segment (a crash in the middle of a write that was never acknowledged) is skipped.
        """
        durable = self.durable
        if start >= durable:
            return b"", start
        closed = start.segment < durable.segment
        file = self.path / segment_name(start.segment)
        try:
            f = open(file, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return b"", self._next(start.segment) if closed else start
        with f:
            end = None if closed else durable.offset
            data = read_lines(f, start.offset, max_bytes, end)
        if not data:
            if closed:  # the end of the segment, or only a torn fragment: move on
                self._skip_tail(file, start)
                return b"", self._next(start.segment)
            return b"", start
        return data, Position(start.segment, start.offset + len(data))

    def _skip_tail(self, file: Path, start: Position) -> None:
        torn = file.stat().st_size - start.offset if file.exists() else 0
        if torn > 0:
            log.warning("skipped a torn, never acknowledged fragment of %d bytes at the end of %s", torn, file.name)

    def _next(self, segment: int) -> Position:
        later = [n for n in self.segments() if n > segment]
        return Position(later[0] if later else self._active_segment(), 0)

    # offsets --------------------------------------------------------------------------------------------
    def committed(self) -> Position:
        """Where the loader resumes: the first byte not yet known to be in the event store."""
        try:
            doc = json.loads((self.path / COMMITTED_FILE).read_text())
            return Position(int(doc["segment"]), int(doc["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            segments = self.segments()
            return Position(segments[0] if segments else self._active_segment(), 0)

    @property
    def loaded(self) -> Position:
        """The committed position as of the last :meth:`commit` (in memory: for the front door)."""
        return self._loaded

    def commit(self, position: Position) -> None:
        """Persist the loader's progress (after the DuckDB transaction committed), then drop finished segments."""
        tmp = self.path / (COMMITTED_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"segment": position.segment, "offset": position.offset}))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        tmp.replace(self.path / COMMITTED_FILE)
        if self.fsync:
            _fsync_dir(self.path)
        self._loaded = position
        for n in self.segments():
            if n < position.segment:
                (self.path / segment_name(n)).unlink(missing_ok=True)

    def last_attempt(self) -> Attempt | None:
        """The load the loader began last (persisted before it began; see :class:`Attempt`)."""
        return self._attempt

    def begin_attempt(self, attempt: Attempt) -> None:
        """Persist ``attempt`` before the loader begins it.

        Not fsynced: what it counts is a loader that fails or a process that dies (the kernel keeps a dead
        process's writes); a machine crash at most forgets one failure.
        """
        self._attempt = attempt
        doc = {
            "at": [attempt.at.segment, attempt.at.offset],
            "lines": attempt.lines,
            "end": [attempt.end.segment, attempt.end.offset],
            "failures": attempt.failures,
        }
        tmp = self.path / (ATTEMPTS_FILE + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.path / ATTEMPTS_FILE)

    def _read_attempt(self) -> Attempt | None:
        try:
            doc = json.loads((self.path / ATTEMPTS_FILE).read_text())
            return Attempt(
                Position(*map(int, doc["at"])), int(doc["lines"]), Position(*map(int, doc["end"])), int(doc["failures"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def backlog_bytes(self, committed: Position) -> int:
        """Bytes spooled but not yet loaded (an estimate across segments). A segment the loader removes between
        the listing and its size counts as nothing (it was loaded), not as an error."""
        total = 0
        for n in self.segments():
            if n >= committed.segment:
                try:
                    size = (self.path / segment_name(n)).stat().st_size
                except FileNotFoundError:
                    continue
                total += size - (committed.offset if n == committed.segment else 0)
        return max(total, 0)


class Spool(SpoolFiles):
    """Append-only segment files with group-commit fsync.

    Example::

        spool = Spool(path)
        await asyncio.wrap_future(spool.append(b"E\\tdefault\\tsegment\\tr1\\t{...}\\n"))  # durable now
    """

    def __init__(
        self, path: Path, *, segment_bytes: int = SEGMENT_BYTES, fsync: bool = True, loaded_elsewhere: bool = False
    ) -> None:
        """``loaded_elsewhere``: another process loads this spool (a collector's), so :attr:`loaded` is read from
        ``committed.json``, which that process writes."""
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._lock = _take_writer_lock(path)
        self.loaded_elsewhere = loaded_elsewhere
        self._committed_seen: tuple[int, Position] | None = None
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._cond = threading.Condition()
        self._queue: list[tuple[bytes, Future[Position]]] = []
        self._closed = False
        self._listeners: list[Callable[[Position], None]] = []
        segments = self.segments()
        self._active = (segments[-1] + 1) if segments else 1
        self._file = open(self.path / segment_name(self._active), "ab")  # noqa: SIM115 - closed in close()
        _fsync_dir(self.path)
        self._durable = Position(self._active, 0)
        self._attempt = self._read_attempt()
        self._loaded = self.committed()
        self._thread = threading.Thread(target=self._run, name="userloop-spool", daemon=True)
        self._thread.start()

    # writing --------------------------------------------------------------------------------------------
    def append(self, data: bytes) -> Future[Position]:
        """Queue ``data`` (whole lines); the future resolves with the durable end once it is fsynced."""
        future: Future[Position] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the spool is closed")
            self._queue.append((data, future))
            self._cond.notify()
        return future

    async def write(self, data: bytes) -> Position:
        """Append and wait until durable (for request handlers)."""
        return await asyncio.wrap_future(self.append(data))

    def on_durable(self, listener: Callable[[Position], None]) -> None:
        """Call ``listener(position)`` after each fsync (the loader uses it to wake up)."""
        self._listeners.append(listener)

    @property
    def durable(self) -> Position:
        """End of what is on disk: the reader never reads past it."""
        with self._cond:
            return self._durable

    def _active_segment(self) -> int:
        return self._active

    @property
    def loaded(self) -> Position:
        """The committed position: as of the last :meth:`commit`, or as the loading process last wrote it."""
        if not self.loaded_elsewhere:
            return self._loaded
        try:
            mtime = (self.path / COMMITTED_FILE).stat().st_mtime_ns
        except OSError:
            return self._loaded
        if self._committed_seen is None or self._committed_seen[0] != mtime:
            self._committed_seen = (mtime, self.committed())
            self._loaded = self._committed_seen[1]
        return self._loaded

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                batch, self._queue = self._queue, []
            try:
                position = self._write(b"".join(data for data, _ in batch))
            except OSError as exc:
                self._recover()
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for _, future in batch:
                future.set_result(position)
            for listener in self._listeners:
                listener(position)

    def _write(self, data: bytes) -> Position:
        self._file.write(data)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        position = Position(self._active, self._file.tell())
        with self._cond:
            self._durable = position
        if position.offset >= self.segment_bytes:
            self._rotate()
        return position

    def _recover(self) -> None:
        """After a failed write: cut the unacknowledged bytes it may have left, then start a new segment.

        Even when the cut fails, the fragment is now the tail of a closed segment, which the reader skips.
        """
        try:
            self._file.truncate(self._durable.offset)
        except OSError:
            log.exception("cannot truncate the spool segment after a failed write")
        try:
            self._rotate()
        except OSError:
            log.exception("cannot start a new spool segment after a failed write")

    def _rotate(self) -> None:
        self._file.close()
        self._active += 1
        self._file = open(self.path / segment_name(self._active), "ab")  # noqa: SIM115 - closed in close()
        _fsync_dir(self.path)
        with self._cond:
            self._durable = Position(self._active, 0)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self._file.close()
        self._lock.close()  # releases writer.lock


class SpoolReader(SpoolFiles):
    """A spool another process writes (a collector's, see :mod:`userloop.service.collectors`), read by the loader.

    Everything up to the last newline of the last segment is readable: the collector acknowledges a request only
    after its lines are written and fsynced, and a line written but never acknowledged (the collector was killed
    before the fsync returned) is loaded too — the client sends it again and the loader's dedupe by ``event_id``
    keeps one. A fragment without its newline stays unread until the collector starts again, which begins a new
    segment: the fragment is then the torn tail of a closed segment and is skipped.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._attempt = self._read_attempt()
        self._loaded = self.committed()

    def _active_segment(self) -> int:
        segments = self.segments()
        return segments[-1] if segments else 1

    @property
    def durable(self) -> Position:
        last = self._active_segment()
        try:
            size = (self.path / segment_name(last)).stat().st_size
        except FileNotFoundError:
            size = 0
        return Position(last, size)

    def on_durable(self, listener: Callable[[Position], None]) -> None:
        """Nothing in this process learns when the collector writes: the loader polls (every half second)."""
        del listener

    def writer_alive(self) -> bool:
        """Whether a collector process holds this spool now."""
        try:
            f = open(self.path / WRITER_LOCK, "a")  # noqa: SIM115 - closed below
        except OSError:
            return False
        with f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False


def read_lines(f: BinaryIO, offset: int, max_bytes: int, end: int | None) -> bytes:
    """The whole lines of ``f`` from ``offset``: about ``max_bytes`` of them, and never less than one line.

    ``end`` bounds the read (the durable end of the active segment, always a line boundary); ``None`` reads to
    the end of the file. Returns ``b""`` when no newline follows ``offset`` before the bound.
    """
    f.seek(offset)
    limit = None if end is None else end - offset
    want = max(1, max_bytes if limit is None else min(max_bytes, limit))
    data = f.read(want)
    cut = data.rfind(b"\n") + 1
    if cut:
        return data[:cut]
    chunks = [data]
    size = len(data)
    while data and (limit is None or size < limit):  # one line longer than max_bytes: read on to its newline
        step = max(size, 1 << 20) if limit is None else min(max(size, 1 << 20), limit - size)
        data = f.read(step)
        newline = data.find(b"\n")
        if newline >= 0:
            chunks.append(data[: newline + 1])
            return b"".join(chunks)
        chunks.append(data)
        size += len(data)
    return b""


def _take_writer_lock(path: Path) -> IO[str]:
    """Hold ``writer.lock`` while this process writes the spool: two writers would interleave segments."""
    f = open(path / WRITER_LOCK, "a")  # noqa: SIM115 - closed by Spool.close
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise SpoolBusyError(f"another process is writing the spool at {path} / 另一个进程正在写入此缓冲目录") from None
    return f


class SpoolBusyError(WorkspaceError):
    """Another process already writes this spool (a second collector under the same name)."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
