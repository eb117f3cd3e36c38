"""The journeys engine inside the running service: one thread that runs each project's pass
(:meth:`userloop.engage.engine.JourneyEngine.step`) every ``tick`` seconds, and a wake-up after each load of the
collector's spool so an event trigger reaches its send within a second."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from userloop.core.clock import utcnow
from userloop.engage.channels.registry import ChannelBook
from userloop.engage.engine import JourneyEngine, Pass
from userloop.engage.secrets import SecretBox
from userloop.engage.settings import load as load_settings
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)


class JourneysLoop:
    def __init__(self, ws: Workspace, *, tick: float = 1.0) -> None:
        self.ws = ws
        self.tick = tick
        self.box = SecretBox.for_workspace(ws.path)
        self._engines: dict[str, tuple[JourneyEngine, ChannelBook]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def engine(self, project: str) -> JourneyEngine:
        found = self._engines.get(project)
        if found is None:
            info = self.ws.meta.project(project)
            assert info is not None
            book = ChannelBook(self.ws.meta, info.id, self.box)
            settings = load_settings(self.ws.meta, info.id)
            engine = JourneyEngine(
                self.ws.meta,
                info,
                self.ws.project(project),
                book,
                link_secret=self.box.derive("links"),
                zone_property=settings.zone_property,
                stopping=self._stop.is_set,
            )
            found = self._engines[project] = (engine, book)
        return found[0]

    def run_once(self, now: datetime | None = None) -> dict[str, Pass]:
        """One pass over every project (what the thread does each tick)."""
        with self._lock:
            at = now or utcnow()
            return {p.name: self.engine(p.name).step(at) for p in self.ws.meta.projects()}

    def refresh(self, project: str) -> None:
        """Forget a project's engine (its channels or settings changed); the next pass builds it again."""
        with self._lock:
            found = self._engines.pop(project, None)
        if found is not None:
            found[1].close()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="journeys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for _, book in self._engines.values():
            book.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failing pass must not stop the service; it is logged and retried next tick
                log.exception("journeys pass failed")
            self._wake.wait(self.tick)
            self._wake.clear()
