"""The profile platform over HTTP: ``/api/v1/tags``, ``/api/v1/segments`` and ``/api/v1/users/{key}``.

Every route needs an admin token. Phone numbers and e-mail addresses are masked unless the request asks for
``unmask=true`` *and* its token holds the ``pii`` grant (``userloop keys grant ID pii``); asking without the
grant is a 403, so a script never mistakes masked values for real ones. A rule (estimate, segment, comparison
group) with a condition on personal data needs the grant too (``pii_required``): its size would confirm a guess.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import Admin, ProjectInfo, ReadCaller, Reader, RuntimeDep
from userloop.api.deps import PiiAllowed as Pii
from userloop.api.models import (
    AnalysisSegmentIn,
    CompareIn,
    LookalikeIn,
    RuleIn,
    SegmentIn,
    SegmentPatch,
    StaticSegmentIn,
    TagMaterialiseIn,
)
from userloop.core.clock import parse_day
from userloop.core.errors import ValidationError
from userloop.profile import segments
from userloop.profile.platform import Profiles

AdminKey = ReadCaller  # every route reads; changing ones add dependencies=[Admin]
tags_router = APIRouter(prefix="/api/v1/tags", tags=["tags"], dependencies=[Reader])
segments_router = APIRouter(prefix="/api/v1/segments", tags=["segments"], dependencies=[Reader])
users_router = APIRouter(prefix="/api/v1/users", tags=["users"], dependencies=[Reader])
TagName = Annotated[str, Path(max_length=60, pattern=r"^[a-z][a-z0-9_]{0,59}$")]
SegmentId = Annotated[int, Path(ge=1, le=2**62)]


def profiles(rt: RuntimeDep, info: ProjectInfo, _key: AdminKey) -> Profiles:
    return Profiles(rt.ws.meta, rt.ws.project(info.name), info)


ProfilesDep = Annotated[Profiles, Depends(profiles)]


def may_unmask(rt: RuntimeDep, key: AdminKey, unmask: bool = False) -> bool:
    """``unmask`` as asked, after checking the token may see personal data."""
    if unmask and not key.has("pii"):
        raise HTTPException(403, "this token may not see phone numbers or e-mail addresses (grant 'pii' first)")
    return unmask


Unmask = Annotated[bool, Depends(may_unmask)]


def _day(text: str | None) -> date | None:
    return parse_day(text, "date")


# tags ---------------------------------------------------------------------------------------------------------
@tags_router.get("", summary="Tags with their latest run")
def list_tags(p: ProfilesDep) -> list[dict[str, Any]]:
    return p.tags()


@tags_router.post(
    "", dependencies=[Admin], status_code=201, summary="Define a tag (validated against the project before it is saved)"
)
def create_tag(p: ProfilesDep, definition: dict[str, Any]) -> dict[str, Any]:
    return p.save_tag(definition)


@tags_router.post(
    "/starter", dependencies=[Admin], status_code=201, summary="Install the starter tags for the simulated business"
)
def install_starter(p: ProfilesDep) -> list[dict[str, Any]]:
    return p.install_starter()


@tags_router.post(
    "/materialise", dependencies=[Admin], summary="Compute tags now (dated; the history keeps earlier values)"
)
async def materialise_tags(p: ProfilesDep, body: TagMaterialiseIn) -> dict[str, Any]:
    return await run_in_threadpool(p.materialise, body.names, run_date=_day(body.date), full=body.full)


@tags_router.get("/{name}", summary="A tag: definition, coverage over time, latest value distribution")
def show_tag(p: ProfilesDep, name: TagName) -> dict[str, Any]:
    return p.tag(name)


@tags_router.put("/{name}", dependencies=[Admin], summary="Replace a tag's definition (its history starts again)")
def update_tag(p: ProfilesDep, name: TagName, definition: dict[str, Any]) -> dict[str, Any]:
    return p.update_tag(name, definition)


@tags_router.delete("/{name}", dependencies=[Admin], summary="Delete a tag and its history")
def delete_tag(p: ProfilesDep, name: TagName) -> dict[str, Any]:
    p.delete_tag(name)
    return {"deleted": name}


@tags_router.post(
    "/{name}/upload", dependencies=[Admin], summary="Upload values of an upload tag as CSV (text/csv body)"
)
async def upload_tag(
    p: ProfilesDep,
    name: TagName,
    request: Request,
    id_column: Annotated[str, Query(max_length=100)] = "id",
    id_kind: Literal["user_id", "distinct_id"] = "distinct_id",
    value_column: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("the CSV is not UTF-8 text") from exc
    return await run_in_threadpool(
        p.upload_tag, name, text, id_column=id_column, id_kind=id_kind, value_column=value_column
    )


# segments -----------------------------------------------------------------------------------------------------
@segments_router.get("", summary="Segments with their size and last refresh")
def list_segments(p: ProfilesDep) -> list[dict[str, Any]]:
    return p.segments()


@segments_router.post(
    "", dependencies=[Admin], status_code=201, summary="Save a rule segment (and compute its members)"
)
async def create_segment(p: ProfilesDep, body: SegmentIn, pii: Pii) -> dict[str, Any]:
    await run_in_threadpool(segments.require_rule_pii, p.project, p.meta, p.info, body.rule, pii=pii)
    return await run_in_threadpool(
        p.save_segment, body.name, body.rule, description=body.description, refresh=body.refresh, compute=body.compute
    )


@segments_router.post("/estimate", summary="How many people a rule selects now, before saving it")
async def estimate(p: ProfilesDep, body: RuleIn, pii: Pii) -> dict[str, Any]:
    return await run_in_threadpool(
        segments.estimate, p.project, p.meta, p.info, body.rule, timeout_s=body.timeout, pii=pii
    )


@segments_router.post("/static", dependencies=[Admin], status_code=201, summary="A segment of uploaded ids")
async def create_static(p: ProfilesDep, body: StaticSegmentIn) -> dict[str, Any]:
    return await run_in_threadpool(
        p.static_segment, body.name, body.ids, id_kind=body.id_kind, description=body.description
    )


@segments_router.post(
    "/from-analysis", dependencies=[Admin], status_code=201, summary="A segment of an analysis' people (e.g. dropped)"
)
async def create_from_analysis(p: ProfilesDep, body: AnalysisSegmentIn, pii: Pii) -> dict[str, Any]:
    await run_in_threadpool(segments.require_analysis_pii, p.project, p.info, body.definition, pii=pii)
    return await run_in_threadpool(p.segment_from_analysis, body.name, body.definition, description=body.description)


@segments_router.post(
    "/lookalike", dependencies=[Admin], status_code=201, summary="People most like a seed segment (top N saved)"
)
async def create_lookalike(p: ProfilesDep, body: LookalikeIn) -> dict[str, Any]:
    return await run_in_threadpool(
        p.lookalike, body.name, body.seed, top_n=body.top_n, kinds=tuple(body.features), save=body.save
    )


@segments_router.post("/compare", summary="Compare two groups on every tag and property")
async def compare(p: ProfilesDep, body: CompareIn, pii: Pii) -> dict[str, Any]:
    for group in (body.a, body.b):
        if group is not None and "rule" in group:
            await run_in_threadpool(segments.require_rule_pii, p.project, p.meta, p.info, group["rule"], pii=pii)
    return await run_in_threadpool(
        p.compare, body.a, body.b, kinds=tuple(body.features), correction=body.correction, alpha=body.alpha
    )


@segments_router.get("/export-fields", summary="Fields a segment export can hold (sensitive ones marked)")
def export_fields(p: ProfilesDep) -> list[dict[str, Any]]:
    return p.export_fields()


@segments_router.get("/{segment_id}", summary="A segment with its run history")
def show_segment(p: ProfilesDep, segment_id: SegmentId) -> dict[str, Any]:
    return p.segment(segment_id)


@segments_router.patch(
    "/{segment_id}", dependencies=[Admin], summary="Rename, re-describe, change the rule or the refresh"
)
def update_segment(p: ProfilesDep, segment_id: SegmentId, body: SegmentPatch, pii: Pii) -> dict[str, Any]:
    if body.rule is not None:
        segments.require_rule_pii(p.project, p.meta, p.info, body.rule, pii=pii)
    return p.update_segment(segment_id, **body.model_dump(exclude_none=True))


@segments_router.delete("/{segment_id}", dependencies=[Admin], summary="Delete a segment and its membership history")
def delete_segment(p: ProfilesDep, segment_id: SegmentId) -> dict[str, Any]:
    p.delete_segment(segment_id)
    return {"deleted": segment_id}


@segments_router.post("/{segment_id}/refresh", dependencies=[Admin], summary="Recompute a rule segment's members now")
async def refresh_segment(
    p: ProfilesDep, segment_id: SegmentId, on: Annotated[str | None, Query(alias="date", max_length=10)] = None
) -> dict[str, Any]:
    return await run_in_threadpool(p.refresh_segment, segment_id, run_date=_day(on))


@segments_router.get("/{segment_id}/members", summary="A page of current members (person keys)")
def segment_members(
    p: ProfilesDep,
    segment_id: SegmentId,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None,
) -> dict[str, Any]:
    return p.members(segment_id, limit=limit, after=after)


@segments_router.get("/{segment_id}/changes", summary="Who entered and who left in a day's refresh")
def segment_changes(
    p: ProfilesDep, segment_id: SegmentId, on: Annotated[str, Query(alias="date", max_length=10)]
) -> dict[str, Any]:
    day = _day(on)
    assert day is not None
    return p.changes(segment_id, day)


@segments_router.get("/{segment_id}/export", summary="Members with chosen fields as CSV or Parquet")
async def export_segment(
    p: ProfilesDep,
    segment_id: SegmentId,
    unmask: Unmask,
    fields: Annotated[str, Query(max_length=5000, description="Comma-separated, e.g. user_id,property:city")],
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
    limit: Annotated[int | None, Query(ge=1, le=50_000_000)] = None,
) -> FileResponse:
    chosen = [f.strip() for f in fields.split(",") if f.strip()]
    folder = tempfile.mkdtemp(prefix="userloop-export-")
    path = FilePath(folder) / f"segment-{segment_id}.{fmt}"
    await run_in_threadpool(p.export, segment_id, chosen, path=path, fmt=fmt, unmask=unmask, limit=limit)
    media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=path.name, background=BackgroundTask(_remove, path))


def _remove(path: FilePath) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()


# users --------------------------------------------------------------------------------------------------------
UserKey = Annotated[str, Path(min_length=1, max_length=255)]


@users_router.get("/{key}", summary="User 360: profile, identities, tags with history, models, segments, orders")
async def user_360(p: ProfilesDep, key: UserKey, unmask: Unmask) -> dict[str, Any]:
    return await run_in_threadpool(p.user, key, unmask=unmask)


@users_router.get("/{key}/timeline", summary="A page of the person's events, newest first")
async def user_timeline(
    p: ProfilesDep,
    key: UserKey,
    unmask: Unmask,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=200)] = None,
    events: Annotated[str | None, Query(max_length=2000, description="Comma-separated event names")] = None,
) -> dict[str, Any]:
    names = [e.strip() for e in events.split(",") if e.strip()] if events else None
    return await run_in_threadpool(p.timeline, key, limit=limit, before=before, events=names, unmask=unmask)
