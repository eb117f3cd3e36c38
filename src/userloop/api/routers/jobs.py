"""Scheduled jobs: what is registered, and the run history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from userloop.api.deps import Limit, RuntimeDep, WorkspaceReader
from userloop.api.models import JobRunOut
from userloop.service.scheduler import run_as_dict

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], dependencies=[WorkspaceReader])


@router.get("", summary="Registered jobs and their latest runs")
def list_jobs(rt: RuntimeDep, limit: Limit = 50) -> dict[str, Any]:
    jobs = [
        {
            "name": j.name,
            "kind": j.kind,
            "at": j.at if j.kind == "daily" else None,
            "every": j.every if j.kind == "interval" else None,
            "retries": j.retries,
        }
        for j in rt.scheduler.jobs.values()
    ]
    runs = [JobRunOut(**run_as_dict(r)) for r in rt.scheduler.history(limit=limit)]
    return {"jobs": jobs, "runs": [r.model_dump() for r in runs]}
