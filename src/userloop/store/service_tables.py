"""The service's tables in the metadata database: collector settings per project and the job run history.

They are declared on the metadata DB's own declarative base, so ``MetaStore.create_all`` (or
:func:`create_tables`) creates them next to projects and keys.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.store.meta import Base, MetaStore

#: An exact browser origin: scheme://host[:port], lower case, no path. ``*`` is allowed only as the lone entry.
_ORIGIN = re.compile(
    r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)(:[0-9]{1,5})?$"
)


class CollectorSettings(Base):
    """Per-project collector settings: browser origins allowed (CORS) and a rate limit override."""

    __tablename__ = "collector_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    cors_origins: Mapped[str] = mapped_column(Text, default="")  # space-separated; a lone "*" allows any
    rate_per_second: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
    burst: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)  # records; default: 2 s of the rate

    @property
    def origins(self) -> frozenset[str]:
        """The allowed origins, read defensively: entries saved before origins were checked are dropped when
        invalid, and ``*`` counts only when it is the one entry."""
        return parse_origins(self.cors_origins)


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
    """Create the service tables if missing (workspaces made before the service existed lack them), and bring
    older ones up to date (:func:`userloop.store.meta.upgrade_meta_schema`)."""
    Base.metadata.create_all(meta.engine, tables=[CollectorSettings.__table__, JobRun.__table__])  # type: ignore[list-item]
    meta.ensure_schema()


def collector_settings(meta: MetaStore, project_id: int) -> CollectorSettings:
    meta.ensure_schema()
    with meta.session() as s:
        row = s.get(CollectorSettings, project_id)
    return row or CollectorSettings(project_id=project_id, cors_origins="", rate_per_second=None, burst=None)


def save_collector_settings(
    meta: MetaStore,
    project_id: int,
    *,
    cors_origins: list[str] | None,
    rate_per_second: float | None,
    burst: float | None = None,
) -> CollectorSettings:
    """Save a project's collector settings; origins are checked first (:func:`check_origins`)."""
    checked = check_origins(cors_origins) if cors_origins is not None else None
    meta.ensure_schema()
    with meta.session.begin() as s:
        row = s.get(CollectorSettings, project_id) or CollectorSettings(project_id=project_id, cors_origins="")
        if checked is not None:
            row.cors_origins = " ".join(checked)
        row.rate_per_second = rate_per_second
        row.burst = burst
        s.add(row)
    return row


def check_origins(entries: list[str]) -> list[str]:
    """The origins as they will be saved (lower case), or a ValidationError naming the first bad entry.

    An entry is an exact origin, ``scheme://host[:port]`` (http or https, no path, no space, no wildcard);
    ``*`` (any origin) is accepted only as the one entry, so that it is never the side effect of a typo.
    """
    if entries == ["*"]:
        return ["*"]
    out: list[str] = []
    for entry in entries:
        origin = entry.lower()
        if entry == "*":
            raise ValidationError("'*' (any origin) must be the only entry; list exact origins otherwise")
        if not _ORIGIN.match(origin) or not _port_ok(origin):
            raise ValidationError(
                f"{entry!r} is not an origin: write scheme://host[:port], e.g. https://shop.example.com "
                "(http or https; no path, space or wildcard)"
            )
        if origin not in out:
            out.append(origin)
    return out


def parse_origins(stored: str | None) -> frozenset[str]:
    """Origins from their stored form, keeping only valid ones (see :attr:`CollectorSettings.origins`)."""
    entries = (stored or "").split()
    if entries == ["*"]:
        return frozenset({"*"})
    return frozenset(e for e in entries if _ORIGIN.match(e) and _port_ok(e))


def _port_ok(origin: str) -> bool:
    head, _, port = origin.rpartition(":")
    return not (port.isdigit() and "//" in head) or 0 < int(port) < 65536
