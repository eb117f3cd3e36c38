"""File import: JSON lines (Sensors record format), CSV and Parquet, gzip accepted.

JSON lines carry their own record types. CSV and Parquet rows are mapped: which column is the user, the event,
the time (epoch seconds or milliseconds, or ISO 8601 with or without a zone; without one, the project's time
zone applies), the dedupe id; every other column is a property. Rows that fail a check go to the project's
rejects table and to a rejects file (JSON lines: row, field, reason, raw); the valid rows are kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from userloop.core.clock import now_ms
from userloop.core.errors import NotFoundError, ValidationError
from userloop.ingest.arrow_source import stage_arrow
from userloop.ingest.jsonl import iter_line_chunks, stage_json_lines
from userloop.ingest.loader import Loader, LoadResult, TimePolicy
from userloop.ingest.source import CANONICAL, Staged
from userloop.schema.names import RESERVED_PROPERTY_NAMES, name_problem
from userloop.store.duck import ProjectStore
from userloop.store.sqltext import ident, literal

Kind = Literal["events", "users", "items"]
Progress = Callable[[int], None]

PARQUET_BATCH_ROWS = 2_000_000
_counter = itertools.count()

RECORD_TYPE = {"events": "track", "users": "profile_set", "items": "item_set"}


@dataclass(frozen=True)
class ColumnMapping:
    """How the columns of a CSV or Parquet file map to records."""

    user: str = "distinct_id"
    event: str = "event"
    time: str = "time"
    event_id: str | None = None
    login: bool = False
    time_unit: Literal["auto", "s", "ms"] = "auto"
    item_type: str = "item_type"
    item_id: str = "item_id"
    default_item_type: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()


@dataclass
class ImportSummary:
    """What an import did, file by file and in total."""

    files: list[str] = field(default_factory=list)
    result: LoadResult = field(default_factory=LoadResult)
    rejects_file: str | None = None

    def as_dict(self) -> dict[str, object]:
        out = self.result.as_dict()
        out.pop("source", None)
        return {"files": self.files, **out, "rejects_file": self.rejects_file}


def detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"), (".csv", "csv"),
                     (".tsv", "csv"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return fmt
    raise ValidationError(f"cannot tell the format of {path.name}: name it .jsonl, .csv or .parquet (optionally .gz)")


def import_files(
    project: ProjectStore,
    paths: list[Path],
    *,
    kind: Kind,
    timezone: str,
    mapping: ColumnMapping | None = None,
    policy: TimePolicy | None = None,
    rejects_path: Path | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import files into a project; every record is checked, rejects are kept with their reason."""
    mapping = mapping or ColumnMapping()
    summary = ImportSummary()
    started_ms = now_ms()
    loader = Loader(project, policy)
    for path in paths:
        if not path.exists():
            raise NotFoundError(f"no such file: {path}")
        summary.files.append(str(path))
        for staged in _stages(project, path, kind, mapping, timezone):
            try:
                with project.store.lock:
                    result = loader.load(staged)
            finally:
                staged.release(project.con)
            summary.result.add(result)
            if progress:
                progress(result.received)
    if rejects_path is not None and summary.result.rejected:
        summary.rejects_file = str(_write_rejects(project, [str(p) for p in paths], rejects_path, started_ms))
    return summary


def _stages(project: ProjectStore, path: Path, kind: Kind, mapping: ColumnMapping, timezone: str) -> Iterator[Staged]:
    fmt = detect_format(path)
    source = str(path)
    if fmt == "jsonl":
        for first, lines in iter_line_chunks(path):
            yield stage_json_lines(project, lines, first, source=source)
    elif fmt == "parquet":
        first = 1
        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            yield _stage_tabular(project, table, kind, mapping, timezone, source, first)
            first += table.num_rows
    else:
        yield _stage_csv(project, path, kind, mapping, timezone, source)


def _stage_tabular(
    project: ProjectStore, table: pa.Table, kind: Kind, mapping: ColumnMapping, timezone: str, source: str, first: int
) -> Staged:
    """Map a file's columns to canonical ones, then stage like any Arrow table."""
    name = f"_ul_file_{next(_counter)}"
    project.con.register(name, table)
    try:
        select = _mapping_select(project, name, table.schema, kind, mapping, timezone, first)
        mapped = project.con.sql(select).to_arrow_table()
    finally:
        project.con.unregister(name)
    return stage_arrow(project, mapped, source=source, first_row=first)


def _stage_csv(project: ProjectStore, path: Path, kind: Kind, mapping: ColumnMapping, timezone: str, source: str) -> Staged:
    name = f"_ul_csv_{next(_counter)}"
    delim = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    # Registered text properties are read as text, so that "0210" stays a string and never becomes 210.
    strings = [n for n, t in project.properties(_table_of(kind)).items() if t.value == "STRING"]
    header = project.con.execute(
        f"SELECT * FROM read_csv(?, delim = {literal(delim)}, header = true, sample_size = -1) LIMIT 0", [str(path)]
    )
    columns = [d[0] for d in header.description or []]
    types = {c: "VARCHAR" for c in columns if c in strings or c in (mapping.user, mapping.event_id)}
    types_sql = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in types) + "}"
    project.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_csv(?, delim = {literal(delim)}, header = true, "
        f"sample_size = -1{', types = ' + types_sql if types else ''})",
        [str(path)],
    )
    arrow = project.con.sql(f"SELECT * FROM {name}").to_arrow_table()
    project.con.execute(f"DROP TABLE {name}")
    return _stage_tabular(project, arrow, kind, mapping, timezone, source, 1)


def _table_of(kind: Kind) -> str:
    return kind


def _mapping_select(
    project: ProjectStore, relation: str, schema: pa.Schema, kind: Kind, mapping: ColumnMapping, timezone: str, first: int
) -> str:
    columns = list(schema.names)
    special = {mapping.user, mapping.event, mapping.time, mapping.event_id, mapping.item_type, mapping.item_id}
    _require(columns, kind, mapping)
    out = [f"{literal(RECORD_TYPE[kind])} AS type", f"row_number() OVER () + {first - 1} AS _row"]
    if kind != "items":
        out.append(f"CAST({ident(mapping.user)} AS VARCHAR) AS distinct_id")
        out.append(f"{literal(mapping.login)} AS is_login_id")
    if kind == "events":
        out.append(f"CAST({ident(mapping.event)} AS VARCHAR) AS event")
    if mapping.time in columns:
        time_sql = _time_expr(mapping.time, schema.field(mapping.time).type, mapping.time_unit, timezone)
        out.append(f"{time_sql} AS time")
        out.append(
            f"CASE WHEN {ident(mapping.time)} IS NOT NULL AND ({time_sql}) IS NULL THEN 'time ' || "
            f"to_json(CAST({ident(mapping.time)} AS VARCHAR))::VARCHAR || ' is neither epoch seconds or milliseconds "
            "nor an ISO 8601 date-time' END AS _error"
        )
    if mapping.event_id and mapping.event_id in columns:
        out.append(f"CAST({ident(mapping.event_id)} AS VARCHAR) AS event_id")
    elif "event_id" in columns and kind == "events":
        out.append("CAST(event_id AS VARCHAR) AS event_id")
    if kind == "items":
        item_type = ident(mapping.item_type) if mapping.item_type in columns else literal(mapping.default_item_type)
        out.append(f"CAST({item_type} AS VARCHAR) AS item_type")
        out.append(f"CAST({ident(mapping.item_id)} AS VARCHAR) AS item_id")
    for col in columns:
        if col in special or col in mapping.ignore or col == "event_id":
            continue
        target = mapping.rename.get(col, col)
        problem = name_problem(target, reserved=RESERVED_PROPERTY_NAMES)
        if problem or target in CANONICAL:
            raise ValidationError(
                f"column {col!r} cannot be a property: {problem or 'the name is used by userloop itself'}; "
                f"rename it (--rename {col}=new_name) or leave it out (--ignore {col})"
            )
        out.append(f"{ident(col)} AS {ident(target)}")
    return f"SELECT {', '.join(out)} FROM {relation}"


def _require(columns: list[str], kind: Kind, mapping: ColumnMapping) -> None:
    needed = {"events": [mapping.user, mapping.event, mapping.time], "users": [mapping.user], "items": [mapping.item_id]}
    missing = [c for c in needed[kind] if c not in columns]
    if kind == "items" and mapping.item_type not in columns and not mapping.default_item_type:
        missing.append(mapping.item_type)
    if missing:
        shown = ", ".join(columns[:20])
        raise ValidationError(
            f"the file has no column {missing[0]!r} (columns: {shown}); map yours with --user-column, "
            "--event-column, --time-column, --item-id-column or --item-type"
        )


def _time_expr(col: str, dtype: pa.DataType, unit: str, timezone: str) -> str:
    """Epoch milliseconds from an epoch number, a timestamp, or an ISO string (zone-less = project zone)."""
    c = ident(col)
    tz = literal(timezone)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        if unit == "s":
            return f"CAST(round({c} * 1000) AS BIGINT)"
        if unit == "ms":
            return f"CAST({c} AS BIGINT)"
        return f"CAST(CASE WHEN abs({c}) < 100000000000 THEN round({c} * 1000) ELSE {c} END AS BIGINT)"
    if pa.types.is_timestamp(dtype):
        if dtype.tz is not None:
            return f"epoch_ms({c})"
        return f"epoch_ms(timezone({tz}, {c}))"
    if pa.types.is_date(dtype):
        return f"epoch_ms(timezone({tz}, CAST({c} AS TIMESTAMP)))"
    text = f"trim(CAST({c} AS VARCHAR))"
    zoned = f"regexp_matches({text}, '([zZ]|[+-][0-9]{{2}}:?[0-9]{{2}})$')"
    return (
        f"CASE WHEN regexp_full_match({text}, '-?[0-9]+') THEN "
        f"CASE WHEN abs(CAST({text} AS HUGEINT)) < 100000000000 THEN CAST({text} AS BIGINT) * 1000 "
        f"ELSE CAST({text} AS BIGINT) END "
        f"WHEN {zoned} THEN epoch_ms(TRY_CAST({text} AS TIMESTAMPTZ)) "
        f"ELSE epoch_ms(timezone({tz}, TRY_CAST({text} AS TIMESTAMP))) END"
    )


def _write_rejects(project: ProjectStore, sources: list[str], path: Path, since_ms: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = project.con.execute(
        f"SELECT source, row_no, field, reason, raw FROM {project.table('rejects')} "
        "WHERE list_contains(?, source) AND received_at >= make_timestamp(? * 1000) "
        "ORDER BY received_at, source, row_no",
        [sources, since_ms],
    ).fetchall()
    with path.open("wb") as f:
        for source, row, fld, reason, raw in rows:
            f.write(orjson.dumps({"file": source, "row": row, "field": fld, "reason": reason, "raw": raw}) + b"\n")
    return path
