"""File imports through the server that owns the workspace (``userloop import`` uses it while a server runs).

The body is the file's bytes; ``filename`` tells its format (``.jsonl``, ``.csv``, ``.parquet``, ``.gz``) and
``mapping`` is the column mapping as JSON (the fields of :class:`userloop.ingest.files.ColumnMapping`).

Importing needs the ``write`` right over the project. A file whose content, decompressed, is larger than
``ServiceConfig.import_max_bytes`` is refused with 413 naming it, before any of it is read into the project; the
project's rejects files are pruned after each import (``rejects_keep_days``, ``rejects_max_bytes``).
"""

from __future__ import annotations

import re
import tempfile
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import duckdb
import orjson
import pyarrow as pa
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import ProjectInfo, RuntimeDep, Writer
from userloop.core.errors import UserloopError

router = APIRouter(prefix="/api/v1/imports", tags=["imports"], dependencies=[Writer])
#: A plain file name: no path separator, and not starting with '.' (so never '.' or '..', which name folders).
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")
#: What reading a file that is not what its name says raises (garbage bytes named .parquet, .csv, …).
_UNREADABLE = (
    pa.ArrowException,
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    UnicodeDecodeError,
    EOFError,
    zlib.error,
)
P = ParamSpec("P")
R = TypeVar("R")
_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/{kind}", openapi_extra=_BODY, summary="Import a file of events, users or items")
async def import_file(
    rt: RuntimeDep,
    request: Request,
    info: ProjectInfo,
    kind: Literal["events", "users", "items"],
    filename: Annotated[
        str, Query(max_length=200, pattern=_SAFE_NAME.pattern, description="Its suffix tells the format")
    ],
    mapping: Annotated[str, Query(max_length=10_000)] = "{}",
    max_past_days: Annotated[int | None, Query(ge=1, le=36_500)] = None,
) -> dict[str, Any]:
    from userloop.ingest.files import ColumnMapping, ExpandedTooLargeError, import_files
    from userloop.ingest.loader import TimePolicy
    from userloop.ingest.rejects_files import prune_rejects

    if not _SAFE_NAME.match(filename):
        raise HTTPException(400, "filename may hold letters, digits, '.', '_' and '-' only, and may not start with '.'")
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
                _locked(import_files, store.store.lock),
                store,
                [path],
                kind=kind,
                timezone=info.timezone,
                mapping=column_mapping,
                policy=policy,
                rejects_path=rejects,
                max_bytes=rt.config.import_max_bytes,
            )
        except ExpandedTooLargeError as exc:
            raise HTTPException(413, {"code": exc.code, "message": exc.message}) from exc
        except UserloopError as exc:
            raise HTTPException(400, {"code": exc.code, "message": exc.message}) from exc
        except _UNREADABLE as exc:
            message = f"the body is not a readable {kind} file of the format its filename {filename!r} says: {exc}"
            raise HTTPException(400, {"code": "unreadable_file", "message": message}) from exc
    pruned = prune_rejects(
        rejects.parent,
        info.name,
        keep_days=rt.config.rejects_keep_days,
        max_bytes=rt.config.rejects_max_bytes,
        keep=rejects if rejects.exists() else None,
    )
    return {**summary.as_dict(), "rejects_pruned": pruned.as_dict()}


def _locked(func: Callable[P, R], lock: AbstractContextManager[Any]) -> Callable[P, R]:
    """``func`` run while holding ``lock``: the project's DuckDB connection is shared with the background loader and
    refuses a second caller (ResourceInUseException, a 500) instead of waiting; the store's lock serialises them."""

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with lock:
            return func(*args, **kwargs)

    return run
