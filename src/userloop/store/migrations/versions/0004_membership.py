"""The member system's tables (:mod:`userloop.membership`): programmes and their versions, members, growth entries,
level history, the points ledger (entries, lots, allocations, wallet balances), check-ins, tasks and rewards, the
membership events' marks and the membership pass's state; and ``members.left_at``. Each table is created only when
missing, since ``create_all`` on a new database may have made it already.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = (
    "growth_entries",
    "level_history",
    "member_level_grants",
    "member_pass_done",
    "member_pass_state",
    "member_task_events",
    "member_check_ins",
    "member_report_cursors",
    "member_report_marks",
    "member_rewards",
    "member_task_marks",
    "member_task_progress",
    "points_balances",
    "points_entries",
    "programmes",
    "members",
    "points_lots",
    "programme_versions",
    "points_allocations",
)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "growth_entries" not in existing:
        op.create_table(
            "growth_entries",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("programme_id", sa.Integer(), nullable=False),
            sa.Column("member_id", sa.BigInteger(), nullable=False),
            sa.Column("key", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=40), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("programme_id", "key"),
        )
        op.create_index("ix_growth_entries_member", "growth_entries", ["member_id", "at"], unique=False)
    if "level_history" not in existing:
        op.create_table(
            "level_history",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("programme_id", sa.Integer(), nullable=False),
            sa.Column("member_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("from_level", sa.Integer(), nullable=False),
            sa.Column("to_level", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("reason", sa.String(length=16), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_level_history_member", "level_history", ["member_id", "at"], unique=False)
        op.create_index(op.f("ix_level_history_programme_id"), "level_history", ["programme_id"], unique=False)
    if "member_level_grants" not in existing:
        op.create_table(
            "member_level_grants",
            sa.Column("programme_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("change_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("done_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("programme_id", "change_id"),
        )
    if "member_pass_done" not in existing:
        op.create_table(
            "member_pass_done",
            sa.Column("programme_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("ref", sa.String(length=120), nullable=False),
            sa.Column("done_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("programme_id", "kind", "ref"),
        )
    if "member_pass_state" not in existing:
        op.create_table(
            "member_pass_state",
            sa.Column("programme_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("evaluated_day", sa.Date(), nullable=True),
            sa.Column("levels_low", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("programme_id"),
        )
    if "member_task_events" not in existing:
        op.create_table(
            "member_task_events",
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("task", sa.String(length=40), nullable=False),
            sa.Column("event_id", sa.String(length=200), nullable=False),
            sa.Column("counted_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("programme_id", "task", "event_id"),
        )
        op.create_index("ix_member_task_events_counted", "member_task_events", ["counted_at"], unique=False)
    if "member_check_ins" not in existing:
        op.create_table(
            "member_check_ins",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("streak", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "programme_id", "person", "day", name="uq_member_check_ins_day"),
        )
        op.create_index("ix_member_check_ins_project", "member_check_ins", ["project_id", "id"], unique=False)
    if "member_report_cursors" not in existing:
        op.create_table(
            "member_report_cursors",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("source", sa.String(length=24), nullable=False),
            sa.Column("low", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("project_id", "source"),
        )
    if "member_report_marks" not in existing:
        op.create_table(
            "member_report_marks",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("source", sa.String(length=24), nullable=False),
            sa.Column("row_id", sa.BigInteger(), nullable=False),
            sa.Column("marked_at", sa.DateTime(), nullable=False),
            sa.Column("until", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("project_id", "source", "row_id"),
        )
    if "member_rewards" not in existing:
        op.create_table(
            "member_rewards",
            sa.Column("key", sa.String(length=100), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False),
            sa.Column("wallet", sa.String(length=40), nullable=False),
            sa.Column("points", sa.BigInteger(), nullable=False),
            sa.Column("growth", sa.BigInteger(), nullable=False),
            sa.Column("benefits", sa.Text(), nullable=False),
            sa.Column("reason", sa.String(length=200), nullable=False),
            sa.Column("earned_at", sa.DateTime(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("settled_at", sa.DateTime(), nullable=True),
            sa.Column("error", sa.String(length=200), nullable=True),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index(
            "ix_member_rewards_member", "member_rewards", ["project_id", "programme_id", "person"], unique=False
        )
        op.create_index(
            "ix_member_rewards_unsettled",
            "member_rewards",
            ["project_id", "created_at"],
            unique=False,
            sqlite_where=sa.text("settled_at IS NULL"),
            postgresql_where=sa.text("settled_at IS NULL"),
        )
    if "member_task_marks" not in existing:
        op.create_table(
            "member_task_marks",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("received_ms", sa.BigInteger(), nullable=False),
            sa.Column("after_id", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("project_id", "programme_id"),
        )
    if "member_task_progress" not in existing:
        op.create_table(
            "member_task_progress",
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("task", sa.String(length=40), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("period", sa.Date(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("count", sa.BigInteger(), nullable=False),
            sa.Column("completed", sa.Integer(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("programme_id", "task", "person", "period"),
        )
    if "points_balances" not in existing:
        op.create_table(
            "points_balances",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("wallet", sa.String(length=40), nullable=False),
            sa.Column("spendable", sa.BigInteger(), nullable=False),
            sa.Column("pending", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.CheckConstraint("pending >= 0", name="ck_points_balances_pending"),
            sa.CheckConstraint("spendable >= 0", name="ck_points_balances_spendable"),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "programme_id", "person", "wallet", name="uq_points_balances_member"),
        )
    if "points_entries" not in existing:
        op.create_table(
            "points_entries",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("wallet", sa.String(length=40), nullable=False),
            sa.Column("kind", sa.String(length=8), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("request_id", sa.String(length=100), nullable=False),
            sa.Column("fingerprint", sa.String(length=64), nullable=False),
            sa.Column("transfer_id", sa.BigInteger(), nullable=True),
            sa.Column("reason", sa.String(length=200), nullable=True),
            sa.Column("ref", sa.String(length=100), nullable=True),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("occurred_at", sa.DateTime(), nullable=False),
            sa.Column("spendable_after", sa.BigInteger(), nullable=False),
            sa.Column("pending_after", sa.BigInteger(), nullable=False),
            sa.Column("shortfall", sa.BigInteger(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.CheckConstraint(
                "(kind = 'earn' AND amount > 0) OR (kind IN ('spend', 'expire') AND amount < 0) "
                "OR kind IN ('reverse', 'adjust')",
                name="ck_points_entries_sign",
            ),
            sa.CheckConstraint(
                "kind IN ('earn', 'spend', 'expire', 'reverse', 'adjust')", name="ck_points_entries_kind"
            ),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "programme_id", "request_id", name="uq_points_entries_request"),
        )
        op.create_index(
            "ix_points_entries_member",
            "points_entries",
            ["project_id", "programme_id", "person", "wallet", "id"],
            unique=False,
        )
        op.create_index("ix_points_entries_transfer", "points_entries", ["transfer_id"], unique=False)
    if "programmes" not in existing:
        op.create_table(
            "programmes",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("growth_mark_ms", sa.BigInteger(), nullable=False),
            sa.Column("growth_mark_id", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("project_id", "name"),
        )
    if "members" not in existing:
        op.create_table(
            "members",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.Integer(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(length=8), nullable=False),
            sa.Column("joined_at", sa.DateTime(), nullable=False),
            sa.Column("level", sa.Integer(), nullable=False),
            sa.Column("level_since", sa.DateTime(), nullable=False),
            sa.Column("below_since", sa.DateTime(), nullable=True),
            sa.Column("vip_since", sa.DateTime(), nullable=True),
            sa.Column("vip_until", sa.DateTime(), nullable=True),
            sa.Column("birthday", sa.Date(), nullable=True),
            sa.Column("zone", sa.String(length=64), nullable=True),
            sa.Column("left_at", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(
                ["programme_id"],
                ["programmes.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("programme_id", "person"),
        )
        op.create_index("ix_members_level", "members", ["programme_id", "status", "level"], unique=False)
    if "points_lots" not in existing:
        op.create_table(
            "points_lots",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("programme_id", sa.BigInteger(), nullable=False),
            sa.Column("person", sa.BigInteger(), nullable=False),
            sa.Column("wallet", sa.String(length=40), nullable=False),
            sa.Column("original", sa.BigInteger(), nullable=False),
            sa.Column("remaining", sa.BigInteger(), nullable=False),
            sa.Column("earned_at", sa.DateTime(), nullable=False),
            sa.Column("spendable_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=True),
            sa.Column("matured", sa.Boolean(), nullable=False),
            sa.Column("expired", sa.Boolean(), nullable=False),
            sa.Column("reversed", sa.Boolean(), nullable=False),
            sa.CheckConstraint("remaining >= 0 AND remaining <= original", name="ck_points_lots_remaining"),
            sa.ForeignKeyConstraint(
                ["entry_id"],
                ["points_entries.id"],
            ),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["projects.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("entry_id"),
        )
        op.create_index("ix_points_lots_due", "points_lots", ["expires_at", "expired"], unique=False)
        op.create_index(
            "ix_points_lots_member",
            "points_lots",
            ["project_id", "programme_id", "person", "wallet", "remaining"],
            unique=False,
        )
    if "programme_versions" not in existing:
        op.create_table(
            "programme_versions",
            sa.Column("programme_id", sa.Integer(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("definition", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(
                ["programme_id"],
                ["programmes.id"],
            ),
            sa.PrimaryKeyConstraint("programme_id", "version"),
        )
    if "points_allocations" not in existing:
        op.create_table(
            "points_allocations",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                ["entry_id"],
                ["points_entries.id"],
            ),
            sa.ForeignKeyConstraint(
                ["lot_id"],
                ["points_lots.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_points_allocations_entry", "points_allocations", ["entry_id"], unique=False)
        op.create_index("ix_points_allocations_lot", "points_allocations", ["lot_id"], unique=False)


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in reversed(_TABLES):
        if name in existing:
            op.drop_table(name)
