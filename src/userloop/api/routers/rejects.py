"""The dead letter: refused records with field, reason and raw input, newest first."""

from __future__ import annotations

from fastapi import APIRouter

from userloop.api.deps import Limit, Reader, StoreDep
from userloop.api.models import Reject

router = APIRouter(prefix="/api/v1/rejects", tags=["rejects"], dependencies=[Reader])


@router.get("", summary="List rejects of a project (?project=, ?limit=)")
def list_rejects(store: StoreDep, limit: Limit = 50) -> list[Reject]:
    return [Reject.model_validate(r) for r in store.recent_rejects(limit)]
