"""User models: their stored reports (RFM, lifecycle, CLV, value, activity, preference, churn)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from userloop.api.deps import Admin, ProjectInfo, Reader, StoreDep
from userloop.core.errors import NotFoundError
from userloop.models.base import latest_report
from userloop.models.pipeline import MODEL_ORDER

router = APIRouter(prefix="/api/v1/models", tags=["models"], dependencies=[Reader])


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


@router.post(
    "/run",
    dependencies=[Admin],
    summary="Run the models as of a day (?as_of=, default yesterday) and return their reports",
)
def run_models_now(
    store: StoreDep,
    info: ProjectInfo,
    only: Annotated[str | None, Query(max_length=200, description="Comma-separated model names")] = None,
    as_of: Annotated[date | None, Query()] = None,
    clv_model: Annotated[
        Literal["auto", "bgnbd", "paretonbd", "mbgnbd"] | None,
        Query(description="CLV purchase model (default auto: chosen by validation)"),
    ] = None,
    horizon_days: Annotated[int | None, Query(ge=1, le=3650, description="CLV forecast horizon in days")] = None,
) -> dict[str, Any]:
    from datetime import timedelta

    from userloop.core.clock import today_in
    from userloop.models.pipeline import run_models

    day = as_of or today_in(info.timezone) - timedelta(days=1)
    names = None if only is None else only.split(",")
    results = run_models(store, day, names, timezone=info.timezone, clv_model=clv_model, horizon_days=horizon_days)
    return {"project": info.name, "as_of": day, "models": results}
