"""The scheduler inside the service: daily and interval jobs per project, with a run history and retries.

Each job has *slots*: a daily job at ``HH:MM`` in the project's time zone has one slot per local day, an
interval job one per ``every`` seconds. A slot is claimed by inserting its row in ``job_runs`` (unique on job,
project, slot) before it runs, so a restart never runs a finished slot again; a slot that was running when the
process died, or that failed, is tried again until ``retries`` attempts are used. After downtime only the latest
due slot runs (no pile-up of missed days).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from userloop.core.clock import utcnow
from userloop.store.meta import MetaStore
from userloop.store.service_tables import JobRun

log = logging.getLogger(__name__)
JobFn = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """A job: ``fn(project)`` returns a small JSON-able result; ``at`` is ``HH:MM`` local (daily jobs)."""

    name: str
    fn: JobFn
    kind: Literal["daily", "interval"] = "daily"
    at: str = "03:30"
    every: int = 3600
    retries: int = 3
    retry_delay: float = 60.0
    #: False: a project's first slot (the one already due when the job first sees the project) is skipped, so a
    #: heavy job does not start the moment a new workspace is served; later slots, and catch-up after
    #: downtime, run as usual.
    run_first_slot: bool = True

    def slot(self, now_utc: datetime, timezone: str) -> str | None:
        """The latest due slot at ``now_utc`` (naive UTC), or None."""
        if self.kind == "interval":
            return f"i{int(now_utc.timestamp()) // self.every}"
        zone = ZoneInfo(timezone)
        local = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
        hour, minute = (int(x) for x in self.at.split(":"))
        due = datetime.combine(local.date(), time(hour, minute), zone)
        if local < due:
            due -= timedelta(days=1)
        return due.strftime("%Y-%m-%dT%H:%M%z")


class Scheduler:
    """Runs registered jobs for every project from one background thread."""

    def __init__(self, meta: MetaStore, *, tick: float = 1.0, clock: Callable[[], datetime] = utcnow) -> None:
        self.meta = meta
        self.tick = tick
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="userloop-scheduler", daemon=True)

    def register(self, job: Job) -> None:
        self.jobs[job.name] = job

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due()
            except Exception:  # the scheduler must outlive any one job's trouble
                log.exception("scheduler tick failed")

    def run_due(self) -> list[JobRun]:
        """Run every due slot once (also callable directly, e.g. from tests)."""
        done = []
        now = self.clock()
        for project in self.meta.projects():
            for job in list(self.jobs.values()):
                slot = job.slot(now, project.timezone)
                if slot is not None and (run := self._claim(job, project.name, slot, now)) is not None:
                    done.append(self._execute(job, run))
        return done

    def _claim(self, job: Job, project: str, slot: str, now: datetime) -> JobRun | None:
        try:
            with self.meta.session.begin() as s:
                run = s.scalar(
                    select(JobRun).where(JobRun.job == job.name, JobRun.project == project, JobRun.slot == slot)
                )
                if run is None:
                    first = (
                        not job.run_first_slot
                        and s.scalar(
                            select(JobRun.id).where(JobRun.job == job.name, JobRun.project == project).limit(1)
                        )
                        is None
                    )
                    status = "skipped" if first else "running"
                    run = JobRun(job=job.name, project=project, slot=slot, status=status, attempts=1)
                    s.add(run)
                    return None if first else run
                if run.status in ("succeeded", "skipped") or run.attempts >= job.retries:
                    return None
                if run.next_try_at is not None and run.next_try_at > now:
                    return None
                run.status, run.attempts, run.started_at = "running", run.attempts + 1, now
                return run
        except IntegrityError:  # another scheduler claimed it first
            return None

    def _execute(self, job: Job, run: JobRun) -> JobRun:
        try:
            result = job.fn(run.project)
        except Exception as exc:  # recorded in the run history and retried
            log.exception("job %s for %s failed", job.name, run.project)
            retry_at = self.clock() + timedelta(seconds=job.retry_delay)
            return self._finish(run, "failed", error=f"{type(exc).__name__}: {exc}", next_try=retry_at)
        return self._finish(run, "succeeded", result=orjson.dumps(result, default=str).decode())

    def _finish(
        self,
        run: JobRun,
        status: str,
        *,
        error: str | None = None,
        result: str | None = None,
        next_try: datetime | None = None,
    ) -> JobRun:
        with self.meta.session.begin() as s:
            row = s.get(JobRun, run.id)
            assert row is not None
            row.status, row.error, row.result = status, error, result
            row.finished_at, row.next_try_at = self.clock(), next_try
        return row

    def history(self, *, limit: int = 100, job: str | None = None) -> list[JobRun]:
        with self.meta.session() as s:
            query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
            if job:
                query = query.where(JobRun.job == job)
            return list(s.scalars(query))


def run_as_dict(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "project": run.project,
        "slot": run.slot,
        "status": run.status,
        "attempts": run.attempts,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
        "result": orjson.loads(run.result) if run.result else None,
    }
