"""The journeys runtime's tables (:mod:`userloop.engage.tables`): journeys and their versions, runs, node counts, the
outbox, channels, materials, benefits and grants, subscriptions, the in-app inbox, delivery settings and the event
triggers' read marks. Each table is created only when missing, since ``create_all`` on a new database may have made
it already.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (
    "journeys",
    "journey_versions",
    "journey_runs",
    "journey_counts",
    "outbox",
    "channels",
    "materials",
    "benefits",
    "benefit_grants",
    "subscriptions",
    "inbox_messages",
    "engage_settings",
    "trigger_marks",
    "message_feedback",
    "journey_fires",
)


_OPEN_RUN = "status != 'exited'"
_SENT = "status = 'sent'"
_TO_REPORT = "status != 'pending' AND status != 'sending'"
_PROVIDER = "provider_id IS NOT NULL"


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, for both dialects."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "inbox_messages" not in existing:
        op.create_table(
            "inbox_messages",
            sa.Column("key", sa.String(length=200), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("title", sa.String(length=300), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("read_at", sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index("ix_inbox_person", "inbox_messages", ["project_id", "person", "created_at"], unique=False)
    if "journey_counts" not in existing:
        op.create_table(
            "journey_counts",
            sa.Column("journey_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("node", sa.String(length=40), nullable=False),
            sa.Column("outcome", sa.String(length=120), nullable=False),
            sa.Column("count", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("journey_id", "version", "node", "outcome"),
        )
    if "outbox" not in existing:
        op.create_table(
            "outbox",
            sa.Column("journey_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("node", sa.String(length=40), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("occurrence", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("kind", sa.String(length=12), nullable=False),
            sa.Column("channel", sa.String(length=100), nullable=True),
            sa.Column("category", sa.String(length=16), nullable=False),
            sa.Column("payload", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("due_at", sa.DateTime(), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("claimed_by", sa.String(length=64), nullable=True),
            sa.Column("claimed_until", sa.DateTime(), nullable=True),
            sa.Column("provider_id", sa.String(length=200), nullable=True),
            sa.Column("error", sa.String(length=200), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("done_at", sa.DateTime(), nullable=True),
            sa.Column("reported", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("journey_id", "version", "node", "person", "occurrence"),
        )
        op.create_index(
            "ix_outbox_caps", "outbox", ["project_id", "person", "channel", "done_at"], unique=False, **_where(_SENT)
        )
        op.create_index("ix_outbox_due", "outbox", ["status", "due_at"], unique=False)
        op.create_index("ix_outbox_report", "outbox", ["reported", "status"], unique=False, **_where(_TO_REPORT))
        op.create_index("ix_outbox_provider", "outbox", ["provider_id"], unique=False, **_where(_PROVIDER))
    if "subscriptions" not in existing:
        op.create_table(
            "subscriptions",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("topic", sa.String(length=100), nullable=False),
            sa.Column("subscribed", sa.Boolean(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("project_id", "person", "topic"),
        )
    if "benefits" not in existing:
        op.create_table(
            "benefits",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("amount", sa.Double(), nullable=False),
            sa.Column("threshold", sa.Double(), nullable=False),
            sa.Column("valid_days", sa.Integer(), nullable=False),
            sa.Column("stock", sa.Integer(), nullable=True),
            sa.Column("granted", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
    if "channels" not in existing:
        op.create_table(
            "channels",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("provider", sa.String(length=32), nullable=False),
            sa.Column("config", sa.Text(), nullable=False),
            sa.Column("rate_per_second", sa.Double(), nullable=True),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
    if "engage_settings" not in existing:
        op.create_table(
            "engage_settings",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("settings", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("project_id"),
        )
    if "journeys" not in existing:
        op.create_table(
            "journeys",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
    if "materials" not in existing:
        op.create_table(
            "materials",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
    if "trigger_marks" not in existing:
        op.create_table(
            "trigger_marks",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("received_ms", sa.BigInteger(), nullable=False),
            sa.Column("seen", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("project_id"),
        )
    if "benefit_grants" not in existing:
        op.create_table(
            "benefit_grants",
            sa.Column("key", sa.String(length=32), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("benefit_id", sa.Integer(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("granted_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["benefit_id"],
                ["benefits.id"],
            ),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index("ix_benefit_grants_person", "benefit_grants", ["project_id", "person"], unique=False)
    if "journey_runs" not in existing:
        op.create_table(
            "journey_runs",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("journey_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("occurrence", sa.Integer(), nullable=False),
            sa.Column("node", sa.String(length=40), nullable=False),
            sa.Column("since", sa.DateTime(), nullable=False),
            sa.Column("entered_at", sa.DateTime(), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("wake_at", sa.DateTime(), nullable=True),
            sa.Column("wait_event", sa.String(length=100), nullable=True),
            sa.Column("exited_at", sa.DateTime(), nullable=True),
            sa.Column("exit_reason", sa.String(length=120), nullable=True),
            sa.Column("converted_at", sa.DateTime(), nullable=True),
            sa.Column("claimed_by", sa.String(length=64), nullable=True),
            sa.Column("claimed_until", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(
                ["journey_id"],
                ["journeys.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("journey_id", "person", "occurrence"),
        )
        op.create_index("ix_journey_runs_due", "journey_runs", ["status", "wake_at"], unique=False, **_where(_OPEN_RUN))
        op.create_index(
            "ix_journey_runs_person", "journey_runs", ["person", "status"], unique=False, **_where(_OPEN_RUN)
        )
    if "journey_versions" not in existing:
        op.create_table(
            "journey_versions",
            sa.Column("journey_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            sa.Column("redirects", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["journey_id"],
                ["journeys.id"],
            ),
            sa.PrimaryKeyConstraint("journey_id", "version"),
        )

    if "message_feedback" not in existing:
        op.create_table(
            "message_feedback",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("key", sa.String(length=200), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("event", sa.String(length=40), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("props", sa.Text(), nullable=False),
            sa.Column("reported", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_message_feedback_report", "message_feedback", ["reported", "id"], unique=False)
    if "journey_fires" not in existing:
        op.create_table(
            "journey_fires",
            sa.Column("journey_id", sa.Integer(), nullable=False),
            sa.Column("fire", sa.String(length=120), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("journey_id", "fire"),
        )


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for table in reversed(_TABLES):
        if table in existing:
            op.drop_table(table)
