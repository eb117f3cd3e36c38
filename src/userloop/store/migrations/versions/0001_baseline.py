"""The metadata schema as userloop made it before migrations existed (commit aa9056c, 2026-12-06).

Databases made by that code already hold some or all of these tables (tags, segments, insights, collector
settings and job runs were created on first use), so each table is created only when it is missing.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    ]


def _tables() -> list[tuple[str, list[Any]]]:
    return [
        ("projects", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.String(40), nullable=False, unique=True),
            sa.Column("timezone", sa.String(64), nullable=False),
            sa.Column("max_future_seconds", sa.Integer(), nullable=False),
            sa.Column("max_past_days", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
        ]),
        ("api_keys", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("prefix", sa.String(16), nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("revoked_at", sa.DateTime(), nullable=True),
            sa.UniqueConstraint("digest"),
        ]),
        ("key_grants", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("key_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=False, index=True),
            sa.Column("grant", sa.String(32), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint("key_id", "grant"),
        ]),
        ("collector_settings", [
            sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), primary_key=True),
            sa.Column("cors_origins", sa.Text(), nullable=False),
            sa.Column("rate_per_second", sa.Float(), nullable=True),
        ]),
        ("job_runs", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("job", sa.String(100), nullable=False),
            sa.Column("project", sa.String(40), nullable=False),
            sa.Column("slot", sa.String(64), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.Column("next_try_at", sa.DateTime(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("result", sa.Text(), nullable=True),
            sa.UniqueConstraint("job", "project", "slot"),
        ]),
        ("tags", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False, index=True),
            sa.Column("name", sa.String(60), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("type", sa.String(16), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            sa.Column("builtin", sa.Boolean(), nullable=False),
            sa.Column("enabled", sa.Boolean(), nullable=False),
            *_stamps(),
            sa.UniqueConstraint("project_id", "name"),
        ]),
        ("segments", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False, index=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            sa.Column("refresh", sa.String(16), nullable=False),
            sa.Column("size", sa.Integer(), nullable=True),
            sa.Column("refreshed_at", sa.DateTime(), nullable=True),
            *_stamps(),
        ]),
        ("insights", [
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False, index=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("dashboard", sa.String(100), nullable=True, index=True),
            sa.Column("kind", sa.String(40), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            *_stamps(),
        ]),
    ]  # fmt: skip


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, items in _tables():
        if name not in existing:
            op.create_table(name, *items)


def downgrade() -> None:
    for name, _items in reversed(_tables()):
        op.drop_table(name)
