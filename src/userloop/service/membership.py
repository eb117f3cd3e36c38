"""The member programmes inside the running service: one thread runs each project's membership pass
(:func:`userloop.membership.runner.run_pass`: growth and levels, the daily evaluation, expiries, benefits, tasks,
membership events) every ``tick`` seconds and after each load of the collector's spool, as the journeys loop
(:mod:`userloop.service.journeys`) does. A failing pass is logged and tried again at the next tick."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from userloop.core.clock import utcnow
from userloop.engage.secrets import SecretBox
from userloop.membership.runner import Pass, run_pass
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)


class MembershipLoop:
    """Runs the membership pass of every project from one background thread: :meth:`start`, :meth:`stop`."""

    def __init__(self, ws: Workspace, *, tick: float = 5.0) -> None:
        self.ws = ws
        self.tick = tick
        self.secret = SecretBox.for_workspace(ws.path).derive("links")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: passes finished since the start (what a test or a health check waits on)
        self.passes = 0

    def run_once(self, now: datetime | None = None) -> dict[str, Pass]:
        """One pass over every project (what the thread does each tick); a project's failure does not keep the
        others from their pass, and is raised once all had theirs."""
        done: dict[str, Pass] = {}
        failed: Exception | None = None
        with self._lock:
            at = now or utcnow()
            for project in self.ws.meta.projects():
                if self._stop.is_set():
                    break
                try:
                    done[project.name] = run_pass(self.ws.meta, project, self.ws.project(project.name), at,
                                                  secret=self.secret)  # fmt: skip
                except Exception as exc:  # logged here with the project's name; the loop goes on
                    log.exception("membership pass of project %s failed", project.name)
                    failed = exc
            self.passes += 1
        if failed is not None:
            raise failed
        return done

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="membership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failing pass must not stop the service; logged above, retried next tick
                log.debug("membership pass failed; retried at the next tick")
            self._wake.wait(self.tick)
            self._wake.clear()
