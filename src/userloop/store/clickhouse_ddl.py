"""ClickHouse's layout of a project's tables, generated from the DuckDB tables' own columns.

The columns come from the DuckDB project (base columns of :mod:`userloop.store.duck` and the property columns
its registry added), so the two stores cannot disagree on a name or a type. What ClickHouse adds is the layout
(ClickHouse docs, "MergeTree" and "ReplacingMergeTree" table engines):

* ``events``: MergeTree, partitioned by month, ordered by (person, time, event id), so one person's events are
  contiguous and in time order (what ``windowFunnel``/``retention`` and the funnel's window pass read);
* ``users``, ``identities``, ``items``: ReplacingMergeTree on their keys: a changed row is a new version that
  background merges fold in (ClickHouse rewrites no row in place);
* the small tables (``registry``, ``event_names``, ``counters``, ``settings``): MergeTree;
* the profile platform's tables, named per tag, segment or model (:func:`layout_of`): a history table
  (``tag_<name>``, ``segment_<id>``) ordered by (person, valid_from), a model's runs (``model_<name>``, whose
  columns may all be NULL) in insertion order, both sharded by person; the run log ``profile_runs`` by
  (target, run_date).

The *cluster* layout (ClickHouse docs, "Data Replication" and "Distributed table engine") is the same columns
as ``<table>_local`` tables on ReplicatedMergeTree with Distributed tables in front, sharded by
``cityHash64(user_id)`` for events, users and identities, so each person's rows sit on one shard and funnels and
retention run shard-locally; the small tables are replicated whole to every node (one replica path for all).

A project the loader *writes* (``[storage] events_url``, :mod:`userloop.store.clickhouse_writes`) keeps its events
in ``event_parts`` (the same MergeTree, remembering the last :data:`DEDUP_WINDOW` inserts' tokens, so a batch sent
again adds nothing), identity merges in ``person_overrides`` (ReplacingMergeTree by old person, newest version
wins), and ``events`` is a view that gives each event its person after the overrides: what every analysis reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from userloop.core.errors import ValidationError

__all__ = [
    "DEDUP_WINDOW",
    "EVENT_PARTS",
    "LAYOUTS",
    "OVERRIDES",
    "Column",
    "Layout",
    "clickhouse_type",
    "events_view",
    "layout_of",
    "project_ddl",
    "table_ddl",
]


@dataclass(frozen=True)
class Column:
    """One DuckDB column: name, DuckDB type text (``VARCHAR``, ``TIMESTAMP``, ``VARCHAR[]`` …), nullability."""

    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Layout:
    """How one table is kept in ClickHouse."""

    #: MergeTree or ReplacingMergeTree
    engine: str
    #: the sort key (columns that are NOT NULL in DuckDB)
    order_by: tuple[str, ...]
    #: a time column partitioned by month
    partition_by_month: str | None = None
    #: sharded by person in the cluster layout (else replicated whole to every node)
    sharded: bool = False


LAYOUTS: dict[str, Layout] = {
    "events": Layout("MergeTree", ("user_id", "time", "event_id"), partition_by_month="time", sharded=True),
    "users": Layout("ReplacingMergeTree", ("user_id",), sharded=True),
    "identities": Layout("ReplacingMergeTree", ("ns", "id_type", "id_value"), sharded=True),
    "items": Layout("ReplacingMergeTree", ("item_type", "item_id")),
    "registry": Layout("MergeTree", ("tbl", "name")),
    "event_names": Layout("MergeTree", ("event",)),
    "counters": Layout("MergeTree", ("name",)),
    "settings": Layout("MergeTree", ("name",)),
}

#: The profile platform's tables, named per tag, segment or model, by name pattern.
_NAMED_LAYOUTS: tuple[tuple[re.Pattern[str], Layout], ...] = (
    (re.compile(r"^(tag|segment)_[a-z0-9_]{1,60}$"), Layout("MergeTree", ("user_id", "valid_from"), sharded=True)),
    (re.compile(r"^model_[a-z0-9_]{1,60}$"), Layout("MergeTree", (), sharded=True)),
    (re.compile(r"^profile_runs$"), Layout("MergeTree", ("target", "run_date"))),
)


def layout_of(table: str) -> Layout | None:
    """How ``table`` is kept in ClickHouse; None for a table the ClickHouse store does not hold."""
    if table in LAYOUTS:
        return LAYOUTS[table]
    return next((layout for pattern, layout in _NAMED_LAYOUTS if pattern.match(table)), None)


#: The person key the cluster shards by.
SHARD_KEY = "user_id"

_TYPES = {
    exp.DataType.Type.VARCHAR: "String",
    exp.DataType.Type.TEXT: "String",
    exp.DataType.Type.INT128: "Int128",
    exp.DataType.Type.BIGINT: "Int64",
    exp.DataType.Type.INT: "Int32",
    exp.DataType.Type.SMALLINT: "Int16",
    exp.DataType.Type.TINYINT: "Int8",
    exp.DataType.Type.UINT128: "UInt128",
    exp.DataType.Type.UBIGINT: "UInt64",
    exp.DataType.Type.UINT: "UInt32",
    exp.DataType.Type.USMALLINT: "UInt16",
    exp.DataType.Type.UTINYINT: "UInt8",
    exp.DataType.Type.UUID: "UUID",
    exp.DataType.Type.JSON: "String",
    exp.DataType.Type.VARBINARY: "String",
    exp.DataType.Type.DOUBLE: "Float64",
    exp.DataType.Type.FLOAT: "Float32",
    exp.DataType.Type.BOOLEAN: "Bool",
    exp.DataType.Type.DATE: "Date32",
    # naive UTC in DuckDB; microseconds, as DuckDB's TIMESTAMP keeps
    exp.DataType.Type.TIMESTAMP: "DateTime64(6, 'UTC')",
    exp.DataType.Type.TIMESTAMPNTZ: "DateTime64(6, 'UTC')",
    exp.DataType.Type.TIMESTAMPTZ: "DateTime64(6, 'UTC')",
}


def clickhouse_type(duck_type: str, nullable: bool) -> exp.DataType:
    """The ClickHouse type of a DuckDB column type. A list is ``Array(Nullable(T))`` (ClickHouse has no
    nullable arrays: a NULL list reads back as an empty one)."""
    parsed = exp.DataType.build(duck_type, dialect="duckdb")
    if parsed.this == exp.DataType.Type.ARRAY:
        inner = parsed.expressions[0]
        return exp.DataType(
            this=exp.DataType.Type.ARRAY, expressions=[clickhouse_type(inner.sql("duckdb"), True)], nested=True
        )
    name = _TYPES.get(parsed.this)
    if parsed.this == exp.DataType.Type.DECIMAL:  # DuckDB's default DECIMAL is (18, 3)
        precision, scale = (p.this.name for p in parsed.expressions) if parsed.expressions else ("18", "3")
        name = f"Decimal({precision}, {scale})"
    if name is None:
        raise ValidationError(
            f"no ClickHouse type for DuckDB type {duck_type} / DuckDB 类型 {duck_type} 没有对应的 ClickHouse 类型",
            code="invalid",
        )
    return exp.DataType.build(f"Nullable({name})" if nullable else name, dialect="clickhouse")


def _engine(layout: Layout, table: str, *, cluster: str | None) -> exp.Expr:
    if cluster is None:
        return exp.var(layout.engine)
    path = exp.Literal.string(f"/clickhouse/tables/{{shard}}/{{database}}/{table}" if layout.sharded
                              else f"/clickhouse/tables/all/{{database}}/{table}")  # fmt: skip
    return exp.Anonymous(this=f"Replicated{layout.engine}", expressions=[path, exp.Literal.string("{replica}")])


#: Text columns with few distinct values, kept dictionary-encoded (``LowCardinality``): smaller on disk, and a
#: filter on them compares dictionary positions, not strings. The values read back are the same strings.
LOW_CARDINALITY = {"events": frozenset({"event", "lib"})}


def _column_type(table: str, column: Column) -> exp.DataType:
    kind = clickhouse_type(column.type, column.nullable)
    if column.name in LOW_CARDINALITY.get(table, ()) and "String" in kind.sql("clickhouse"):
        return exp.DataType.build(f"LowCardinality({kind.sql('clickhouse')})", dialect="clickhouse")
    return kind


def _create(target: exp.Table, columns: list[Column], props: list[exp.Expr], table: str) -> exp.Create:
    defs = [exp.ColumnDef(this=exp.to_identifier(c.name, quoted=True), kind=_column_type(table, c)) for c in columns]
    return exp.Create(
        this=exp.Schema(this=target, expressions=defs),
        kind="TABLE",
        exists=True,
        properties=exp.Properties(expressions=props),
    )


def table_ddl(database: str, table: str, columns: list[Column], *, cluster: str | None = None) -> list[exp.Expr]:
    """The statements that make ``table`` in ``database``: one ``CREATE TABLE`` on a single node; on a cluster,
    the replicated ``<table>_local`` and, for a sharded table, the Distributed ``<table>`` in front of it."""
    layout = layout_of(table)
    if layout is None:
        raise ValidationError(f"no ClickHouse layout for table {table!r} / 表 {table!r} 没有 ClickHouse 布局",
                              code="invalid")  # fmt: skip
    on = [exp.OnCluster(this=exp.to_identifier(cluster, quoted=True))] if cluster else []
    local = f"{table}_local" if cluster and layout.sharded else table
    keys = [exp.column(k, quoted=True) for k in layout.order_by]
    props: list[exp.Expr] = [*on, exp.EngineProperty(this=_engine(layout, table, cluster=cluster))]
    if layout.partition_by_month:
        month = exp.Anonymous(this="toYYYYMM", expressions=[exp.column(layout.partition_by_month, quoted=True)])
        props.append(exp.PartitionedByProperty(this=month))
    props.append(exp.Order(expressions=[exp.Ordered(this=exp.Tuple(expressions=keys))]))
    out: list[exp.Expr] = [_create(exp.table_(local, db=database, quoted=True), columns, props, table)]
    if cluster and layout.sharded:
        shard = exp.Anonymous(this="cityHash64", expressions=[exp.column(SHARD_KEY, quoted=True)])
        front = exp.Anonymous(
            this="Distributed",
            expressions=[exp.Literal.string(cluster), exp.Literal.string(database), exp.Literal.string(local), shard],
        )
        out.append(_create(exp.table_(table, db=database, quoted=True), columns,
                           [*on, exp.EngineProperty(this=front)], table))  # fmt: skip
    return out


#: The written project's events table, and its person overrides (see the module docstring).
EVENT_PARTS = "event_parts"
OVERRIDES = "person_overrides"
OVERRIDE_COLUMNS = [Column("old_person", "BIGINT", False), Column("new_person", "BIGINT", False),
                    Column("version", "UBIGINT", False)]  # fmt: skip
#: Inserts into ``event_parts`` whose deduplication tokens the table remembers (ClickHouse docs,
#: ``non_replicated_deduplication_window``; a replicated table keeps ``replicated_deduplication_window``).
DEDUP_WINDOW = 1000


def _written_ddl(database: str, columns: list[Column]) -> list[exp.Expr]:
    """``event_parts``, ``person_overrides`` and the ``events`` view of a written project (single node)."""
    (parts,) = table_ddl(database, "events", columns)
    assert isinstance(parts, exp.Create)
    parts.this.set("this", exp.table_(EVENT_PARTS, db=database, quoted=True))
    window = exp.EQ(this=exp.var("non_replicated_deduplication_window"), expression=exp.Literal.number(DEDUP_WINDOW))
    parts.args["properties"].append("expressions", exp.SettingsProperty(expressions=[window]))
    engine = exp.Anonymous(this="ReplacingMergeTree", expressions=[exp.column("version", quoted=True)])
    order = exp.Order(expressions=[exp.Ordered(this=exp.column("old_person", quoted=True))])
    props: list[exp.Expr] = [exp.EngineProperty(this=engine), order, exp.SettingsProperty(expressions=[window.copy()])]
    overrides = _create(exp.table_(OVERRIDES, db=database, quoted=True), OVERRIDE_COLUMNS, props, OVERRIDES)
    return [parts, overrides, events_view(database, columns)]


def events_view(database: str, columns: list[Column]) -> exp.Expr:
    """``CREATE OR REPLACE VIEW events``: ``event_parts`` with ``user_id`` read through the overrides (the newest
    version of each old person's row), and each row's part offsets, which stand for DuckDB's ``rowid``."""
    person = exp.func("coalesce", exp.column("new_person", "o", quoted=True), exp.column("user_id", "e", quoted=True))
    picked: list[exp.Expr] = [
        exp.alias_(person if c.name == "user_id" else exp.column(c.name, "e", quoted=True), c.name, quoted=True)
        for c in columns
    ]
    picked += [exp.alias_(exp.column(v, "e"), v) for v in ("_part_starting_offset", "_part_offset")]
    newest = exp.Anonymous(this="argMax", expressions=[exp.column("new_person", quoted=True),
                                                        exp.column("version", quoted=True)])  # fmt: skip
    latest = (
        exp.select(exp.column("old_person", quoted=True), exp.alias_(newest, "new_person", quoted=True))
        .from_(exp.table_(OVERRIDES, db=database, quoted=True))
        .group_by(exp.column("old_person", quoted=True))
    )
    on = exp.EQ(this=exp.column("old_person", "o", quoted=True), expression=exp.column("user_id", "e", quoted=True))
    query = exp.select(*picked).from_(exp.table_(EVENT_PARTS, db=database, quoted=True, alias="e"))
    join = exp.Join(this=exp.alias_(exp.Subquery(this=latest), "o", table=True), side="LEFT", kind="ANY", on=on)
    query.append("joins", join)
    return exp.Create(this=exp.table_("events", db=database, quoted=True), kind="VIEW", replace=True, expression=query)


def project_ddl(
    database: str, tables: dict[str, list[Column]], *, cluster: str | None = None, written: bool = False
) -> list[exp.Expr]:
    """The database and every table of a project, in a fixed order (the database first, then ``tables``'s).

    ``written``: the layout of a project the loader writes (``event_parts``, ``person_overrides`` and the
    ``events`` view in place of the ``events`` table); single node only, for now."""
    if written and cluster:
        raise ValidationError(
            "the write path's person overrides are not laid out for a cluster yet / 集群布局暂不支持写入路径",
            code="invalid",
        )
    on = [exp.OnCluster(this=exp.to_identifier(cluster, quoted=True))] if cluster else []
    db = exp.Create(this=exp.Table(this=exp.to_identifier(database, quoted=True)), kind="SCHEMA", exists=True,
                    properties=exp.Properties(expressions=on) if on else None)  # fmt: skip
    out: list[exp.Expr] = [db]
    for table, columns in tables.items():
        if written and table == "events":
            out.extend(_written_ddl(database, columns))
        else:
            out.extend(table_ddl(database, table, columns, cluster=cluster))
    return out
