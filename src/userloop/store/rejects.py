"""The rejects (dead letter) table: its layout, declared once.

Every refused record lands here, whoever refused it (the loader's checks, identity rules, the collector's
door and drain, profile imports): where it came from (``source``, ``row_no``), why (``field``, ``reason``), what
it was (``raw``) and when. The project's schema creates the table from :data:`COLUMNS`, and writers name the
columns from it, so a column added here reaches every writer.

Example::

    session.execute(insert_rows(project.ref(TABLE)), [source, row, field, reason, raw, received_at])
"""

from __future__ import annotations

from sqlglot import exp

from userloop.store.sqlbuild import columns, name, sql, type_

TABLE = "rejects"

#: (column, type, NOT NULL), in table order.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("source", "VARCHAR", True),
    ("row_no", "BIGINT", False),
    ("field", "VARCHAR", False),
    ("reason", "VARCHAR", True),
    ("raw", "VARCHAR", False),
    ("received_at", "TIMESTAMP", True),
)
NAMES = tuple(c for c, _, _ in COLUMNS)


def create(target: exp.Table) -> exp.Expr:
    """``CREATE TABLE IF NOT EXISTS`` for the rejects table ``target``."""
    defs = [
        exp.ColumnDef(
            this=name(c),
            kind=type_(t),
            constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())] if required else [],
        )
        for c, t, required in COLUMNS
    ]
    return exp.Create(this=exp.Schema(this=target, expressions=defs), kind="TABLE", exists=True)


def insert_rejects(target: exp.Table, rows: exp.Expr) -> exp.Expr:
    """``INSERT INTO target (columns) rows``: ``rows`` is a query yielding the columns in :data:`NAMES` order."""
    return exp.Insert(this=exp.Schema(this=target.copy(), expressions=[name(c) for c in NAMES]), expression=rows)


def insert_rows(target: exp.Table) -> exp.Expr:
    """``INSERT INTO target (columns) VALUES (?, …)``, for one row of parameters in :data:`NAMES` order."""
    params = [exp.Placeholder() for _ in NAMES]
    return sql("INSERT INTO $t ($cols) VALUES ($params)", t=target, cols=columns(NAMES), params=params)
