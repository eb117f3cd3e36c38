"""Key rights and limits: ``api_keys.roles`` and ``api_keys.service``, ``collector_settings.burst``.

Keys made before roles existed get the roles they had in effect: write keys ``write``; API tokens (kind
``admin``) read, write and admin over every project. Each column is added only when missing, since
:func:`userloop.store.meta.upgrade_meta_schema` (or ``create_all`` on a new database) may have made it already.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS: tuple[tuple[str, sa.Column[object]], ...] = (
    ("api_keys", sa.Column("roles", sa.String(64), nullable=True)),
    ("api_keys", sa.Column("service", sa.Boolean(), nullable=False, server_default=sa.false())),
    ("collector_settings", sa.Column("burst", sa.Float(), nullable=True)),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in _COLUMNS:
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, column)  # a plain ADD COLUMN: SQLite needs no table copy for it
    op.execute("UPDATE api_keys SET roles = 'write' WHERE roles IS NULL AND kind = 'write'")
    op.execute("UPDATE api_keys SET roles = 'read write admin' WHERE roles IS NULL AND kind = 'admin'")


def downgrade() -> None:
    for table, column in reversed(_COLUMNS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column.name)
