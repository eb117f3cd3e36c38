"""Analyst SQL through the server that owns the workspace (``userloop sql`` uses it while a server runs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import Admin, RuntimeDep
from userloop.api.models import SqlIn
from userloop.core.errors import UserloopError

router = APIRouter(prefix="/api/v1", tags=["query"], dependencies=[Admin])


@router.post("/sql", summary="Run one read-only query over events, users, identities, items")
async def run_sql(rt: RuntimeDep, body: SqlIn) -> dict[str, Any]:
    from userloop.query import run_readonly

    if rt.ws.meta.project(body.project) is None:
        raise HTTPException(404, f"no project named {body.project!r}")
    store = rt.ws.project(body.project)
    try:
        result = await run_in_threadpool(run_readonly, store, body.query, timeout_s=body.timeout, max_rows=body.limit)
    except UserloopError as exc:
        raise HTTPException(400, {"code": exc.code, "message": exc.message}) from exc
    return result.as_dict()
