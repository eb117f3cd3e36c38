"""Users' dashboards (看板) as operations: grids of a project's saved insights, created and arranged by the user, and
run tile by tile from the analysis cache.

Reading and running need ``read``; creating, arranging and deleting need ``analyse`` (an analyst builds
dashboards). A layout is a list of tiles on a 12-column grid: integers, ``w`` and ``h`` from 1 to 12, ``x + w`` at
most 12, each naming an insight of the same project. An insight a dashboard shows cannot be deleted
(``insight_in_use``, see :mod:`userloop.query.dashboards.saved`).

The ready-made core-metrics dashboard (``/api/v1/dashboards/core-metrics``) is a fixed list of definitions in
:mod:`userloop.ops.query`; its routes are registered first, so ``core-metrics`` is never read as a dashboard id.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, ValidationInfo, field_validator

from userloop.core.errors import UserloopError
from userloop.ops.base import OpContext, ProjectScoped, RowId, Strict, operation

if TYPE_CHECKING:
    from userloop.store.tables import Dashboard

GridInt = Annotated[int, Field(strict=True)]


class Tile(Strict):
    """A saved insight's place on the 12-column grid (top-left corner ``x``, ``y``; width ``w``, height ``h``)."""

    insight_id: RowId = Field(strict=True)
    x: GridInt = Field(ge=0, le=11)
    y: GridInt = Field(ge=0, le=10_000)
    w: GridInt = Field(ge=1, le=12)
    h: GridInt = Field(ge=1, le=12)

    @field_validator("w")
    @classmethod
    def _inside_the_grid(cls, w: int, info: ValidationInfo) -> int:
        x = info.data.get("x")
        if isinstance(x, int) and x + w > 12:
            raise ValueError(f"x + w must be at most 12 (the grid's width), not {x + w}")
        return w


Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S", description="1 to 100 characters.")]
Layout = Annotated[list[Tile], Field(max_length=100, description="The tiles, at most 100.")]


class SavedDashboard(Strict):
    id: int
    name: str
    description: str
    layout: list[Tile]
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Dashboard) -> SavedDashboard:
        return cls.model_validate({"id": row.id, "name": row.name, "description": row.description,
                                   "layout": row.tiles(), "created_by": row.created_by,
                                   "created_at": row.created_at, "updated_at": row.updated_at})  # fmt: skip


class ShownTile(Tile):
    """A tile with its insight's name and kind (funnel, trends, …)."""

    insight_name: str
    insight_kind: str


class ShownDashboard(SavedDashboard):
    layout: list[ShownTile]  # type: ignore[assignment]  # the tiles with their insights' names


class ListDashboards(ProjectScoped):
    pass


@operation("dashboards.list", "GET", "/api/v1/dashboards", right="read", summary="A project's dashboards")
def list_dashboards(ctx: OpContext, req: ListDashboards) -> list[SavedDashboard]:
    from userloop.query.dashboards import saved

    return [SavedDashboard.of(row) for row in saved.listing(ctx.ws.meta, ctx.info.id)]


class DashboardRef(ProjectScoped):
    dashboard_id: RowId


@operation("dashboards.get", "GET", "/api/v1/dashboards/{dashboard_id}", right="read",
           summary="A dashboard with each tile's insight name and kind")  # fmt: skip
def get_dashboard(ctx: OpContext, req: DashboardRef) -> ShownDashboard:
    from userloop.query.dashboards import saved

    row = saved.get(ctx.ws.meta, ctx.info.id, req.dashboard_id)
    tiles = row.tiles()
    insights = saved.insights_of(ctx.ws.meta, ctx.info.id, {t["insight_id"] for t in tiles})
    shown = [{**t, "insight_name": insights[t["insight_id"]].name, "insight_kind": insights[t["insight_id"]].kind}
             for t in tiles]  # fmt: skip
    return ShownDashboard.model_validate({**SavedDashboard.of(row).model_dump(exclude={"layout"}), "layout": shown})


class CreateDashboard(ProjectScoped):
    name: Name
    description: str = Field(default="", max_length=2000)
    layout: Layout = Field(default_factory=list)


@operation("dashboards.create", "POST", "/api/v1/dashboards", right="analyse", status=201,
           summary="Create a dashboard of saved insights")  # fmt: skip
def create_dashboard(ctx: OpContext, req: CreateDashboard) -> SavedDashboard:
    from userloop.ops.runner import actor
    from userloop.query.dashboards import saved

    row = saved.create(ctx.ws.meta, ctx.info.id, req.name, description=req.description,
                       layout=_tiles(req.layout), created_by=actor(ctx).name)  # fmt: skip
    return SavedDashboard.of(row)


class UpdateDashboard(ProjectScoped):
    dashboard_id: RowId
    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    layout: Layout | None = Field(default=None, description="The whole new layout (it replaces the old one).")


@operation("dashboards.update", "PATCH", "/api/v1/dashboards/{dashboard_id}", right="analyse",
           summary="Rename, describe or arrange a dashboard (the fields given change)")  # fmt: skip
def update_dashboard(ctx: OpContext, req: UpdateDashboard) -> SavedDashboard:
    from userloop.query.dashboards import saved

    layout = None if req.layout is None else _tiles(req.layout)
    row = saved.update(ctx.ws.meta, ctx.info.id, req.dashboard_id, name=req.name, description=req.description,
                       layout=layout)  # fmt: skip
    return SavedDashboard.of(row)


class DeletedDashboard(Strict):
    deleted: int


@operation("dashboards.delete", "DELETE", "/api/v1/dashboards/{dashboard_id}", right="analyse",
           summary="Delete a dashboard (its insights stay)")  # fmt: skip
def delete_dashboard(ctx: OpContext, req: DashboardRef) -> DeletedDashboard:
    from userloop.query.dashboards import saved

    saved.delete(ctx.ws.meta, ctx.info.id, req.dashboard_id)
    return DeletedDashboard(deleted=req.dashboard_id)


class RunDashboard(ProjectScoped):
    dashboard_id: RowId
    timeout: float = Field(default=60.0, gt=0, le=600, description="Seconds each tile's analysis may take.")


class TileError(Strict):
    code: str
    message: str


class TileRun(Strict):
    """One tile's result (as ``insights.run`` gives it, from the cache when fresh), or the error that stopped it
    (the other tiles still run)."""

    tile: int = Field(description="The tile's position in the layout.")
    insight_id: int
    insight_name: str
    kind: str
    result: dict[str, Any] | None = None
    warnings: list[str] | None = None
    took_ms: float | None = None
    cached: bool | None = None
    error: TileError | None = None


class DashboardResults(Strict):
    dashboard_id: int
    name: str
    tiles: list[TileRun]


@operation("dashboards.run", "POST", "/api/v1/dashboards/{dashboard_id}/run", right="read", inputs="query",
           exclude_none=True, summary="Run every tile's insight (from the analysis cache when fresh)")  # fmt: skip
def run_dashboard(ctx: OpContext, req: RunDashboard) -> DashboardResults:
    board = get_dashboard(ctx, DashboardRef(project=req.project, dashboard_id=req.dashboard_id))
    tiles = [_run_tile(ctx, req, i, tile) for i, tile in enumerate(board.layout)]
    return DashboardResults(dashboard_id=board.id, name=board.name, tiles=tiles)


def _run_tile(ctx: OpContext, req: RunDashboard, index: int, tile: ShownTile) -> TileRun:
    from userloop.ops.query import RunInsight, run_insight

    done = TileRun(tile=index, insight_id=tile.insight_id, insight_name=tile.insight_name, kind=tile.insight_kind)
    try:
        run = run_insight(ctx, RunInsight(project=req.project, insight_id=tile.insight_id, timeout=req.timeout))
    except UserloopError as exc:
        return done.model_copy(update={"error": TileError(code=exc.code, message=exc.message)})
    return done.model_copy(update={"result": run.result, "warnings": run.warnings, "took_ms": run.took_ms,
                                   "cached": run.cached})  # fmt: skip


def _tiles(layout: list[Tile]) -> list[dict[str, Any]]:
    return [tile.model_dump() for tile in layout]
