"""Analyses and analyst SQL through the server that owns the workspace.

``POST /api/v1/query`` runs a definition (trends, funnel, retention, …); ``DELETE /api/v1/query/{id}`` cancels
one that runs under that id; ``/api/v1/insights`` saves, lists, updates, deletes and runs named definitions;
``/api/v1/dashboards/core-metrics`` is the ready dashboard of DOMAIN §10–11. ``POST /api/v1/sql`` is analyst SQL.

A token without the ``pii`` grant sees phone numbers and e-mail addresses masked in SQL results and in
breakdowns, and may not filter on them (:class:`userloop.query.compile.Context`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import Admin, BodyScope, ProjectInfo, Reader, RuntimeDep, may_see_pii
from userloop.api.models import InsightIn, InsightPatch, QueryIn, RowId, SqlIn
from userloop.core.errors import NotFoundError, UserloopError
from userloop.query import insights
from userloop.query.dashboards import core_metrics
from userloop.query.engine import Engine, cancel
from userloop.service.runtime import Runtime
from userloop.store.meta import Project

router = APIRouter(prefix="/api/v1", tags=["query"], dependencies=[Reader])


#: Whether the caller's token may see personal data in clear (the ``pii`` grant).
Pii = Annotated[bool, Depends(may_see_pii)]


def _project(rt: Runtime, name: str) -> Project:
    info = rt.ws.meta.project(name)
    if info is None:
        raise NotFoundError(f"no project named {name!r}")
    return info


def _engine(rt: Runtime, info: Project, pii: bool) -> Engine:
    return Engine(rt.ws.project(info.name), info.timezone, rt.query_cache, pii=pii)


@router.post("/sql", dependencies=[BodyScope], summary="Run one read-only query over events, users, identities, items")
async def run_sql(rt: RuntimeDep, body: SqlIn, pii: Pii) -> dict[str, Any]:
    from userloop.query import run_readonly

    if rt.ws.meta.project(body.project) is None:
        raise HTTPException(404, f"no project named {body.project!r}")
    store = rt.ws.project(body.project)
    try:
        result = await run_in_threadpool(
            run_readonly,
            store,
            body.query,
            pii=pii,
            timeout_s=body.timeout,
            max_rows=body.limit,
            max_bytes=rt.config.sql_max_reply_bytes,
        )
    except UserloopError as exc:
        raise HTTPException(400, {"code": exc.code, "message": exc.message}) from exc
    return result.as_dict()


@router.post(
    "/query", dependencies=[BodyScope], summary="Run an analysis definition (trends, funnel, retention, paths, …)"
)
async def run_query(rt: RuntimeDep, body: QueryIn, pii: Pii) -> dict[str, Any]:
    engine = _engine(rt, _project(rt, body.project), pii)
    result = await run_in_threadpool(
        engine.run,
        body.definition,
        timeout_s=body.timeout,
        query_id=body.query_id,
        use_cache=body.use_cache,
        explain=body.explain,
    )
    return result.model_dump(mode="json")


@router.delete("/query/{query_id}", summary="Cancel the analysis running under this id")
def cancel_query(query_id: Annotated[str, Path(max_length=100)]) -> dict[str, Any]:
    if not cancel(query_id):
        raise NotFoundError(f"no query {query_id!r} is running")
    return {"cancelled": query_id}


@router.get("/insights", summary="Saved analyses of a project (optionally one dashboard's)")
def list_insights(
    rt: RuntimeDep, info: ProjectInfo, dashboard: Annotated[str | None, Query(max_length=100)] = None
) -> list[dict[str, Any]]:
    return [i.as_dict() for i in insights.listing(rt.ws.meta, info.id, dashboard=dashboard)]


@router.post(
    "/insights", status_code=201, dependencies=[Admin, BodyScope], summary="Save an analysis definition under a name"
)
def create_insight(rt: RuntimeDep, body: InsightIn) -> dict[str, Any]:
    info = _project(rt, body.project)
    row = insights.save(
        rt.ws.meta, info.id, body.name, body.definition, description=body.description, dashboard=body.dashboard
    )
    return row.as_dict()


@router.get("/insights/{insight_id}", summary="One saved analysis")
def show_insight(rt: RuntimeDep, info: ProjectInfo, insight_id: RowId) -> dict[str, Any]:
    return insights.get(rt.ws.meta, info.id, insight_id).as_dict()


@router.put(
    "/insights/{insight_id}",
    dependencies=[Admin, BodyScope],
    summary="Change a saved analysis (name, definition, description, dashboard)",
)
def update_insight(rt: RuntimeDep, insight_id: RowId, body: InsightPatch) -> dict[str, Any]:
    info = _project(rt, body.project)
    row = insights.update(
        rt.ws.meta,
        info.id,
        insight_id,
        name=body.name,
        definition=body.definition,
        description=body.description,
        dashboard=body.dashboard,
    )
    return row.as_dict()


@router.delete("/insights/{insight_id}", dependencies=[Admin], summary="Delete a saved analysis")
def delete_insight(rt: RuntimeDep, info: ProjectInfo, insight_id: RowId) -> dict[str, Any]:
    insights.delete(rt.ws.meta, info.id, insight_id)
    return {"deleted": insight_id}


@router.post("/insights/{insight_id}/run", summary="Run a saved analysis")
async def run_insight(
    rt: RuntimeDep,
    info: ProjectInfo,
    insight_id: RowId,
    pii: Pii,
    timeout: Annotated[float, Query(gt=0, le=600)] = 60.0,
) -> dict[str, Any]:
    row = insights.get(rt.ws.meta, info.id, insight_id)
    result = await run_in_threadpool(_engine(rt, info, pii).run, row.as_dict()["definition"], timeout_s=timeout)
    return {"insight": row.as_dict(), **result.model_dump(mode="json")}


@router.get("/dashboards/core-metrics", summary="The core-metrics dashboard's definitions (DOMAIN §10–11)")
def core_metrics_definitions() -> list[dict[str, Any]]:
    return core_metrics.definitions()


@router.post("/dashboards/core-metrics/run", summary="Run every panel of the core-metrics dashboard")
async def run_core_metrics(
    rt: RuntimeDep, info: ProjectInfo, pii: Pii, last: Annotated[int, Query(ge=7, le=365)] = 30
) -> dict[str, Any]:
    return await run_in_threadpool(core_metrics.run, _engine(rt, info, pii), last_days=last)
