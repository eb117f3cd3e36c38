"""The property registry: names, tables, types and display names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from userloop.api.deps import Reader, StoreDep

router = APIRouter(prefix="/api/v1/properties", tags=["properties"], dependencies=[Reader])


@router.get("", summary="List a project's registered properties")
def list_properties(store: StoreDep) -> list[dict[str, Any]]:
    return store.property_rows()
