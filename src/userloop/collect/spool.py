"""The durable spool: an append-only log that acknowledges a request only once its records are on disk.

Layout (``WORKSPACE/spool/``)::

    seg-000000000001.log    one line per record: KIND \\t PROJECT \\t SOURCE \\t REQUEST_ID \\t JSON \\n
    committed.json          {"segment": n, "offset": bytes}: everything before it is in DuckDB

``KIND`` is ``E`` (a Sensors-format record for the loader) or ``X`` (a collector-level reject: bad base64,
gzip or JSON, a record refused at the door) whose JSON holds field, reason and raw payload.

Group commit: request handlers hand their bytes to :meth:`Spool.append` and await the returned future; one
writer thread takes everything queued, writes it with one ``write`` and one ``os.fsync`` and then resolves all
the futures, so many concurrent requests share one fsync. A new segment is started at every start (a torn
line left by a crash is therefore always the tail of a closed segment, which the reader skips) and whenever
the active one passes ``segment_bytes``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 64 << 20
COMMITTED_FILE = "committed.json"


@dataclass(frozen=True, order=True)
class Position:
    """A place in the spool: segment number and byte offset inside it."""

    segment: int
    offset: int


def segment_name(n: int) -> str:
    return f"seg-{n:012d}.log"


class Spool:
    """Append-only segment files with group-commit fsync.

    Example::

        spool = Spool(path)
        await asyncio.wrap_future(spool.append(b"E\\tdefault\\tsegment\\tr1\\t{...}\\n"))  # durable now
    """

    def __init__(self, path: Path, *, segment_bytes: int = SEGMENT_BYTES, fsync: bool = True) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
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

    # reading --------------------------------------------------------------------------------------------
    def segments(self) -> list[int]:
        """Numbers of the segment files present, oldest first."""
        return sorted(int(p.name[4:16]) for p in self.path.glob("seg-*.log"))

    def read(self, start: Position, max_bytes: int) -> tuple[bytes, Position]:
        """Whole lines from ``start`` (at most about ``max_bytes``) and the position after them.

        Moves on to the next segment when ``start`` is at the end of a closed one; a torn last line of a
        closed segment (a crash in the middle of a write that was never acknowledged) is skipped.
        """
        durable = self.durable
        if start >= durable:
            return b"", start
        if start.segment < durable.segment:
            return self._read_closed(start, max_bytes)
        with open(self.path / segment_name(start.segment), "rb") as f:
            f.seek(start.offset)
            data = f.read(min(max_bytes, durable.offset - start.offset))
        cut = data.rfind(b"\n") + 1
        return data[:cut], Position(start.segment, start.offset + cut)

    def _read_closed(self, start: Position, max_bytes: int) -> tuple[bytes, Position]:
        file = self.path / segment_name(start.segment)
        if not file.exists():
            return b"", self._next(start.segment)
        with open(file, "rb") as f:
            f.seek(start.offset)
            data = f.read(max_bytes)
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # the end of the segment, or only a torn line: move on
            return b"", self._next(start.segment)
        return data[:cut], Position(start.segment, start.offset + cut)

    def _next(self, segment: int) -> Position:
        later = [n for n in self.segments() if n > segment]
        return Position(later[0] if later else self._active, 0)

    # offsets --------------------------------------------------------------------------------------------
    def committed(self) -> Position:
        """Where the loader resumes: the first byte not yet known to be in the event store."""
        try:
            doc = json.loads((self.path / COMMITTED_FILE).read_text())
            return Position(int(doc["segment"]), int(doc["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            segments = self.segments()
            return Position(segments[0] if segments else self._active, 0)

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
        for n in self.segments():
            if n < position.segment:
                (self.path / segment_name(n)).unlink(missing_ok=True)

    def backlog_bytes(self, committed: Position) -> int:
        """Bytes spooled but not yet loaded (an estimate across segments)."""
        total = 0
        for n in self.segments():
            if n >= committed.segment:
                size = (self.path / segment_name(n)).stat().st_size
                total += size - (committed.offset if n == committed.segment else 0)
        return max(total, 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
