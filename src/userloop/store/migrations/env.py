"""Alembic's entry point: migrations run on the connection :func:`userloop.store.migrations.upgrade` hands over,
or, from the ``alembic`` command line, on ``USERLOOP_META_URL``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from userloop.store.meta import Base
from userloop.store.migrations import compare_type

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(os.environ["USERLOOP_META_URL"])
    with engine.begin() as conn:
        _run(conn)
