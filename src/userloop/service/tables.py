"""The service's tables in the metadata database: collector settings per project and the job run history.

They are declared on the metadata DB's own declarative base, so ``MetaStore.create_all`` (or
:func:`create_tables`) creates them next to projects and keys.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base, MetaStore


class CollectorSettings(Base):
    """Per-project collector settings: browser origins allowed (CORS) and a rate limit override."""

    __tablename__ = "collector_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    cors_origins: Mapped[str] = mapped_column(Text, default="")  # space-separated; "*" allows any
    rate_per_second: Mapped[float | None] = mapped_column(nullable=True, default=None)


class JobRun(Base):
    """One run of a scheduled job for one slot; (job, project, slot) is unique, so a slot never runs twice."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "project", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    project: Mapped[str] = mapped_column(String(40))
    slot: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running | succeeded | failed
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    next_try_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    error: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    result: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)


def create_tables(meta: MetaStore) -> None:
    """Create the service tables if missing (workspaces made before the service existed lack them)."""
    Base.metadata.create_all(meta.engine, tables=[CollectorSettings.__table__, JobRun.__table__])  # type: ignore[list-item]


def collector_settings(meta: MetaStore, project_id: int) -> CollectorSettings:
    with meta.session() as s:
        row = s.get(CollectorSettings, project_id)
    return row or CollectorSettings(project_id=project_id, cors_origins="", rate_per_second=None)


def save_collector_settings(
    meta: MetaStore, project_id: int, *, cors_origins: list[str] | None, rate_per_second: float | None
) -> CollectorSettings:
    with meta.session.begin() as s:
        row = s.get(CollectorSettings, project_id) or CollectorSettings(project_id=project_id, cors_origins="")
        if cors_origins is not None:
            row.cors_origins = " ".join(cors_origins)
        row.rate_per_second = rate_per_second
        s.add(row)
    return row
