"""The audit log (:mod:`userloop.store.audit`) and users' dashboards (:class:`userloop.store.tables.Dashboard`).
Each table is created only when missing, since ``create_all`` on a new database may have made it already.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("audit_log", "dashboards")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "audit_log" not in existing:
        op.create_table(
            "audit_log",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("actor_kind", sa.String(length=16), nullable=False),
            sa.Column("actor_id", sa.Integer(), nullable=True),
            sa.Column("actor_name", sa.String(length=200), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=True),
            sa.Column("action", sa.String(length=80), nullable=False),
            sa.Column("target", sa.JSON(), nullable=False),
            sa.Column("request", sa.JSON(), nullable=False),
            sa.Column("before", sa.JSON(), nullable=True),
            sa.Column("after", sa.JSON(), nullable=True),
            sa.Column("address", sa.String(length=64), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        for column in ("at", "actor_name", "project_id", "action"):
            op.create_index(op.f(f"ix_audit_log_{column}"), "audit_log", [column], unique=False)
    if "dashboards" not in existing:
        op.create_table(
            "dashboards",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("description", sa.Text(), nullable=False),
            sa.Column("layout", sa.Text(), nullable=False),
            sa.Column("created_by", sa.String(length=200), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
        op.create_index(op.f("ix_dashboards_project_id"), "dashboards", ["project_id"], unique=False)


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in reversed(_TABLES):
        if name in existing:
            op.drop_table(name)
