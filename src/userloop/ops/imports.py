"""File imports (events, users, items from JSON lines, CSV or Parquet, gzip accepted) as an operation.

A file is not JSON, so the import has a route of its own (``POST /api/v1/imports/{kind}``, the file as the body:
:mod:`userloop.api.routers.imports`), which writes the body to a file and calls :func:`import_files`; the CLI
calls the same function in process on the files it names when no server owns the workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field

from userloop.ingest.files import ColumnMapping
from userloop.ops.base import OpContext, ProjectScoped, Strict

Kind = Literal["events", "users", "items"]


class ImportFiles(ProjectScoped):
    """Files to import into the project, read on the machine that runs the import."""

    kind: Kind
    files: list[Path] = Field(min_length=1)
    mapping: ColumnMapping = Field(default_factory=ColumnMapping, description="How CSV/Parquet columns map.")
    max_past_days: int | None = Field(
        default=None, ge=1, le=36_500, description="Accept events up to this many days old (default: the project's)."
    )
    rejects: Path | None = Field(default=None, description="Where refused records go (JSON lines).")


class Imported(Strict):
    """What an import did over all its files."""

    files: list[str]
    received: int
    accepted: int
    rejected: int
    duplicates: int
    events: int
    new_properties: list[str]
    by_type: dict[str, int] = Field(description="Records by Sensors record type.")
    seconds: float
    rejects_file: str | None


class Pruned(Strict):
    deleted: list[str]
    truncated: str | None


class ImportedByServer(Imported):
    """An import through the server, which also applies the rejects retention afterwards."""

    rejects_pruned: Pruned


def import_files(
    ctx: OpContext, req: ImportFiles, *, max_bytes: int | None = None, progress: Callable[[int], None] | None = None
) -> Imported:
    """Import ``req.files``; every record is checked and the refused ones go to ``req.rejects`` with their reason.

    ``max_bytes``: refuse, before reading any, a file whose decompressed content is larger (``too_large``).
    The whole import holds the project's writer, so the background loader waits instead of failing."""
    from userloop.ingest import files
    from userloop.ingest.loader import TimePolicy

    info = ctx.info
    policy = TimePolicy(info.max_future_seconds, req.max_past_days or info.max_past_days)
    rejects = req.rejects or ctx.ws.path / "rejects" / f"{info.name}-{req.kind}-{_stamp()}.jsonl"
    with ctx.store.store.lock:
        summary = files.import_files(
            ctx.store, req.files, kind=req.kind, timezone=info.timezone, mapping=req.mapping, policy=policy,
            rejects_path=rejects, progress=progress, max_bytes=max_bytes,
        )  # fmt: skip
    return Imported.model_validate(summary.as_dict())


def _stamp() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%d-%H%M%SZ")  # one clock: UTC, never the machine's zone
