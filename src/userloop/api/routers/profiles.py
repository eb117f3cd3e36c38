"""The profile platform's routes whose content is a file rather than JSON: an upload tag's values as a CSV body
(``POST /api/v1/tags/{tag}/upload``) and a segment's export as a download (``GET /api/v1/segments/{id}/export``).

Every other tag, segment and user route is an operation (:mod:`userloop.ops.tags`, :mod:`userloop.ops.segments`,
:mod:`userloop.ops.users`), mounted from the registry. These two call the operations' functions with the same
context: the caller's rights, and the project of ``?project=`` once the caller's scope is checked.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import AnalyseCaller, Caller, ProjectInfo, ReadCaller, RuntimeDep
from userloop.core.errors import ValidationError
from userloop.ops import OpContext
from userloop.ops.base import Right
from userloop.ops.segments import ExportSegment, export_segment
from userloop.ops.tags import Uploaded, UploadTag, upload_tag
from userloop.profile.tagdefs import NAME_PATTERN
from userloop.store.meta import Project

router = APIRouter(prefix="/api/v1")
_CSV = {"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}}


def op_context(rt: RuntimeDep, caller: Caller, info: Project, right: Right) -> OpContext:
    """The context of an operation needing ``right`` that a hand-written route runs for ``caller`` on the project
    it names: an account's rights in that project (403 without ``right`` there), a token's own."""
    access = caller.access_for(info, right)
    return OpContext(rt.ws, access, project=info, cache=rt.query_cache)


@router.post("/tags/{tag}/upload", tags=["tags"], openapi_extra=_CSV, operation_id="tags.upload",
             summary="Upload values of an upload tag as CSV (text/csv body)")  # fmt: skip
async def upload(
    rt: RuntimeDep,
    caller: AnalyseCaller,
    info: ProjectInfo,
    tag: Annotated[str, Path(max_length=60, pattern=NAME_PATTERN)],
    request: Request,
    id_column: Annotated[str, Query(max_length=100)] = "id",
    id_kind: Literal["user_id", "distinct_id"] = "distinct_id",
    value_column: Annotated[str | None, Query(max_length=100)] = None,
) -> Uploaded:
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("the CSV is not UTF-8 text", code="invalid_value") from exc
    req = UploadTag(project=info.name, tag=tag, csv=text, id_column=id_column, id_kind=id_kind,
                    value_column=value_column)  # fmt: skip
    return await run_in_threadpool(upload_tag, op_context(rt, caller, info, "analyse"), req)


@router.get("/segments/{segment_id}/export", tags=["segments"], operation_id="segments.export",
            summary="Members with chosen fields as CSV or Parquet")  # fmt: skip
async def export(
    rt: RuntimeDep,
    caller: ReadCaller,
    info: ProjectInfo,
    segment_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    fields: Annotated[str, Query(max_length=5000, description="Comma-separated, e.g. user_id,property:city")],
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
    unmask: bool = False,
    limit: Annotated[int | None, Query(ge=1, le=50_000_000)] = None,
) -> FileResponse:
    chosen = [f.strip() for f in fields.split(",") if f.strip()]
    path = FilePath(tempfile.mkdtemp(prefix="userloop-export-")) / f"segment-{segment_id}.{fmt}"
    req = ExportSegment(project=info.name, segment_id=segment_id, fields=chosen, path=path, format=fmt,
                        unmask=unmask, limit=limit)  # fmt: skip
    try:
        await run_in_threadpool(export_segment, op_context(rt, caller, info, "read"), req)
    except BaseException:
        _remove(path)
        raise
    media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=path.name, background=BackgroundTask(_remove, path))


def _remove(path: FilePath) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()
