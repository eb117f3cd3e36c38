"""File import: JSON lines (Sensors record format), CSV and Parquet, gzip accepted.

JSON lines carry their own record types. CSV and Parquet rows are mapped: which column is the user, the event,
the time (epoch seconds or milliseconds, or ISO 8601 with or without a zone; without one, the project's time
zone applies), the dedupe id; every other column is a property. Rows that fail a check go to the project's
rejects table and to a rejects file (JSON lines: row, field, reason, raw); the valid rows are kept.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
import pyarrow.parquet as pq
from sqlglot import exp

from userloop.core.clock import now_ms
from userloop.core.errors import NotFoundError, ValidationError
from userloop.ingest.arrow_source import stage_relation
from userloop.ingest.checks import typed_family
from userloop.ingest.file_loader import FileLoader
from userloop.ingest.jsonl import iter_line_chunks, stage_json_file, stage_json_lines
from userloop.ingest.loader import LoadResult, TimePolicy
from userloop.ingest.source import CANONICAL, CANONICAL_TYPES, Staged
from userloop.schema.names import RESERVED_PROPERTY_NAMES, name_problem
from userloop.schema.types import PropertyType
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.sqlbuild import col, literal, name, sql, table, type_

Kind = Literal["events", "users", "items"]
Progress = Callable[[int], None]

#: Rows per load of a Parquet file (cut at row-group boundaries). The staging is a view, so a load holds no
#: copy of its rows, only one 64-bit id hash per row for the repeat test (160 MB at 20M) and the batch's ids;
#: each load resolves the ids it sees, so smaller loads redo that work for every person present in several
#: (bench/ingest_files, 20M events over 1M ids in loads of 5M: 3 s of CPU more than in one).
PARQUET_BATCH_ROWS = 20_000_000
# Where a Parquet import's time goes (bench/ingest_files: 20M events over 1M ids into a new project; CPU seconds
# per statement, load 7-12 on 2 cores, against 27-31 s for the bare CTAS of the same file in the same runs): the
# insert 31-33 (without its join to the batch's id map 29 against the CTAS's 31 in one run: the join is 4-5);
# the ids' aggregate 4.3-4.4; the checks 1.6-2.0; the repeat test 1.9 (DuckDB hashes the ids, 1.1, numpy sorts
# them, 0.85); the new persons (numbering, identities, users) 1.7-1.9; shape 0.2-0.3. Whole runs: 1.55-1.59x
# the CTAS's CPU (the bench at load 5.6-8; 1.67-1.70 before the cuts below, at load 4.7-7), but 1.52-1.73
# alternating with the old loader's 1.51-1.72 at load 6-8: the load moves a run by as much as the cuts weigh.
# Cut on 2026-12-08, each against the old
# statement in alternating runs: the repeat test's hashes sorted by numpy rather than by an ORDER BY (2.6-3.2 ->
# 1.9), the aggregate, the insert and the written names without the bad-row filter when no row is bad and the
# aggregate without type filters when every record is an active event (4.6 -> 4.3), no reader error to compute
# for a numeric or timestamp time column (checks 1.76 -> 1.58), no span of the batch's times when the project
# holds no events (0.35). Tried without gain before: the aggregate grouped by the id's hash (4.7-6.1 against
# 4.0), the join on it (2.8 against 2.7), the join's probe filter disabled (2.3 against 2.4; again 12-08: 4.7
# against 5.1, within the noise), the checks folded into the aggregate (refused rows listed per id: 4.2-6.0
# against 4.7-5.3 for both), aggregate and join in one statement (6.0 against 6.2), the chunk read by pyarrow and
# scanned as Arrow (10.4 s to read, no pass cheaper). Tried on 12-08: the ids resolved by pyarrow instead of the
# aggregate and the join (``dictionary_encode`` of the 20M ids alone took 9 s of CPU, unifying per-row-group
# dictionaries 33 s).
#: The least a Parquet cell weighs once read (for the decompressed-size bound of an import).
PARQUET_CELL_BYTES = 4

RECORD_TYPE = {"events": "track", "users": "profile_set", "items": "item_set"}


class ExpandedTooLargeError(ValidationError):
    """A file whose content (decompressed) is larger than the import allows."""

    code = "too_large"


def check_expanded_size(path: Path, max_bytes: int) -> int:
    """The size of ``path``'s content once decompressed, or ExpandedTooLargeError naming the file past ``max_bytes``.

    A gzip file is decompressed as a stream, counted and thrown away (nothing is written, memory stays flat), and
    reading stops at the cap, so a small "gzip bomb" costs at most ``max_bytes`` of decompression work. A Parquet
    file's size comes from its metadata: the larger of its uncompressed size and its cells at
    :data:`PARQUET_CELL_BYTES` each.
    """
    if path.name.lower().endswith(".gz"):
        size = _gzip_size(path, max_bytes)
    elif detect_format(path) == "parquet":
        meta = pq.ParquetFile(path).metadata
        encoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        # run-length and dictionary encodings keep repeated values tiny even "uncompressed": count every cell too
        size = max(encoded, meta.num_rows * max(meta.num_columns, 1) * PARQUET_CELL_BYTES)
    else:
        size = path.stat().st_size
    if size > max_bytes:
        raise ExpandedTooLargeError(
            f"{path.name} expands to more than {max_bytes} bytes; the limit is {max_bytes} bytes per imported "
            "file: split it into smaller files"
        )
    return size


def _gzip_size(path: Path, max_bytes: int) -> int:
    size = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    return size
    except (OSError, EOFError, zlib.error) as exc:
        raise ValidationError(f"{path.name} is not a readable gzip file: {exc}") from exc
    return size


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
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".tsv", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
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
    max_bytes: int | None = None,
) -> ImportSummary:
    """Import files into a project; every record is checked, rejects are kept with their reason.

    ``max_bytes``: refuse (before reading anything) a file whose decompressed content is larger
    (:func:`check_expanded_size`)."""
    mapping = mapping or ColumnMapping()
    summary = ImportSummary()
    started_ms = now_ms()
    loader = FileLoader(project, policy)
    for path in paths if max_bytes is not None else ():  # every file is checked before any is read
        if path.exists():
            check_expanded_size(path, max_bytes or 0)
    for path in paths:
        if not path.exists():
            raise NotFoundError(f"no such file: {path}")
        summary.files.append(str(path))
        with project.writer() as session:  # the staged relations are the writer's temp tables
            for staged in _stages(project, session, path, kind, mapping, timezone):
                try:
                    result = loader.load(staged)
                finally:
                    staged.release(session)
                summary.result.add(result)
                if progress:
                    progress(result.received)
    if rejects_path is not None and summary.result.rejected:
        summary.rejects_file = str(_write_rejects(project, [str(p) for p in paths], rejects_path, started_ms))
    return summary


def _stages(
    project: ProjectStore, session: DuckSession, path: Path, kind: Kind, mapping: ColumnMapping, timezone: str
) -> Iterator[Staged]:
    fmt = detect_format(path)
    source = str(path)
    if fmt == "jsonl":
        whole = stage_json_file(session, path, source=source, registry=project.registry())
        if whole is not None:
            yield whole
            return
        for first, lines in iter_line_chunks(path):
            yield stage_json_lines(session, lines, first, source=source)
        return
    if fmt == "parquet":
        reader = _reader(sql("SELECT * FROM read_parquet($path, file_row_number = true)", path=str(path)))
        for lo, hi in _parquet_chunks(path):
            yield _stage_file(
                session,
                reader,
                kind,
                mapping,
                timezone,
                source,
                row=sql("file_row_number + 1"),
                where=sql("file_row_number >= $lo AND file_row_number < $hi", lo=lo, hi=hi),
                text=False,
            )
        return
    delim = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    # Registered text properties are read as text, so that "0210" stays a string and never becomes 210.
    texts = [n for n, t in project.properties(kind).items() if t.value == "STRING"] + [mapping.user]
    if mapping.event_id:
        texts.append(mapping.event_id)
    header = session.execute(
        sql("SELECT * FROM read_csv($path, delim = $delim, header = true) LIMIT 0", path=str(path), delim=delim)
    ).columns
    types = [c for c in header if c in texts]
    csv = sql(
        "SELECT * FROM read_csv($path, delim = $delim, header = true, sample_size = -1)", path=str(path), delim=delim
    )
    reader = _reader(csv)
    if types:
        reader.this.append("expressions", sql("types = $types", types=_struct(dict.fromkeys(types, "VARCHAR"))))
    yield _stage_file(
        session, reader, kind, mapping, timezone, source, row=sql("row_number() OVER ()"), where=exp.true(), text=True
    )


def _reader(query: exp.Expr) -> exp.Table:
    """The table function a ``SELECT * FROM reader(…)`` template reads (to put in other statements' FROM)."""
    return query.args["from_"].this


def _struct(fields: dict[str, str]) -> exp.Expr:
    """A ``{'name': 'value', …}`` struct literal (a reader's column types)."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(k), expression=exp.Literal.string(v)) for k, v in fields.items()
        ]
    )


def _parquet_chunks(path: Path) -> list[tuple[int, int]]:
    """Row ranges of at most about PARQUET_BATCH_ROWS, cut at row-group boundaries."""
    meta = pq.ParquetFile(path).metadata
    chunks: list[tuple[int, int]] = []
    start = end = 0
    for i in range(meta.num_row_groups):
        end += meta.row_group(i).num_rows
        if end - start >= PARQUET_BATCH_ROWS:
            chunks.append((start, end))
            start = end
    if end > start or not chunks:
        chunks.append((start, end))
    return chunks


def _stage_file(
    session: DuckSession,
    reader: exp.Expr,
    kind: Kind,
    mapping: ColumnMapping,
    timezone: str,
    source: str,
    *,
    row: exp.Expr,
    where: exp.Expr,
    text: bool,
) -> Staged:
    """(A chunk of) a file with canonical columns, mapped as asked: a temp table for text (CSV), a view for Parquet.

    A CSV file is parsed once into DuckDB's own layout: the loader reads the staged rows several times
    (checks, ids, the final insert) and parsing text again each time costs more than the copy. A Parquet file
    is already columnar: each pass decodes only the columns it reads, the chunk's row range skips the other
    row groups (``file_row_number`` is pushed into the scan), and the event names come from the column's
    dictionary; the copy, by contrast, wrote and read every column once more (bench/ingest_files, 2M events:
    the copy was a fifth of the import). Each pass reads the file again, so a file rewritten during its import
    may show the passes different rows: import files that stay put. ``text`` files (CSV) type new properties
    by their first value.
    """
    described = session.fetchall(sql("DESCRIBE SELECT * FROM $reader", reader=reader))
    columns = {str(r[0]): str(r[1]) for r in described if r[0] != "file_row_number"}
    select = _mapping_select(columns, kind, mapping, timezone, row)
    relation = "_ul_file"  # one staging at a time: the writer is held throughout
    kind_ = "TABLE" if text else "VIEW"
    session.execute(
        sql(
            _STAGE_TEMPLATES[kind_],
            t=table(None, relation),
            select=select,
            reader=reader,
            where=where,
        )
    )
    return stage_relation(session, relation, source=source, infer_text=text, kind=kind_)


_STAGE_TEMPLATES = {
    "TABLE": "CREATE OR REPLACE TEMP TABLE $t AS SELECT $select FROM $reader WHERE $where",
    "VIEW": "CREATE OR REPLACE TEMP VIEW $t AS SELECT $select FROM $reader WHERE $where",
}


def _as(value: exp.Expr, sql_type: str) -> exp.Expr:
    return exp.Cast(this=value, to=type_(sql_type))


def _mapping_select(
    columns: dict[str, str], kind: Kind, mapping: ColumnMapping, timezone: str, row: exp.Expr
) -> list[exp.Expr]:
    special = {
        mapping.user,
        mapping.event,
        mapping.time,
        mapping.event_id,
        mapping.item_type,
        mapping.item_id,
        "event_id",
    }
    _require(list(columns), kind, mapping)
    canon: dict[str, exp.Expr] = {c: _as(exp.null(), CANONICAL_TYPES[c]) for c in CANONICAL}
    canon["_row"] = _as(row, "BIGINT")
    canon["type"] = literal(RECORD_TYPE[kind])
    if kind != "items":
        canon["distinct_id"] = _as(col(mapping.user), "VARCHAR")
        canon["is_login_id"] = literal(mapping.login)
    if kind == "events":
        canon["event"] = _as(col(mapping.event), "VARCHAR")
    if mapping.time in columns:
        time_sql = _time_expr(mapping.time, columns[mapping.time], mapping.time_unit, timezone)
        canon["time"] = time_sql
        if not _time_never_null(columns[mapping.time]):
            canon["_error"] = sql(
                "CASE WHEN $c IS NOT NULL AND ($t) IS NULL THEN 'time ' || "
                "CAST(to_json(CAST($c AS VARCHAR)) AS VARCHAR) "
                "|| ' is neither epoch seconds or milliseconds nor an ISO 8601 date-time' END",
                c=col(mapping.time),
                t=time_sql,
            )
    if kind == "items":
        item_type = col(mapping.item_type) if mapping.item_type in columns else literal(mapping.default_item_type)
        canon["item_type"] = _as(item_type, "VARCHAR")
        canon["item_id"] = _as(col(mapping.item_id), "VARCHAR")
    props: list[tuple[str, str]] = []
    for column in columns:
        if column in special or column in mapping.ignore:
            continue
        target = mapping.rename.get(column, column)
        problem = name_problem(target, reserved=RESERVED_PROPERTY_NAMES)
        if problem or target in CANONICAL:
            raise ValidationError(
                f"column {column!r} cannot be a property: {problem or 'the name is used by userloop itself'}; "
                f"rename it (--rename {column}=new_name) or leave it out (--ignore {column})"
            )
        props.append((column, target))
    id_col = mapping.event_id if mapping.event_id in columns else "event_id" if "event_id" in columns else None
    if id_col:
        canon["event_id"] = _as(col(id_col), "VARCHAR")
    else:  # a stable id from the row itself, so that importing the same file twice adds nothing
        fields = [canon["type"], canon["distinct_id"], canon["event"], canon["time"], canon["item_id"]]
        fields += [_as(col(c), "VARCHAR") for c, _ in props]
        canon["event_id"] = sql("md5(concat_ws(chr(31), $fields))", fields=fields)
    out = [exp.alias_(expr, name(c)) for c, expr in canon.items()]
    out += [exp.alias_(col(c), name(t)) for c, t in props]
    return out


def _require(columns: list[str], kind: Kind, mapping: ColumnMapping) -> None:
    needed = {
        "events": [mapping.user, mapping.event, mapping.time],
        "users": [mapping.user],
        "items": [mapping.item_id],
    }
    missing = [c for c in needed[kind] if c not in columns]
    if kind == "items" and mapping.item_type not in columns and not mapping.default_item_type:
        missing.append(mapping.item_type)
    if missing:
        shown = ", ".join(columns[:20])
        raise ValidationError(
            f"the file has no column {missing[0]!r} (columns: {shown}); map yours with --user-column, "
            "--event-column, --time-column, --item-id-column or --item-type"
        )


def _time_never_null(duck_type: str) -> bool:
    """Whether :func:`_time_expr` of a column of ``duck_type`` has a value wherever the column has one: numbers,
    timestamps and dates always convert, so the record needs no reader error, and the check pass does not work
    the time out a second time to look for one (a tenth of its time at 20M rows)."""
    return typed_family(duck_type) in (PropertyType.NUMBER, PropertyType.DATETIME, PropertyType.DATE)


def _time_expr(column: str, duck_type: str, unit: str, timezone: str) -> exp.Expr:
    """Epoch milliseconds from an epoch number, a timestamp, or an ISO string (zone-less = project zone)."""
    c = col(column)
    family = typed_family(duck_type)
    if family is PropertyType.NUMBER:
        if unit == "s":
            return sql("CAST(round($c * 1000) AS BIGINT)", c=c)
        if unit == "ms":
            return _as(c, "BIGINT")
        return sql("CAST(CASE WHEN abs($c) < 100000000000 THEN round($c * 1000) ELSE $c END AS BIGINT)", c=c)
    if duck_type.upper().startswith("TIMESTAMP WITH TIME ZONE"):
        return sql("epoch_ms($c)", c=c)
    if family in (PropertyType.DATETIME, PropertyType.DATE):
        # Cast to microsecond TIMESTAMP first: DuckDB 2.0's epoch_ms/timezone have no TIMESTAMP_S/_MS/_NS
        # overloads ("Unimplemented type for cast"), and Parquet/Arrow files carry all four units.
        return sql("epoch_ms(timezone($tz, CAST($c AS TIMESTAMP)))", tz=timezone, c=c)
    return sql(
        "CASE WHEN regexp_full_match($text, '-?[0-9]+') THEN "
        "CASE WHEN abs(TRY_CAST($text AS HUGEINT)) < 100000000000 THEN TRY_CAST($text AS BIGINT) * 1000 "
        "ELSE TRY_CAST($text AS BIGINT) END "
        "WHEN regexp_matches($text, '([zZ]|[+-][0-9]{2}:?[0-9]{2})$') THEN epoch_ms(TRY_CAST($text AS TIMESTAMPTZ)) "
        "ELSE epoch_ms(timezone($tz, TRY_CAST($text AS TIMESTAMP))) END",
        text=sql("trim(CAST($c AS VARCHAR))", c=c),
        tz=timezone,
    )


def _write_rejects(project: ProjectStore, sources: list[str], path: Path, since_ms: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = project.fetchall(
        sql(
            "SELECT source, row_no, field, reason, raw FROM $rejects "
            "WHERE list_contains(?, source) AND received_at >= make_timestamp(? * 1000) "
            "ORDER BY received_at, source, row_no",
            rejects=project.ref("rejects"),
        ),
        [sources, since_ms],
    )
    with path.open("wb") as f:
        for source, row, fld, reason, raw in rows:
            f.write(orjson.dumps({"file": source, "row": row, "field": fld, "reason": reason, "raw": raw}) + b"\n")
    return path
