"""Analyses, saved analyses ("insights"), the core-metrics dashboard and analyst SQL, as operations.

A caller without the ``pii`` right sees phone numbers and e-mail addresses masked in SQL results and in
breakdowns, and may not filter on them (:class:`userloop.query.compile.Context`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field, model_validator

from userloop.core.errors import NotFoundError
from userloop.ops.base import OpContext, ProjectScoped, RowId, Strict, operation
from userloop.query.result import QueryResult

if TYPE_CHECKING:
    from userloop.store.tables import Insight as InsightRow


# analyses -----------------------------------------------------------------------------------------------------
class RunQuery(ProjectScoped):
    definition: dict[str, Any] = Field(description="An analysis definition with its 'kind' (trends, funnel, …).")
    timeout: float = Field(default=60.0, gt=0, le=600)
    query_id: str | None = Field(
        default=None, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", description="Lets DELETE /query/{id} cancel it."
    )
    use_cache: bool = True
    explain: bool = Field(default=False, description="Also return the SQL each statement ran.")

    @model_validator(mode="before")
    @classmethod
    def _wrapped(cls, data: Any) -> Any:
        """A bare definition (``kind`` at the top) is refused with the form to use (docs/api.md)."""
        if isinstance(data, dict) and "definition" not in data and "kind" in data:
            raise ValueError(
                'the body holds the definition under "definition": {"definition": {"kind": …}, "timeout": 60} '
                "(docs/api.md) / 分析定义须放在 definition 字段中"
            )
        return data


@operation(
    "query.run", "POST", "/api/v1/query", right="read",
    summary="Run an analysis definition (trends, funnel, retention, paths, …)",
)  # fmt: skip
def run_query(ctx: OpContext, req: RunQuery) -> QueryResult:
    return ctx.engine().run(
        req.definition, timeout_s=req.timeout, query_id=req.query_id, use_cache=req.use_cache, explain=req.explain
    )


class CancelQuery(ProjectScoped):
    """The analysis to cancel, and the project it runs on (an account needs read there)."""

    query_id: str = Field(max_length=100)


class Cancelled(Strict):
    cancelled: str


@operation("query.cancel", "DELETE", "/api/v1/query/{query_id}", right="read",
           summary="Cancel the analysis running under this id")  # fmt: skip
def cancel_query(_ctx: OpContext, req: CancelQuery) -> Cancelled:
    from userloop.query.engine import cancel

    if not cancel(req.query_id):
        raise NotFoundError(f"no query {req.query_id!r} is running")
    return Cancelled(cancelled=req.query_id)


# analyst SQL --------------------------------------------------------------------------------------------------
class RunSql(ProjectScoped):
    query: str = Field(max_length=100_000)
    timeout: float = Field(default=60.0, gt=0, le=3600)
    limit: int = Field(default=10_000, ge=1, le=1_000_000)


class SqlReply(Strict):
    """Rows of an analyst query; ``truncated`` when rows were cut (by ``limit`` or the reply's size cap)."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    truncated_reason: str | None = None


@operation("sql.run", "POST", "/api/v1/sql", right="read",
           summary="Run one read-only query over events, users, identities, items")  # fmt: skip
def run_sql(ctx: OpContext, req: RunSql) -> SqlReply:
    from userloop.query import run_readonly

    result = run_readonly(
        ctx.store, req.query, pii=ctx.pii, timeout_s=req.timeout, max_rows=req.limit,
        max_bytes=ctx.sql_max_reply_bytes,
    )  # fmt: skip
    return SqlReply.model_validate(result.as_dict())


# insights -----------------------------------------------------------------------------------------------------
class Insight(Strict):
    """A saved analysis: a validated definition under a name, optionally on a dashboard."""

    id: int
    name: str
    description: str
    dashboard: str | None
    kind: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: InsightRow) -> Insight:
        return cls(
            id=row.id, name=row.name, description=row.description, dashboard=row.dashboard, kind=row.kind,
            definition=orjson.loads(row.definition), created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


class ListInsights(ProjectScoped):
    dashboard: str | None = Field(default=None, max_length=100, description="Only this dashboard's insights.")


@operation("insights.list", "GET", "/api/v1/insights", right="read",
           summary="Saved analyses of a project (optionally one dashboard's)")  # fmt: skip
def list_insights(ctx: OpContext, req: ListInsights) -> list[Insight]:
    from userloop.query import insights

    return [Insight.of(i) for i in insights.listing(ctx.ws.meta, ctx.info.id, dashboard=req.dashboard)]


class SaveInsight(ProjectScoped):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]
    description: str = Field(default="", max_length=5000)
    dashboard: str | None = Field(default=None, max_length=100)


@operation("insights.save", "POST", "/api/v1/insights", right="analyse", status=201,
           summary="Save an analysis definition under a name")  # fmt: skip
def save_insight(ctx: OpContext, req: SaveInsight) -> Insight:
    from userloop.query import insights

    row = insights.save(
        ctx.ws.meta, ctx.info.id, req.name, req.definition, description=req.description, dashboard=req.dashboard
    )
    return Insight.of(row)


class GetInsight(ProjectScoped):
    insight_id: RowId


@operation("insights.get", "GET", "/api/v1/insights/{insight_id}", right="read", summary="One saved analysis")
def get_insight(ctx: OpContext, req: GetInsight) -> Insight:
    from userloop.query import insights

    return Insight.of(insights.get(ctx.ws.meta, ctx.info.id, req.insight_id))


class UpdateInsight(ProjectScoped):
    insight_id: RowId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=5000)
    dashboard: str | None = Field(default=None, max_length=100, description="'' takes it off its dashboard.")


@operation("insights.update", "PUT", "/api/v1/insights/{insight_id}", right="analyse",
           summary="Change a saved analysis (name, definition, description, dashboard)")  # fmt: skip
def update_insight(ctx: OpContext, req: UpdateInsight) -> Insight:
    from userloop.query import insights

    row = insights.update(
        ctx.ws.meta, ctx.info.id, req.insight_id, name=req.name, definition=req.definition,
        description=req.description, dashboard=req.dashboard,
    )  # fmt: skip
    return Insight.of(row)


class DeleteInsight(ProjectScoped):
    insight_id: RowId


class Deleted(Strict):
    deleted: int


@operation("insights.delete", "DELETE", "/api/v1/insights/{insight_id}", right="analyse",
           summary="Delete a saved analysis")  # fmt: skip
def delete_insight(ctx: OpContext, req: DeleteInsight) -> Deleted:
    from userloop.query import insights

    insights.delete(ctx.ws.meta, ctx.info.id, req.insight_id)
    return Deleted(deleted=req.insight_id)


class RunInsight(ProjectScoped):
    insight_id: RowId
    timeout: float = Field(default=60.0, gt=0, le=600)


class InsightRun(QueryResult):
    """A saved analysis and what it gives now."""

    insight: Insight


@operation("insights.run", "POST", "/api/v1/insights/{insight_id}/run", right="read", inputs="query",
           summary="Run a saved analysis")  # fmt: skip
def run_insight(ctx: OpContext, req: RunInsight) -> InsightRun:
    insight = get_insight(ctx, GetInsight(project=req.project, insight_id=req.insight_id))
    result = ctx.engine().run(insight.definition, timeout_s=req.timeout)
    return InsightRun(insight=insight, **result.model_dump())


# the core-metrics dashboard -----------------------------------------------------------------------------------
class Panel(Strict):
    """A panel of a ready dashboard: its key, titles (zh, en) and analysis definition."""

    key: str
    title_zh: str
    title_en: str
    definition: dict[str, Any]


class PanelError(Strict):
    code: str
    message: str


class PanelRun(Panel):
    """A panel run: its result, or the error that stopped it (the other panels still run)."""

    result: dict[str, Any] | None = None
    warnings: list[str] | None = None
    took_ms: float | None = None
    error: PanelError | None = None


class DashboardRun(Strict):
    dashboard: str
    panels: list[PanelRun]


class CorePanels(ProjectScoped):
    last: int = Field(default=30, ge=7, le=365, description="Days of history for the daily panels.")


@operation("dashboards.core_metrics", "GET", "/api/v1/dashboards/core-metrics", right="read",
           summary="The core-metrics dashboard's definitions (DOMAIN §10–11)")  # fmt: skip
def core_metrics_panels(ctx: OpContext, req: CorePanels) -> list[Panel]:
    from userloop.query.dashboards import core_metrics
    from userloop.store.settings import money_property

    return [Panel.model_validate(p) for p in core_metrics.definitions(req.last, money_property(ctx.store))]


class RunCoreMetrics(ProjectScoped):
    last: int = Field(default=30, ge=7, le=365, description="Days of history for the daily panels.")


@operation("dashboards.core_metrics.run", "POST", "/api/v1/dashboards/core-metrics/run", right="read",
           inputs="query", exclude_none=True, summary="Run every panel of the core-metrics dashboard")  # fmt: skip
def run_core_metrics(ctx: OpContext, req: RunCoreMetrics) -> DashboardRun:
    from userloop.query.dashboards import core_metrics
    from userloop.store.settings import money_property

    money = money_property(ctx.store)
    return DashboardRun.model_validate(core_metrics.run(ctx.engine(), last_days=req.last, money=money))
