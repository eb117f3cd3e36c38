"""Copy a DuckDB project into ClickHouse, and check that the copy holds what the source holds.

:func:`copy_project` makes the project's database afresh (laid out by :mod:`userloop.store.clickhouse_ddl`
from the DuckDB columns), streams every table as Arrow record batches into it, and then counts: rows per table
and events per month, on both sides. Any difference raises ``mirror_mismatch``; a run that returns has copied
everything. Running it again replaces the copy (the database is made anew), so a failed run is simply repeated.

Example::

    counts = copy_project(workspace.project("default"), ClickHouseStore("chdb:///srv/userloop/ch"))
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from userloop.core.errors import UserloopError
from userloop.store.clickhouse import ClickHouseProject, ClickHouseStore
from userloop.store.clickhouse_ddl import EVENT_PARTS, LAYOUTS, Column, layout_of, project_ddl
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import sql

__all__ = ["MIRRORED_TABLES", "TableCount", "copy_project", "duck_columns"]

#: The project tables a mirror copies first (those present in the DuckDB project), in this order; then the
#: profile platform's tables (tags', segments' and models', :func:`~userloop.store.clickhouse_ddl.layout_of`) by name.
MIRRORED_TABLES = tuple(LAYOUTS)
#: Rows per Arrow batch read from DuckDB and written to ClickHouse.
BATCH_ROWS = 200_000


class MirrorMismatchError(UserloopError):
    """The copy does not hold the rows the source holds."""

    code = "mirror_mismatch"


@dataclass(frozen=True)
class TableCount:
    """Rows of one table (or one month of events: ``events 2026-01``) in DuckDB and in ClickHouse."""

    table: str
    duckdb: int
    clickhouse: int

    @property
    def equal(self) -> bool:
        return self.duckdb == self.clickhouse


def duck_columns(project: ProjectStore) -> dict[str, list[Column]]:
    """The mirrored tables the DuckDB project has, with their columns in order (property columns included): those
    of :data:`MIRRORED_TABLES`, then the profile platform's tables by name."""
    read = sql(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = $schema ORDER BY table_name, ordinal_position",
        schema=project.schema,
    )
    found: dict[str, list[Column]] = {}
    for table, column, dtype, nullable in project.fetchall(read):
        if layout_of(table) is not None:
            found.setdefault(table, []).append(Column(column, dtype, nullable == "YES"))
    named = sorted(t for t in found if t not in LAYOUTS)
    return {t: found[t] for t in [*MIRRORED_TABLES, *named] if t in found}


def copy_project(source: ProjectStore, target: ClickHouseStore, *, written: bool = False) -> list[TableCount]:
    """Copy ``source`` into ``target`` (database ``source.schema``) and return the verified counts.

    ``written``: in the layout of a project the loader then writes (events in ``event_parts`` behind the
    ``events`` view, :func:`~userloop.store.clickhouse_ddl.project_ddl`). Raises ``mirror_mismatch`` (in Chinese
    and English) when a table or a month of events differs."""
    tables = duck_columns(source)
    database = source.schema
    with target.writer() as ch:
        drop = exp.Drop(tables=[exp.Table(this=exp.to_identifier(database, quoted=True))], kind="SCHEMA", exists=True)
        ch.execute(drop)
        for stmt in project_ddl(database, tables, written=written):
            ch.execute(stmt)
        with source.session() as duck:
            for table, columns in tables.items():
                names = [exp.column(c.name, quoted=True) for c in columns]
                read = sql("SELECT $cols FROM $t", cols=names, t=source.ref(table))
                stored = EVENT_PARTS if written and table == "events" else table
                ch.insert_arrow(exp.table_(stored, db=database, quoted=True), duck.batches(read, rows=BATCH_ROWS))
    counts = compare_counts(source, target.project(database), list(tables))
    wrong = [c for c in counts if not c.equal]
    if wrong:
        detail = "; ".join(f"{c.table}: DuckDB {c.duckdb}, ClickHouse {c.clickhouse}" for c in wrong)
        raise MirrorMismatchError(
            f"the ClickHouse copy of {database} differs from DuckDB ({detail}) / "
            f"{database} 的 ClickHouse 副本与 DuckDB 不一致（{detail}）"
        )
    return counts


def compare_counts(source: ProjectStore, copy: ClickHouseProject, tables: list[str]) -> list[TableCount]:
    """Rows per table, then events per month (UTC), in DuckDB and in the ClickHouse copy."""
    out = []
    for table in tables:
        count = sql("SELECT count(*) FROM $t", t=source.ref(table))
        out.append(TableCount(table, int(source.scalar(count)), int(copy.scalar(count))))
    if "events" in tables:
        monthly = sql(
            "SELECT strftime(time, '%Y-%m') AS month, count(*) AS n FROM $t GROUP BY month ORDER BY month",
            t=source.ref("events"),
        )
        duck = dict(source.fetchall(monthly))
        ch = dict(copy.fetchall(monthly))
        for month in sorted(set(duck) | set(ch)):
            out.append(TableCount(f"events {month}", int(duck.get(month, 0)), int(ch.get(month, 0))))
    return out
