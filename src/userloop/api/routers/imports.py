"""File imports through the server that owns the workspace (``userloop import`` uses it while a server runs).

The body is the file's bytes; ``filename`` tells its format (``.jsonl``, ``.csv``, ``.parquet``, ``.gz``) and
``mapping`` is the column mapping as JSON (the fields of :class:`userloop.ingest.files.ColumnMapping`).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import Admin, ProjectInfo, RuntimeDep
from userloop.core.errors import UserloopError

router = APIRouter(prefix="/api/v1/imports", tags=["imports"], dependencies=[Admin])
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/{kind}", openapi_extra=_BODY, summary="Import a file of events, users or items")
async def import_file(
    rt: RuntimeDep,
    request: Request,
    info: ProjectInfo,
    kind: Literal["events", "users", "items"],
    filename: Annotated[str, Query(max_length=200)],
    mapping: Annotated[str, Query(max_length=10_000)] = "{}",
    max_past_days: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    from userloop.ingest.files import ColumnMapping, import_files
    from userloop.ingest.loader import TimePolicy

    if not _SAFE_NAME.match(filename):
        raise HTTPException(400, "filename may hold letters, digits, '.', '_' and '-' only")
    try:
        options = orjson.loads(mapping)
        column_mapping = ColumnMapping(**{**options, "ignore": tuple(options.get("ignore", ()))})
    except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
        raise HTTPException(400, f"mapping is not a valid column mapping: {exc}") from exc
    policy = TimePolicy(info.max_future_seconds, max_past_days or info.max_past_days)
    folder = rt.path / "imports"
    folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / filename
        with path.open("wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        store = rt.ws.project(info.name)
        rejects = rt.path / "rejects" / f"{info.name}-{kind}-{Path(tmp).name}.jsonl"
        try:
            summary = await run_in_threadpool(
                import_files,
                store,
                [path],
                kind=kind,
                timezone=info.timezone,
                mapping=column_mapping,
                policy=policy,
                rejects_path=rejects,
            )
        except UserloopError as exc:
            raise HTTPException(400, {"code": exc.code, "message": exc.message}) from exc
    return summary.as_dict()
