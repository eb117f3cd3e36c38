"""The definitions' tables in the metadata database: tags, segments, saved analyses (insights) and dashboards.

They are declared here, on the metadata DB's declarative base, next to projects and keys, so the whole relational
layout lives in ``store/`` and the Alembic revisions of :mod:`userloop.store.migrations` are checked against one
set of models. The domains that own the meaning (:mod:`userloop.profile.tags`, :mod:`userloop.profile.segments`,
:mod:`userloop.query.insights`) import these rows; what needs a domain's parser (a tag's parsed definition) is
a function there, since ``store/`` never imports a layer above it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base


class TagRow(Base):
    """A tag's stored definition (JSON, canonical form); its values live in the history table :attr:`table`."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    definition: Mapped[str] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def table(self) -> str:
        """The history table in the project's schema."""
        return f"tag_{self.name}"


class Segment(Base):
    """A saved audience; its membership lives in the history table :attr:`table`."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    #: The rule (kind ``rule``) or how the people were chosen (``static``: the source; ``lookalike``: seed, N).
    definition: Mapped[str] = mapped_column(Text, default="{}")
    #: ``daily`` (refreshed by the scheduler) or ``manual``.
    refresh: Mapped[str] = mapped_column(String(16), default="daily")
    size: Mapped[int | None] = mapped_column(nullable=True, default=None)
    refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def table(self) -> str:
        """The membership history table in the project's schema."""
        return f"segment_{self.id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "definition": orjson.loads(self.definition),
            "refresh": self.refresh,
            "size": self.size,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class Insight(Base):
    """A saved analysis: a validated definition, optionally on a dashboard."""

    __tablename__ = "insights"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    dashboard: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "dashboard": self.dashboard,
            "kind": self.kind,
            "definition": orjson.loads(self.definition),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class Dashboard(Base):
    """A user's dashboard: a grid of saved insights (:mod:`userloop.query.dashboards.saved`); ``layout`` is the
    JSON list of tiles ``{insight_id, x, y, w, h}`` on a 12-column grid."""

    __tablename__ = "dashboards"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    layout: Mapped[str] = mapped_column(Text, default="[]")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def tiles(self) -> list[dict[str, Any]]:
        tiles: list[dict[str, Any]] = orjson.loads(self.layout)
        return tiles
