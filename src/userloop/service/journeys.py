"""The journeys engine inside the running service: one thread runs each project's pass
(:meth:`userloop.engage.engine.JourneyEngine.step`) every ``tick`` seconds and after each load of the collector's
spool, and a second thread carries out the outbox as soon as a pass has put something in it, so a backlog of sends
never delays the handling of new events."""

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
        self._sender: threading.Thread | None = None
        self._outbox = threading.Event()
        self._lock = threading.Lock()
        self._making = threading.Lock()

    def engine(self, project: str) -> JourneyEngine:
        with self._making:  # the pass thread and the delivery thread may ask for it first at the same time
            return self._engine(project)

    def _engine(self, project: str) -> JourneyEngine:
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
            done = {p.name: self.engine(p.name).step(at, deliver=self._sender is None) for p in self.ws.meta.projects()}
        self._outbox.set()
        return done

    def deliver_once(self) -> int:
        """Carry out what is due in every project's outbox, until only rows waiting for later are left."""
        handled = 0
        for project in self.ws.meta.projects():
            engine = self.engine(project.name)
            while not self._stop.is_set():
                tally = engine.deliverer.run_once(utcnow())
                handled += tally.handled
                if not tally.handled or tally.deferred + tally.retried == tally.handled:
                    break
        return handled

    def refresh(self, project: str) -> None:
        """Forget a project's engine (its channels or settings changed); the next pass builds it again."""
        with self._lock:
            found = self._engines.pop(project, None)
        if found is not None:
            found[1].close()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._sender = threading.Thread(target=self._deliver_loop, name="journeys-delivery", daemon=True)
        self._thread = threading.Thread(target=self._loop, name="journeys", daemon=True)
        self._sender.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._outbox.set()
        for thread in (self._thread, self._sender):
            if thread is not None:
                thread.join(timeout=30)
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

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_once()
            except Exception:  # a failing delivery pass must not stop the service; logged, retried
                log.exception("journeys delivery failed")
            self._outbox.wait(0.2)  # woken by each pass; rows held for later come due within 0.2 s
            self._outbox.clear()
