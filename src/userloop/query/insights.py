"""Saved analyses ("insights"): a named definition per project, grouped into dashboards, in the metadata DB
(the table: :class:`userloop.store.tables.Insight`).

A definition is validated (:func:`parse_definition`) before it is stored, so a saved insight always runs;
a property it names may later disappear, which the run reports as a clear error.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.query.kinds import parse_definition
from userloop.store.meta import MetaStore
from userloop.store.tables import Insight


def _check(name: str, definition: dict[str, Any]) -> str:
    if not name.strip() or len(name) > 200:
        raise ValidationError("an insight needs a name of 1 to 200 characters")
    analysis = parse_definition(definition)
    return analysis.kind


def save(
    meta: MetaStore,
    project_id: int,
    name: str,
    definition: dict[str, Any],
    *,
    description: str = "",
    dashboard: str | None = None,
) -> Insight:
    kind = _check(name, definition)
    with meta.session.begin() as s:
        row = Insight(
            project_id=project_id,
            name=name,
            description=description,
            dashboard=dashboard,
            kind=kind,
            definition=orjson.dumps(definition).decode(),
        )
        s.add(row)
    return row


def get(meta: MetaStore, project_id: int, insight_id: int) -> Insight:
    with meta.session() as s:
        row = s.get(Insight, insight_id)
    if row is None or row.project_id != project_id:
        raise NotFoundError(f"no insight {insight_id} in this project")
    return row


def listing(meta: MetaStore, project_id: int, *, dashboard: str | None = None) -> list[Insight]:
    query = select(Insight).where(Insight.project_id == project_id).order_by(Insight.id)
    if dashboard is not None:
        query = query.where(Insight.dashboard == dashboard)
    with meta.session() as s:
        return list(s.scalars(query))


def update(
    meta: MetaStore,
    project_id: int,
    insight_id: int,
    *,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
    description: str | None = None,
    dashboard: str | None = None,
) -> Insight:
    current = get(meta, project_id, insight_id)
    new_name = current.name if name is None else name
    new_def = orjson.loads(current.definition) if definition is None else definition
    kind = _check(new_name, new_def)
    with meta.session.begin() as s:
        row = s.get(Insight, insight_id)
        assert row is not None
        row.name = new_name
        row.kind = kind
        row.definition = orjson.dumps(new_def).decode()
        if description is not None:
            row.description = description
        if dashboard is not None:
            row.dashboard = dashboard or None
        row.updated_at = utcnow()
    return row


def delete(meta: MetaStore, project_id: int, insight_id: int) -> None:
    """Delete an insight; refused (``insight_in_use``, naming them) while dashboards show it."""
    from userloop.query.dashboards.saved import holding

    get(meta, project_id, insight_id)
    boards = holding(meta, project_id, insight_id)
    if boards:
        names = ", ".join(repr(b) for b in boards)
        raise UserloopError(f"insight {insight_id} is on dashboards {names}; take it off them first",
                            code="insight_in_use")  # fmt: skip
    with meta.session.begin() as s:
        row = s.get(Insight, insight_id)
        s.delete(row)
