"""File imports through the server that owns the workspace (``userloop import`` uses it while a server runs).

The body is the file's bytes; ``filename`` tells its format (``.jsonl``, ``.csv``, ``.parquet``, ``.gz``) and
``mapping`` is the column mapping as JSON (the fields of :class:`userloop.ingest.files.ColumnMapping`). The
route writes the body to a file and runs :func:`userloop.ops.imports.import_files` on it.

Importing needs the ``write`` right over the project. A file whose content, decompressed, is larger than
``ServiceConfig.import_max_bytes`` is refused with 413 naming it, before any of it is read into the project; the
project's rejects files are pruned after each import (``rejects_keep_days``, ``rejects_max_bytes``).
"""

from __future__ import annotations

import re
import tempfile
import zlib
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pydantic
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import ProjectInfo, RuntimeDep, WriteCaller
from userloop.api.routers.profiles import op_context
from userloop.core.errors import UserloopError, ValidationError
from userloop.ingest.files import ColumnMapping
from userloop.ops.imports import ImportedByServer, ImportFiles, Kind, Pruned, import_files
from userloop.store.duck import BAD_VALUE_ERRORS

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
#: A plain file name: no path separator, and not starting with '.' (so never '.' or '..', which name folders).
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}$")
#: What reading a file that is not what its name says raises (garbage bytes named .parquet, .csv, …).
_UNREADABLE: tuple[type[Exception], ...] = (
    pa.ArrowException,
    *BAD_VALUE_ERRORS,
    UnicodeDecodeError,
    EOFError,
    zlib.error,
)
_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_MAPPING = pydantic.TypeAdapter(ColumnMapping)


@router.post("/{kind}", openapi_extra=_BODY, summary="Import a file of events, users or items")
async def import_file(
    rt: RuntimeDep,
    caller: WriteCaller,
    request: Request,
    info: ProjectInfo,
    kind: Kind,
    filename: Annotated[
        str, Query(max_length=200, pattern=_SAFE_NAME.pattern, description="Its suffix tells the format")
    ],
    mapping: Annotated[str, Query(max_length=10_000)] = "{}",
    max_past_days: Annotated[int | None, Query(ge=1, le=36_500)] = None,
) -> ImportedByServer:
    from userloop.ingest.rejects_files import prune_rejects

    try:
        columns = _MAPPING.validate_json(mapping)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"mapping is not a valid column mapping: {exc}", field="mapping") from exc
    folder = rt.path / "imports"
    folder.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / filename
        with path.open("wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        rejects = rt.path / "rejects" / f"{info.name}-{kind}-{Path(tmp).name}.jsonl"
        req = ImportFiles(project=info.name, kind=kind, files=[path], mapping=columns, max_past_days=max_past_days,
                          rejects=rejects)  # fmt: skip
        try:
            done = await run_in_threadpool(
                import_files, op_context(rt, caller, info, "write"), req, max_bytes=rt.config.import_max_bytes
            )
        except _UNREADABLE as exc:
            message = f"the body is not a readable {kind} file of the format its filename {filename!r} says: {exc}"
            raise UserloopError(message, code="unreadable_file", field="body") from exc
    pruned = prune_rejects(
        rejects.parent,
        info.name,
        keep_days=rt.config.rejects_keep_days,
        max_bytes=rt.config.rejects_max_bytes,
        keep=rejects if rejects.exists() else None,
    )
    summary = {**done.model_dump(), "files": [filename]}  # the sender's file, not the deleted copy here
    return ImportedByServer(**summary, rejects_pruned=Pruned.model_validate(pruned.as_dict()))
