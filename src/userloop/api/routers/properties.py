"""The property registry: names, tables, types and display names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from userloop.api.deps import Admin, StoreDep

router = APIRouter(prefix="/api/v1/properties", tags=["properties"], dependencies=[Admin])


@router.get("", summary="List a project's registered properties")
def list_properties(store: StoreDep) -> list[dict[str, Any]]:
    with store.store.lock:
        rows = store.con.execute(
            f"SELECT tbl, name, type, display_zh, display_en, first_seen FROM {store.table('registry')} "
            "ORDER BY tbl, name"
        ).fetchall()
    cols = ["table", "name", "type", "display_zh", "display_en", "first_seen"]
    return [dict(zip(cols, (*r[:5], str(r[5])), strict=True)) for r in rows]
