"""Jobs the service registers today. Later issues (models, tags, segments) add theirs the same way."""

from __future__ import annotations

from typing import Any

from userloop.service.scheduler import Job
from userloop.store.workspace import Workspace

REJECTS_KEEP_DAYS = 30


def rejects_retention(ws: Workspace, *, keep_days: int = REJECTS_KEEP_DAYS, at: str = "03:30") -> Job:
    """Daily: delete dead-letter rows older than ``keep_days`` (they have been visible for that long)."""

    def run(project: str) -> dict[str, Any]:
        store = ws.project(project)
        with store.store.transaction() as con:
            (deleted,) = con.execute(
                f"SELECT count(*) FROM {store.table('rejects')} WHERE received_at < now()::TIMESTAMP - to_days(?)",
                [keep_days],
            ).fetchone() or (0,)
            con.execute(
                f"DELETE FROM {store.table('rejects')} WHERE received_at < now()::TIMESTAMP - to_days(?)", [keep_days]
            )
        return {"deleted": int(deleted), "keep_days": keep_days}

    return Job("rejects_retention", run, kind="daily", at=at)
