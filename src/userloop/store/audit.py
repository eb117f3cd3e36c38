"""The audit log's table in the metadata database: one row per successful change, who made it, when, and the thing
before and after (:mod:`userloop.ops.runner` writes it, ``audit.list`` reads it).

The log is append-only: nothing in userloop updates or deletes a row. Secrets never reach it: the operation layer
redacts them before :func:`record` is called (:func:`redact`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import JSON, BigInteger, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base, MetaStore

#: A field whose name matches this holds a secret: its value is replaced by :data:`REDACTED` in the log.
SECRET_NAME = re.compile(r"pass(word|phrase)?|secret|token|api_?key|private_?key|write_?key|credential|authoriz",
                         re.IGNORECASE)  # fmt: skip
REDACTED = "[redacted]"
ActorKind = Literal["account", "token", "owner"]


class AuditEntry(Base):
    """One change: the actor (an account, an API token, or the workspace's owner on its own files), the operation,
    its path parameters (``target``), the request, the thing before and after, the client's address."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(nullable=True)
    actor_name: Mapped[str] = mapped_column(String(200), index=True)
    project_id: Mapped[int | None] = mapped_column(nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    target: Mapped[Any] = mapped_column(JSON)
    request: Mapped[Any] = mapped_column(JSON)
    before: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    after: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


@dataclass(frozen=True)
class Actor:
    """Who made a change: ``kind`` is 'account', 'token' or 'owner' (the CLI on the workspace's own files)."""

    kind: ActorKind
    id: int | None
    name: str


@dataclass(frozen=True)
class AuditFilter:
    """What :func:`page` selects: an actor's name, an action prefix (``segments.``), a project, a time range
    (UTC, ``since`` included, ``until`` excluded), rows older than ``before_id`` (keyset paging), at most ``limit``."""

    actor: str | None = None
    action: str | None = None
    project_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


def redact(value: Any) -> Any:
    """``value`` (JSON data) with the value of every field named like a secret replaced by ``"[redacted]"``."""
    if isinstance(value, dict):
        return {k: REDACTED if _secret(k, v) else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _secret(name: object, value: object) -> bool:
    return isinstance(name, str) and value is not None and SECRET_NAME.search(name) is not None


def record(
    meta: MetaStore,
    actor: Actor,
    action: str,
    *,
    project_id: int | None,
    target: dict[str, Any],
    request: Any,
    before: Any,
    after: Any,
    address: str | None,
) -> AuditEntry:
    """Append one change to the log (the caller has redacted ``request``, ``before`` and ``after``)."""
    entry = AuditEntry(
        at=utcnow(), actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name[:200], project_id=project_id,
        action=action, target=_json(target), request=_json(request), before=_json(before), after=_json(after),
        address=address,
    )  # fmt: skip
    with meta.session.begin() as s:
        s.add(entry)
    return entry


def _json(value: Any) -> Any:
    """``value`` as plain JSON data (a round trip through orjson: dates become ISO strings)."""
    return None if value is None else orjson.loads(orjson.dumps(value))


def page(meta: MetaStore, where: AuditFilter) -> list[AuditEntry]:
    """The entries ``where`` selects, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(where.limit)
    if where.actor is not None:
        query = query.where(AuditEntry.actor_name == where.actor)
    if where.action:
        query = query.where(AuditEntry.action.startswith(where.action, autoescape=True))
    if where.project_id is not None:
        query = query.where(AuditEntry.project_id == where.project_id)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.at < where.until)
    if where.before_id is not None:
        query = query.where(AuditEntry.id < where.before_id)
    with meta.session() as s:
        return list(s.scalars(query))
