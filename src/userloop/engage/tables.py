"""The journeys runtime's state in the metadata database (SQLite embedded, PostgreSQL at scale).

- ``journeys`` and ``journey_versions``: a journey's status and its immutable versions (the definition as JSON,
  and the redirects a live edit gave for nodes it removed).
- ``journey_runs``: one row per person per entry (``occurrence`` counts entries), with where they are, until when
  they wait (``wake_at``) and for which event (``wait_event``); a run is claimed by a worker for a short lease.
- ``journey_counts``: what happened at each node, counted, for the per-node statistics.
- ``outbox``: every intended side effect, keyed by the deterministic ``(journey, version, node, person,
  occurrence)`` hash, so writing the same effect twice is a no-op and delivering it is claimed once.
- ``channels``, ``materials``, ``benefits``, ``benefit_grants``, ``subscriptions``, ``inbox_messages``,
  ``engage_settings``, ``trigger_marks``: configuration and the state of delivery rules.

Created by the Alembic revision ``0003_engage``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.store.meta import Base

_OPEN_RUN = text("status != 'exited'")
_SENT = text("status = 'sent'")
_TO_REPORT = text("status != 'pending' AND status != 'sending'")
_PROVIDER = text("provider_id IS NOT NULL")


class JourneyRow(Base):
    __tablename__ = "journeys"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft running paused finished archived
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)


class JourneyVersion(Base):
    __tablename__ = "journey_versions"

    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    redirects: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RunRow(Base):
    """A person's passage through a journey. ``status``: ``door`` (held at an entry's "unless" window),
    ``waiting`` (a timer and/or an event), ``held`` (in a control branch, kept for the goal's window), ``exited``."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        UniqueConstraint("journey_id", "person", "occurrence"),
        # partial: a run that has ended is in neither index, so a broadcast whose people leave at once writes
        # only the row and its unique key
        Index("ix_journey_runs_due", "status", "wake_at", sqlite_where=_OPEN_RUN, postgresql_where=_OPEN_RUN),
        Index("ix_journey_runs_person", "person", "status", sqlite_where=_OPEN_RUN, postgresql_where=_OPEN_RUN),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    person: Mapped[int] = mapped_column(BigInteger)
    occurrence: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime] = mapped_column(DateTime)
    entered_at: Mapped[datetime] = mapped_column(DateTime)
    path: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12))
    wake_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    wait_event: Mapped[str | None] = mapped_column(String(100), nullable=True, default=None)
    exited_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    exit_reason: Mapped[str | None] = mapped_column(String(120), nullable=True, default=None)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)


class NodeCount(Base):
    """How many people did what at each node (``entered``, ``moved``, ``waiting``, ``branch:<name>``, ``exited``),
    per journey version: counters added to once per batch, so the statistics cost nothing to read."""

    __tablename__ = "journey_counts"

    journey_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(120), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxRow(Base):
    """An intended side effect, keyed by ``(journey, version, node, person, occurrence)``: its idempotency key,
    written ``journey.version.node.person.occurrence`` where a provider carries it. The key's parts grow with the
    people of a batch, so a broadcast appends to the index instead of scattering a hash over it.

    ``status``: ``pending`` → ``sending`` (claimed) → ``sent`` | ``failed`` | ``capped`` | ``quiet_dropped`` |
    ``suppressed`` (global control) | ``unreachable`` | ``unsubscribed`` | ``done`` (grants, updates).
    ``reported`` marks a result already written back as a ``$message_*`` event."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        # partial: written when a row is sent or finished, not when it is enqueued
        Index(
            "ix_outbox_caps", "project_id", "person", "channel", "done_at", sqlite_where=_SENT, postgresql_where=_SENT
        ),
        Index("ix_outbox_report", "reported", "status", sqlite_where=_TO_REPORT, postgresql_where=_TO_REPORT),
        # provider receipts that carry only the provider's id find their message here
        Index("ix_outbox_provider", "provider_id", sqlite_where=_PROVIDER, postgresql_where=_PROVIDER),
    )

    journey_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(40), primary_key=True)
    person: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    occurrence: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str | None] = mapped_column(String(100), nullable=True, default=None)
    category: Mapped[str] = mapped_column(String(16), default="marketing")
    payload: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)
    reported: Mapped[bool] = mapped_column(Boolean, default=False)


class ChannelRow(Base):
    """A configured channel; ``config`` is JSON with its secrets encrypted (:mod:`userloop.engage.secrets`)."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    config: Mapped[str] = mapped_column(Text, default="{}")
    rate_per_second: Mapped[float | None] = mapped_column(nullable=True, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MaterialRow(Base):
    __tablename__ = "materials"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(100))
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SubscriptionRow(Base):
    """A person's choice for a subscription group (a channel kind, or a named topic): opted in or out."""

    __tablename__ = "subscriptions"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    subscribed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class InboxRow(Base):
    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_person", "project_id", "person", "created_at"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    person: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    read_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=None)


class EngageSettingsRow(Base):
    """Per-project delivery rules as JSON (:class:`userloop.engage.settings.EngageSettings`)."""

    __tablename__ = "engage_settings"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    settings: Mapped[str] = mapped_column(Text, default="{}")


class TriggerMark(Base):
    """How far the event triggers have read the project's events, in (load time, event id) order: the load time
    (``received_ms``) and, in ``seen``, the id of the last event read at that millisecond ("" for none)."""

    __tablename__ = "trigger_marks"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    received_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    seen: Mapped[str] = mapped_column(Text, default="")


class FeedbackRow(Base):
    """What came back about a message after it left: an open, a click, an unsubscribe, a provider's receipt. Written
    by the public routes and the receipt callbacks; the reporter turns each into a passive ``$message_*`` event."""

    __tablename__ = "message_feedback"
    __table_args__ = (Index("ix_message_feedback_report", "reported", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))
    person: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime)
    props: Mapped[str] = mapped_column(Text, default="{}")
    reported: Mapped[bool] = mapped_column(Boolean, default=False)


class FireRow(Base):
    """A scheduled entry that has happened (``fire``: the local date, and the zone for per-person zones), so a
    restart or a second worker never fires it twice."""

    __tablename__ = "journey_fires"

    journey_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fire: Mapped[str] = mapped_column(String(120), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
