"""Health and collector status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from userloop import __version__
from userloop.api.deps import RuntimeDep, WorkspaceReader

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness (no credentials needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/api/v1/collector", dependencies=[WorkspaceReader], summary="Spool and loader progress")
def collector_status(rt: RuntimeDep) -> dict[str, Any]:
    stats = rt.loader.stats
    committed = stats.position
    return {
        "durable": {"segment": rt.spool.durable.segment, "offset": rt.spool.durable.offset},
        "committed": {"segment": committed.segment, "offset": committed.offset},
        "backlog_bytes": rt.spool.backlog_bytes(committed),
        "loaded": stats.loaded.as_dict(),
        "batches": stats.batches,
        "dead_lettered": stats.dead_lettered,
        "last_error": stats.last_error,
        # collector processes beside the service (userloop serve --collector-only): each spool's progress
        "collectors": rt.collectors.status(),
    }
