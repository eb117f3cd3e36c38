"""The dead letter: refused records with field, reason and raw input, newest first."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from userloop.ops.base import OpContext, ProjectScoped, Strict, operation


class Reject(Strict):
    received_at: datetime
    source: str
    row: int | None
    field: str | None
    reason: str
    raw: str | None


class ListRejects(ProjectScoped):
    limit: int = Field(default=50, ge=1, le=10_000, description="At most this many, newest first.")


@operation(
    "rejects.list", "GET", "/api/v1/rejects", right="read", summary="List rejects of a project (?project=, ?limit=)"
)
def list_rejects(ctx: OpContext, req: ListRejects) -> list[Reject]:
    return [Reject.model_validate(r) for r in ctx.store.recent_rejects(req.limit)]
