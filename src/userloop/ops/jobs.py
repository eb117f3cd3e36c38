"""Scheduled jobs: what the service runs, and the run history (every project's: a workspace-level token)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from userloop.ops.base import OpContext, Strict, operation


class JobOut(Strict):
    name: str
    kind: Literal["daily", "interval"]
    at: str | None = Field(description="HH:MM in each project's zone, for a daily job.")
    every: int | None = Field(description="Seconds between runs, for an interval job.")
    retries: int


class JobRunOut(Strict):
    id: int
    job: str
    project: str
    slot: str
    status: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    error: str | None
    result: Any = None


class JobsOut(Strict):
    """The jobs the running service has registered (none when the CLI reads the workspace itself) and the
    latest runs, newest first."""

    jobs: list[JobOut]
    runs: list[JobRunOut]


class ListJobs(Strict):
    limit: int = Field(default=50, ge=1, le=10_000, description="Most recent runs to return.")


@operation("jobs.list", "GET", "/api/v1/jobs", right="read", workspace_token=True,
           summary="Registered jobs and their latest runs")  # fmt: skip
def list_jobs(ctx: OpContext, req: ListJobs) -> JobsOut:
    from userloop.service.scheduler import Scheduler, run_as_dict
    from userloop.store.service_tables import create_tables

    if ctx.service is not None:
        scheduler = ctx.service.scheduler
    else:
        create_tables(ctx.ws.meta)
        scheduler = Scheduler(ctx.ws.meta)
    jobs = [
        JobOut(name=j.name, kind=j.kind, at=j.at if j.kind == "daily" else None,
               every=j.every if j.kind == "interval" else None, retries=j.retries)
        for j in scheduler.jobs.values()
    ]  # fmt: skip
    return JobsOut(
        jobs=jobs, runs=[JobRunOut.model_validate(run_as_dict(r)) for r in scheduler.history(limit=req.limit)]
    )
