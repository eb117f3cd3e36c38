"""Bulk reads and writes of the metadata database that skip SQLAlchemy's per-row processing: at a million rows
(the member system's level evaluation, its growth entries) that processing costs more than the database's own
work. The statements are still SQLAlchemy trees, compiled once for the connection's dialect; only the rows travel
as the driver's values. Here, in ``store/``, because it touches the driver's cursor (see ARCHITECTURE.md's seam).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Executable


def driver_value(conn: Connection, column: Any) -> Callable[[Any], Any]:
    """How a value of ``column`` is handed to the driver (SQLite stores a DateTime as text in SQLAlchemy's format;
    PostgreSQL's driver takes it as it is), for :func:`bulk_execute`."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


def bulk_execute(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """``executemany`` of a statement compiled once for the connection's dialect, on rows of driver-ready values
    (ints, text, values passed through :func:`driver_value`): no per-row parameter processing, which at a million
    rows costs more than the writes themselves."""
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect)
    text, fixed = str(compiled), compiled.params  # fixed: values written into the statement (NULL)
    if compiled.positional:
        order = compiled.positiontup or []
        conn.exec_driver_sql(text, [tuple(r[k] if k in r else fixed[k] for k in order) for r in rows])
    else:
        conn.exec_driver_sql(text, [{**fixed, **r} for r in rows])


def driver_rows(conn: Connection, stmt: Executable) -> list[Any]:
    """Rows as the driver gives them: the values here are integers and timestamps read as text, so SQLAlchemy's
    per-row result processing (most of the time of a million-row read) is skipped."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()
