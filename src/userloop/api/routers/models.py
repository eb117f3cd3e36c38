"""User models: their stored reports (RFM, lifecycle, CLV, value, activity, preference, churn)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from userloop.api.deps import Admin, StoreDep
from userloop.core.errors import NotFoundError
from userloop.models.base import latest_report
from userloop.models.pipeline import MODEL_ORDER

router = APIRouter(prefix="/api/v1/models", tags=["models"], dependencies=[Admin])


@router.get("", summary="The models that the pipeline runs, in order")
def list_models() -> list[str]:
    return list(MODEL_ORDER)


@router.get("/{name}/report", summary="A model's stored report: the latest run, or that of ?run_date=")
def model_report(
    name: Annotated[str, Path(max_length=40)],
    store: StoreDep,
    run_date: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    if name not in MODEL_ORDER:
        raise NotFoundError(f"no model named {name!r}; the models are {', '.join(MODEL_ORDER)}")
    return latest_report(store, name, run_date)
