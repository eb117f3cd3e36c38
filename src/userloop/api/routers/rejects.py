"""The dead letter: refused records with field, reason and raw input, newest first."""

from __future__ import annotations

from fastapi import APIRouter

from userloop.api.deps import Admin, Limit, StoreDep
from userloop.api.models import Reject

router = APIRouter(prefix="/api/v1/rejects", tags=["rejects"], dependencies=[Admin])


@router.get("", summary="List rejects of a project (?project=, ?limit=)")
def list_rejects(store: StoreDep, limit: Limit = 50) -> list[Reject]:
    with store.store.lock:
        rows = store.con.execute(
            f"SELECT received_at, source, row_no, field, reason, left(raw, 2000) FROM {store.table('rejects')} "
            "ORDER BY received_at DESC, row_no LIMIT ?",
            [limit],
        ).fetchall()
    return [Reject(received_at=r[0], source=r[1], row=r[2], field=r[3], reason=r[4], raw=r[5]) for r in rows]
