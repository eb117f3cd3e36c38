"""Users' dashboards: named grids of a project's saved insights, in the metadata DB
(the table: :class:`userloop.store.tables.Dashboard`).

A layout is a list of tiles ``{"insight_id", "x", "y", "w", "h"}`` on a 12-column grid; its shape is checked by the
operation's typed request, and here that every insight exists in the dashboard's project. An insight that a
dashboard holds cannot be deleted (``insight_in_use`` names the dashboards): a tile never points at nothing, and the
user decides which dashboards lose it.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.store.meta import MetaStore
from userloop.store.tables import Dashboard, Insight


def listing(meta: MetaStore, project_id: int) -> list[Dashboard]:
    query = select(Dashboard).where(Dashboard.project_id == project_id).order_by(Dashboard.id)
    with meta.session() as s:
        return list(s.scalars(query))


def get(meta: MetaStore, project_id: int, dashboard_id: int) -> Dashboard:
    with meta.session() as s:
        row = s.get(Dashboard, dashboard_id)
    if row is None or row.project_id != project_id:
        raise NotFoundError(f"no dashboard {dashboard_id} in this project", field="dashboard_id")
    return row


def create(
    meta: MetaStore, project_id: int, name: str, *, description: str, layout: list[dict[str, Any]], created_by: str
) -> Dashboard:
    _check_insights(meta, project_id, layout)
    row = Dashboard(project_id=project_id, name=name, description=description, layout=_layout(layout),
                    created_by=created_by)  # fmt: skip
    _save(meta, row, name)
    return row


def update(
    meta: MetaStore,
    project_id: int,
    dashboard_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    layout: list[dict[str, Any]] | None = None,
) -> Dashboard:
    row = get(meta, project_id, dashboard_id)
    if layout is not None:
        _check_insights(meta, project_id, layout)
        row.layout = _layout(layout)
    if name is not None:
        row.name = name
    if description is not None:
        row.description = description
    row.updated_at = utcnow()
    _save(meta, row, row.name)
    return row


def delete(meta: MetaStore, project_id: int, dashboard_id: int) -> None:
    row = get(meta, project_id, dashboard_id)
    with meta.session.begin() as s:
        s.delete(s.merge(row))


def holding(meta: MetaStore, project_id: int, insight_id: int) -> list[str]:
    """The names of the project's dashboards that show insight ``insight_id``."""
    return [d.name for d in listing(meta, project_id) if any(t["insight_id"] == insight_id for t in d.tiles())]


def insights_of(meta: MetaStore, project_id: int, ids: set[int]) -> dict[int, Insight]:
    """The project's insights among ``ids``, by id."""
    query = select(Insight).where(Insight.project_id == project_id, Insight.id.in_(sorted(ids)))
    with meta.session() as s:
        return {row.id: row for row in s.scalars(query)}


def _check_insights(meta: MetaStore, project_id: int, layout: list[dict[str, Any]]) -> None:
    found = insights_of(meta, project_id, {t["insight_id"] for t in layout})
    for i, tile in enumerate(layout):
        if tile["insight_id"] not in found:
            raise ValidationError(f"tile {i}: no insight {tile['insight_id']} in this project",
                                  field=f"layout.{i}.insight_id")  # fmt: skip


def _layout(layout: list[dict[str, Any]]) -> str:
    keys = ("insight_id", "x", "y", "w", "h")
    return orjson.dumps([{k: tile[k] for k in keys} for tile in layout]).decode()


def _save(meta: MetaStore, row: Dashboard, name: str) -> None:
    try:
        with meta.session.begin() as s:
            s.add(s.merge(row) if row.id is not None else row)
    except IntegrityError as exc:
        raise UserloopError(f"a dashboard named {name!r} exists already in this project", code="dashboard_exists",
                            field="name") from exc  # fmt: skip
