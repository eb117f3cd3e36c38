"""The audit log as an operation: every change to the workspace, newest first (written by
:func:`userloop.ops.runner.run_operation`).

Reading it needs ``admin`` over every project: the log spans projects and names the people and tokens that act.
Paging is by key: pass the reply's ``next_before_id`` as ``before_id`` for the next, older page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from userloop.ops.base import OpContext, RowId, Strict, operation


class AuditEntry(Strict):
    """One change: who (``actor_kind`` account / token / owner), what (``action``, the operation's id, and
    ``target``, its path parameters), when (UTC), the request and the thing before and after, secrets redacted."""

    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str
    project: str | None
    action: str
    target: dict[str, Any]
    request: Any
    before: Any
    after: Any
    address: str | None


class AuditPage(Strict):
    entries: list[AuditEntry]
    next_before_id: int | None = Field(description="Pass as before_id for the next (older) page; null at the end.")


class ListAudit(Strict):
    actor: str | None = Field(default=None, max_length=200, description="Only this actor's changes (its name).")
    action: str | None = Field(default=None, max_length=80, description="Only actions starting so, e.g. 'segments.'.")
    project: str | None = Field(default=None, max_length=40, description="Only changes in this project.")
    since: datetime | None = Field(default=None, description="From this instant (included; UTC unless zoned).")
    until: datetime | None = Field(default=None, description="Up to this instant (excluded; UTC unless zoned).")
    before_id: RowId | None = Field(default=None, description="Only entries older than this id (paging).")
    limit: int = Field(default=100, ge=1, le=500)


@operation("audit.list", "GET", "/api/v1/audit", right="admin", workspace_token=True,
           summary="The audit log: every change, who made it, when, before and after (newest first)")  # fmt: skip
def list_audit(ctx: OpContext, req: ListAudit) -> AuditPage:
    from userloop.store import audit

    ctx.access.check_workspace("the audit log")
    project_id = ctx.resolve(req.project).id if req.project is not None else None
    where = audit.AuditFilter(
        actor=req.actor, action=req.action, project_id=project_id, since=_utc(req.since), until=_utc(req.until),
        before_id=req.before_id, limit=req.limit,
    )  # fmt: skip
    rows = audit.page(ctx.ws.meta, where)
    names = {p.id: p.name for p in ctx.ws.meta.projects()}
    entries = [_entry(row, names) for row in rows]
    more = len(rows) == req.limit and rows[-1].id > 1
    return AuditPage(entries=entries, next_before_id=rows[-1].id if more else None)


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` as the naive UTC the log stores (a naive one is taken as UTC already)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _entry(row: Any, names: dict[int, str]) -> AuditEntry:
    project = names.get(row.project_id) if row.project_id is not None else None
    return AuditEntry(
        id=row.id, at=row.at, actor_kind=row.actor_kind, actor_id=row.actor_id, actor_name=row.actor_name,
        project=project, action=row.action, target=row.target or {}, request=row.request, before=row.before,
        after=row.after, address=row.address,
    )  # fmt: skip
