"""User models (RFM, lifecycle, CLV, value, activity, preference, churn) as operations: which run, run them,
read their stored reports."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from userloop.core.errors import NotFoundError
from userloop.ops.base import NoInput, OpContext, ProjectScoped, Strict, operation


@operation("models.list", "GET", "/api/v1/models", right="read", summary="The models that the pipeline runs, in order")
def list_models(_ctx: OpContext, req: NoInput) -> list[str]:
    from userloop.models.pipeline import MODEL_ORDER

    return list(MODEL_ORDER)


class ModelRuns(Strict):
    """Each model the pipeline runs, in order, with its latest run day (None: never run in this project)."""

    name: str
    run_date: date | None


@operation("models.runs", "GET", "/api/v1/models/runs", right="read",
           summary="Each model with its latest run day in the project (None: not run yet)")  # fmt: skip
def model_runs(ctx: OpContext, req: ProjectScoped) -> list[ModelRuns]:
    from userloop.models.base import latest_runs
    from userloop.models.pipeline import MODEL_ORDER

    runs = latest_runs(ctx.store)
    return [ModelRuns(name=name, run_date=runs.get(name)) for name in MODEL_ORDER]


class ModelReportRequest(ProjectScoped):
    name: str = Field(max_length=40, description="rfm, lifecycle, clv, value, activity, preference or churn.")
    run_date: date | None = Field(default=None, description="The run's day (default: the latest run).")


class ModelReport(Strict):
    """A model's stored report: what the run found (segments, fit, validation), per model."""

    model: str
    run_date: date
    model_version: str
    created_at: datetime
    report: dict[str, Any]


@operation("models.report", "GET", "/api/v1/models/{name}/report", right="read",
           summary="A model's stored report: the latest run, or that of ?run_date=")  # fmt: skip
def model_report(ctx: OpContext, req: ModelReportRequest) -> ModelReport:
    from userloop.models.base import latest_report
    from userloop.models.pipeline import MODEL_ORDER

    if req.name not in MODEL_ORDER:
        raise NotFoundError(f"no model named {req.name!r}; the models are {', '.join(MODEL_ORDER)}")
    return ModelReport.model_validate(latest_report(ctx.store, req.name, req.run_date))


class RunModels(ProjectScoped):
    only: str | None = Field(default=None, max_length=200, description="Comma-separated model names")
    as_of: date | None = Field(default=None, description="The local day the models describe (default yesterday).")
    clv_model: Literal["auto", "bgnbd", "paretonbd", "mbgnbd"] | None = Field(
        default=None, description="CLV purchase model (default auto: chosen by validation)"
    )
    horizon_days: int | None = Field(default=None, ge=1, le=3650, description="CLV forecast horizon in days")


class ModelsRun(Strict):
    """Each model's outcome by name: users scored, table, seconds and report, or the error that stopped it."""

    project: str
    as_of: date
    models: dict[str, dict[str, Any]]


@operation("models.run", "POST", "/api/v1/models/run", right="analyse", inputs="query", store_writes=True,
           summary="Run the models as of a day (?as_of=, default yesterday) and return their reports")  # fmt: skip
def run_models(ctx: OpContext, req: RunModels) -> ModelsRun:
    from userloop.core.clock import today_in
    from userloop.models.pipeline import run_models as run

    day = req.as_of or today_in(ctx.info.timezone) - timedelta(days=1)
    names = None if req.only is None else req.only.split(",")
    results = run(
        ctx.store, day, names, timezone=ctx.info.timezone, clv_model=req.clv_model, horizon_days=req.horizon_days
    )
    return ModelsRun(project=ctx.info.name, as_of=day, models=results)
