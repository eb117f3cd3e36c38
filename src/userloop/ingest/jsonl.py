"""JSON lines in the Sensors Analytics record format.

One record per line::

    {"type": "track", "event": "order_paid", "distinct_id": "u1", "time": 1700000000000,
     "properties": {"$is_login_id": true, "order_amount": 35.5}, "lib": {"$lib": "python"}}

Fields: ``type``, ``event``, ``distinct_id``, ``original_id``, ``time`` (epoch ms), ``properties``,
``identities`` (ID-Mapping 3.0), ``item_type``/``item_id``, ``lib.$lib``, and a dedupe id: ``event_id`` when
given, else one derived from ``_track_id``, else a hash of the record, so a file imported twice adds nothing.

Two ways in, one result. A file is first read by DuckDB's parallel JSON reader (fast); if any line is not
a well-formed record, the file is read again line by line, so that each bad line is reported with its number
while the good ones are kept. Both ways produce the same columns, and the same ids for the same record. The
fast way reads the properties typed when a survey of the file shows that this loads the same as JSON values
(see :func:`typed_fields`), else as JSON values.
"""

from __future__ import annotations

import functools
import gzip
import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from userloop.ingest.identity import ANONYMOUS, LOGIN
from userloop.ingest.rules import PROPERTIES_NOT_OBJECT, TIME_NOT_INTEGER, property_name_problem
from userloop.ingest.source import PropSource, Staged, drop
from userloop.schema.names import MAX_TABLE_PROPERTIES, fold
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, JSON_KINDS, PropertyType
from userloop.store.backend import is_engine_error
from userloop.store.duck import DuckSession
from userloop.store.sqlbuild import col, freeze, name, sql, table, type_

CHUNK_BYTES = 64 << 20
#: Above this size a file is staged in chunks of lines, to bound memory.
FAST_PATH_MAX_BYTES = 2 << 30

#: The record's fields as the JSON reader types them; anything looser is JSON and checked by the loader.
FIELDS = {
    "type": "VARCHAR",
    "event": "VARCHAR",
    "distinct_id": "JSON",
    "original_id": "VARCHAR",
    "time": "JSON",
    "event_id": "VARCHAR",
    "_track_id": "JSON",
    "lib": "JSON",
    "item_type": "VARCHAR",
    "item_id": "VARCHAR",
    "identities": "JSON",
    "properties": "MAP(VARCHAR, JSON)",
}
#: The flag in a record's properties that says its distinct_id is a login id (not a property).
LOGIN_FLAG = "$is_login_id"


def _columns(fields: dict[str, str]) -> exp.Expr:
    """A JSON reader's ``columns`` argument: a struct of name → type."""
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.Literal.string(k), expression=exp.Literal.string(v)) for k, v in fields.items()
        ]
    )


_COLUMNS = _columns(FIELDS)


def _identity(id_type: str) -> exp.Expr:
    """The record's id of ``id_type`` in its identities object, as text."""
    return sql("identities ->> $path", path='$."' + id_type + '"')


@dataclass(frozen=True)
class Top:
    """How the canonical columns read two top-level fields: each record's distinct_id as text, its ``lib.$lib``."""

    distinct_id: exp.Expr
    lib: exp.Expr


#: The fields as FIELDS types them (JSON values).
JSON_TOP = Top(distinct_id=sql("distinct_id ->> '$'"), lib=sql("lib ->> '$.\"$lib\"'"))
#: The two fields as a typed staging reads them (:data:`TYPED_TOP`): no JSON value to write and parse again.
TYPED_TOP_FIELDS = {"distinct_id": "VARCHAR", "lib": 'STRUCT("$lib" VARCHAR)'}
#: Any JSON value read as text is the text ``->> '$'`` gives (the same writer), and ``lib.$lib`` likewise; a
#: ``lib`` that is no object makes the reader fail (the file is then staged as JSON values). The record hash
#: reads distinct_id's JSON text, but a typed staging holds no record without an id of its own.
TYPED_TOP = Top(
    distinct_id=col("distinct_id"), lib=exp.Bracket(this=col("lib"), expressions=[exp.Literal.string("$lib")])
)


def _canonical(
    relation: exp.Expr,
    *,
    raw: exp.Expr,
    error: exp.Expr,
    properties: exp.Expr | None = None,
    keys: exp.Expr | None = None,
    as_map: exp.Expr | None = None,
    top: Top | None = None,
) -> exp.Expr:
    """Canonical columns from a relation holding the FIELDS (plus ``_row``).

    ``properties``, ``keys`` and ``as_map`` (all or none) stage the properties otherwise than as the reader's
    map: the value to stage, each record's list of names, and the record's properties as that map (for the
    record hash, so that a record gets the same id whichever way it is staged). ``top``: how distinct_id and
    lib are read, when the reader types them otherwise than FIELDS does.
    """
    top = top or JSON_TOP
    props_text = sql("CAST($m AS VARCHAR)", m=as_map if as_map is not None else col("properties"))
    record_hash = sql(
        "md5(concat_ws(chr(31), type, event, CAST(distinct_id AS VARCHAR), original_id, CAST(time AS VARCHAR), "
        "item_type, item_id, $props, CAST(identities AS VARCHAR)))",
        props=props_text,
    )
    # Sensors SDKs number each event (_track_id); with the sender and the time it identifies the event, and
    # needs no hashing.
    track_hash = sql(
        "concat_ws(':', 't', CAST(_track_id AS VARCHAR), CAST(time AS VARCHAR), event, $distinct)",
        distinct=top.distinct_id,
    )
    return sql(
        """SELECT _row, $raw AS _raw,
               coalesce($error,
                        CASE WHEN time IS NOT NULL AND json_type(time) NOT IN ('BIGINT', 'UBIGINT', 'NULL')
                             THEN $time_error END) AS _error,
               type, event,
               coalesce($distinct, $login, $anonymous) AS distinct_id,
               coalesce(TRY_CAST($login_flag AS BOOLEAN),
                        distinct_id IS NULL AND $login IS NOT NULL) AS is_login_id,
               original_id,
               TRY_CAST(time AS BIGINT) AS time,
               coalesce(event_id, CASE WHEN _track_id IS NOT NULL THEN $track_hash END, $record_hash) AS event_id,
               $lib AS lib, item_type, item_id,
               identities, $staged_props AS properties,
               $keys AS _k
        FROM $relation""",
        staged_props=properties if properties is not None else col("properties"),
        keys=keys if keys is not None else sql("map_keys(properties)"),
        raw=raw,
        error=error,
        time_error=TIME_NOT_INTEGER,
        distinct=top.distinct_id,
        lib=top.lib,
        login_flag=exp.Bracket(
            this=properties if properties is not None else col("properties"),
            expressions=[exp.Literal.string(LOGIN_FLAG)],
        ),
        login=_identity(LOGIN),
        anonymous=_identity(ANONYMOUS),
        track_hash=track_hash,
        record_hash=record_hash,
        relation=relation,
    )


def stage_json_file(
    session: DuckSession,
    path: Path,
    *,
    source: str,
    registry: dict[tuple[str, str], PropertyType] | None = None,
) -> Staged | None:
    """Stage a whole file with DuckDB's JSON reader, or None when a line is not a well-formed record.

    With the project's ``registry``, a file that qualifies is staged with its properties read typed
    (:func:`_stage_typed`). Otherwise the records' properties are staged as a struct of JSON values, one field
    per property name of the file (found by a first pass that reads only the properties): DuckDB builds a
    ``MAP`` per record slowly (500,000 records: 2.1 s against 0.5 s for the whole file read otherwise), while a
    struct's fields are plain columns.
    A file whose names do not fit fields (see :func:`_property_names`) is staged with the map, as before.
    """
    if path.stat().st_size > FAST_PATH_MAX_BYTES or _has_blank_lines(path):
        return None
    if registry is not None:
        typed = _stage_typed(session, path, source=source, registry=registry)
        if typed is not None:
            return typed
    relation = "_ul_jsonf"  # one staging at a time: the writer is held throughout
    copy = table(None, f"{relation}_t")
    try:
        names = _property_names(session, path)
    except Exception as exc:
        if not is_engine_error(exc):
            raise
        return None
    if names is None:
        columns, fields = _COLUMNS, None
        canonical = _canonical(_reader(columns), raw=sql("CAST(NULL AS VARCHAR)"), error=exp.null())
    else:
        columns, fields = _columns({**FIELDS, "properties": "JSON"}), (*names, LOGIN_FLAG)
        spec = exp.Literal.string(orjson.dumps(dict.fromkeys(fields, "JSON")).decode())
        canonical = _canonical(
            _reader(columns),
            raw=sql("CAST(NULL AS VARCHAR)"),
            error=exp.null(),
            properties=sql("json_transform(properties, $spec)", spec=spec),
            keys=sql("json_keys(properties)"),
            as_map=sql("CAST(properties AS MAP(VARCHAR, JSON))"),
        )
    # Read in parallel and in file order; the table's rowid then numbers the lines (a numbering window over the
    # reader would serialise it), exposed as _row by a view.
    if not _read_into(session, copy, canonical, path):
        return None
    session.execute(
        sql(
            "CREATE OR REPLACE TEMP VIEW $v AS SELECT * REPLACE (rowid + 1 AS _row) FROM $t",
            v=table(None, relation),
            t=copy,
        )
    )
    staged = _staged(relation, source, raw_available=False)
    staged.cleanup = [("VIEW", relation), ("TABLE", copy.name)]
    staged.json_fields = fields
    return staged


#: Above this many property names in a file, its properties are staged as a map: a struct keeps a slot for every
#: field of every record, present or not (200 fields of 500,000 records took 453 MB, most of them empty), where a
#: map keeps the names a record carries.
MAX_FIELDS = 64


def _reader(columns: exp.Expr) -> exp.Expr:
    """The file (parameter ``?``) as the JSON reader gives it, ``columns`` typed, with an empty ``_row``."""
    return sql(
        "(SELECT CAST(NULL AS BIGINT) AS _row, * FROM "
        "read_json(?, format = 'newline_delimited', columns = $columns, maximum_object_size = 16777216))",
        columns=columns,
    )


def _property_names(session: DuckSession, path: Path) -> list[str] | None:
    """The property names of the file's records, each once (sorted); None when they cannot all be struct
    fields: a record's properties are not an object or repeat a name, two names differ only in case (a struct's
    fields do not), a name is empty, or there are more than :data:`MAX_FIELDS`."""
    # The distinct lists of names first: records of one source mostly carry the same few lists, so the checks
    # on each list run a few times rather than once per record. Anything but an object has no names: only a
    # record with none is asked what it is.
    stmt = sql(
        """SELECT coalesce(bool_or(t <> 'OBJECT'), false), coalesce(bool_or(len(ks) <> len(list_distinct(ks))), false),
                  list_distinct(flatten(list(ks)))
        FROM (SELECT DISTINCT ks, CASE WHEN len(ks) = 0 THEN json_type(properties) END AS t
              FROM (SELECT properties, json_keys(properties) AS ks
                    FROM read_json(?, format = 'newline_delimited', columns = $columns,
                                   maximum_object_size = 16777216)))""",
        columns=_columns({"properties": "JSON"}),
    )
    not_object, repeated, found = session.fetchone(stmt, [str(path)]) or (False, False, [])
    found = found or []
    if not_object or repeated or len(found) > MAX_FIELDS or any(not k for k in found):
        return None
    names = {str(k) for k in found} | {LOGIN_FLAG}
    if len({fold(n) for n in names}) != len(names):
        return None
    return sorted(names - {LOGIN_FLAG})


# Typed staging ------------------------------------------------------------------------------------------------
#
# A property staged as a JSON value is parsed again by every step that reads it: its kind by the checks, its
# value by the insert (on 2M records: 5.7 s of CPU to stage, 1.3 s to check, 3.6 s to insert, against 3.0 s for
# a bare ``CREATE TABLE AS read_json``). DuckDB's reader can instead type a struct's fields as it parses the
# line, but it converts leniently ("2.5" is read as the number 2.5, 1 as true, anything as text), it drops names
# it was not told of, and it reads a JSON null as absent. So the file is surveyed first: the distinct
# ``json_structure`` of the records' properties (one parse per record) gives every name and every kind of value
# it takes; only when each name keeps one kind that its registered type accepts as it is (and nothing else
# could make the two stagings differ, see :func:`typed_fields`) are the properties read typed, as the columns a
# Parquet file would give. Any other file is staged as JSON values, as before.
#
# bench/ingest_files (2M records, 6 properties; CPU seconds under load 4-5): survey 2.4-3.3, typed staging
# 3.0-3.5, checks 0.1-0.4, insert 2.6-3.0. The whole import, JSON values against typed in the same run:
# 12.4 -> 8.9 s of CPU (4.7x -> 3.4x the bare CTAS's), 7.6 -> 5.5 s wall (264k -> 361k records/s); the bench's
# wall ratio 3.2-3.3 under load 4.5. What is left is two parses of the file (survey, staging) and the write: cheaper
# surveys tried (json_keys with json_type of the head's names: 2.4 s; one read into a JSON text table, then
# survey and json_transform from it: -8%; a full-match regex and key counts on the text instead of the survey:
# no gain) did not pay for their complexity. Measured again, per statement (load 4-6): survey 4.1, typed staging
# 3.6, insert 3.2, the rest 1.0 s of CPU, against 3.6 s for the bare CTAS (3.6x); without the survey the import
# would still take 2.4x the CTAS's CPU, so issue #18's 2x needs a cheaper staging or insert as well as one parse.
#
# 2026-12-08 (load 6-9, so every CPU figure is inflated; ratios taken in one run): survey 3.3-3.7, typed staging
# 3.8-3.9 with distinct_id and lib read typed (TYPED_TOP; 4.0-4.3 as JSON values, mean of 3 alternating runs),
# insert 3.5, the rest 2.4; whole import 12.3 s of CPU against 3.65 for the bare CTAS (3.4x). One read instead
# of survey + staging, each record's kinds and count of names taken in the staging statement (json_transform of
# the properties' text, json_type of the head's names, len(json_keys)) and checked afterwards: staging + check
# 8.1 s of CPU against 8.2 for survey + staging (mean of 4 alternating runs), no gain, and a name first seen past
# the head would then stage as JSON values. No survey found is cheaper than json_structure's: json_type of
# '$.*' with json_keys 3.8-4.4 against 4.4-4.8 (same run); json_group_structure 5.2 from a staged table;
# read_json's detection over the whole file (sample_size = -1) 4.8; a cast to VARIANT 4.7 before any check;
# pyarrow's JSON reader 6.5 to read the file; msgspec (strict types, unknown names refused) 3.4-3.7 to check it.
# DuckDB's typed reader converts leniently and json_transform_strict as well ("2.5" to 2.5, 1 to true, any value
# to text), so the kinds must be read from the text; at 0.2-0.6 us per record for each JSON function, a check of
# every record costs about what the survey does.

#: The kind of a JSON value (in ``json_structure``'s words) → the property type that reads it without loss.
TYPED_KINDS: dict[str, PropertyType] = {
    **dict.fromkeys(JSON_KINDS[PropertyType.NUMBER], PropertyType.NUMBER),
    "BOOLEAN": PropertyType.BOOL,
    "VARCHAR": PropertyType.STRING,
}
#: The only records a typed staging holds: events of this type (the others read their properties otherwise:
#: profile operations by their names, identity records not at all).
TYPED_RECORD = "track"
#: The table the properties of :data:`TYPED_RECORD` records go to.
TYPED_TABLE = "events"
#: The view of a typed staging (the loader orders its new names as the JSON path does, see FileLoader).
TYPED_RELATION = "_ul_jsont"
#: A survey row: the properties' structure (JSON text), the record type, whether the record has no id of its own.
Survey = tuple[str | None, str | None, bool]


#: Records surveyed first: a file whose head cannot be read typed is not surveyed further (the conditions hold
#: for a whole file only if they hold for every part of it).
SURVEY_HEAD = 10_000


def _survey(session: DuckSession, path: Path, head: int | None = None) -> list[Survey] | None:
    """The distinct (properties structure, type, unnumbered) rows of the file, or of its first ``head`` records;
    None when the reader refuses a line."""
    reader = sql(
        "read_json(?, format = 'newline_delimited', columns = $columns, maximum_object_size = 16777216)",
        columns=_columns({"type": "VARCHAR", "event_id": "VARCHAR", "_track_id": "JSON", "properties": "JSON"}),
    )
    if head is not None:
        reader = sql("(SELECT * FROM $reader LIMIT $n)", reader=reader, n=head)
    stmt = sql(
        "SELECT DISTINCT json_structure(properties), type, event_id IS NULL AND _track_id IS NULL FROM $reader",
        reader=reader,
    )
    try:
        return [(s, t, bool(u)) for s, t, u in session.fetchall(stmt, [str(path)])]
    except Exception as exc:
        if not is_engine_error(exc):
            raise
        return None


def typed_fields(
    survey: list[Survey], registry: dict[tuple[str, str], PropertyType], cap: int | None = None
) -> dict[str, PropertyType] | None:
    """The properties to read typed (name → type), or None when the file must be staged as JSON values.

    Typed values load exactly as JSON values do only when: every record is a ``track`` event with an id of its
    own (``event_id`` or ``_track_id``: the hash of an unnumbered record reads its properties' text); its
    properties are an object or absent; every name is a fine property name, folds to no other name of the file
    or of the registry, and keeps one kind of non-null value, which is its registered type (a name seen only
    null is left out: it stores nothing either way); the table's cap leaves room for the new names. A repeated
    name makes the typed reader fail, and the caller falls back.
    """
    cap = MAX_TABLE_PROPERTIES.get(TYPED_TABLE) if cap is None else cap
    kinds: dict[str, set[PropertyType]] = {}
    for structure, rtype, unnumbered in survey:
        if rtype != TYPED_RECORD or unnumbered:
            return None
        shape = None if structure is None else orjson.loads(structure)
        if shape is None or shape == "JSON":  # no properties, or an empty object
            continue
        if not isinstance(shape, dict):
            return None
        for key, kind in shape.items():
            found = kinds.setdefault(key, set())
            if key == LOGIN_FLAG or kind == "NULL":
                continue
            if not isinstance(kind, str) or kind not in TYPED_KINDS:
                return None
            found.add(TYPED_KINDS[kind])
    names = set(kinds) - {LOGIN_FLAG}
    spellings = {fold(n): n for t, n in registry if t == TYPED_TABLE}
    folded = {fold(n) for n in names}
    if len(folded) != len(names) or fold(LOGIN_FLAG) in folded or len(names) > MAX_FIELDS:
        return None
    if any(property_name_problem(n) or spellings.get(fold(n), n) != n for n in names):
        return None
    fields: dict[str, PropertyType] = {}
    for n in sorted(names):
        if len(kinds[n]) > 1:
            return None
        registered = registry.get((TYPED_TABLE, n))
        if kinds[n] and registered not in (None, *kinds[n]):
            return None
        if kinds[n]:
            fields[n] = next(iter(kinds[n]))
    new = [n for n in fields if (TYPED_TABLE, n) not in registry]
    if cap is not None and len(spellings) + len(new) > cap:
        return None
    return fields


def _stage_typed(
    session: DuckSession, path: Path, *, source: str, registry: dict[tuple[str, str], PropertyType]
) -> Staged | None:
    """Stage a file with its properties read typed by DuckDB's JSON reader, or None when it does not qualify
    (:func:`typed_fields`) or the reader refuses a line (the caller then stages it as JSON values)."""
    head = _survey(session, path, SURVEY_HEAD)
    if head is None or typed_fields(head, registry) is None:
        return None
    survey = _survey(session, path)
    fields = None if survey is None else typed_fields(survey, registry)
    if fields is None:
        return None
    relation = TYPED_RELATION  # one staging at a time: the writer is held throughout
    copy = table(None, f"{relation}_t")
    # The login flag stays JSON: it is read as the JSON path reads it.
    spec = {**{n: t.sql_type for n, t in fields.items()}, LOGIN_FLAG: "JSON"}
    struct = "STRUCT(" + ", ".join(f"{_quoted(n)} {t}" for n, t in spec.items()) + ")"
    canonical = _canonical(
        _reader(_columns({**FIELDS, **TYPED_TOP_FIELDS, "properties": struct})),
        raw=sql("CAST(NULL AS VARCHAR)"),
        error=exp.null(),
        keys=sql("CAST(NULL AS VARCHAR[])"),
        top=TYPED_TOP,
    )
    if not _read_into(session, copy, canonical, path):
        return None
    columns = {n: f"_p{i}" for i, n in enumerate(fields)}
    view = sql(
        "CREATE OR REPLACE TEMP VIEW $v AS SELECT * EXCLUDE (_k) REPLACE (rowid + 1 AS _row) FROM $t",
        v=table(None, relation),
        t=copy,
    )
    view.expression.select(*(exp.alias_(_struct_field(n), name(c)) for n, c in columns.items()), copy=False)
    session.execute(view)
    new_texts = [n for n, t in fields.items() if t is PropertyType.STRING and (TYPED_TABLE, n) not in registry]
    if _dated_first_value(session, relation, [columns[n] for n in new_texts]):
        session.execute(drop("VIEW", relation))
        session.execute(drop("TABLE", copy.name))
        return None
    return Staged(
        relation=relation,
        source=source,
        props=[PropSource(n, "typed", columns[n], fields[n].sql_type) for n in fields],
        raw_available=False,
        cleanup=[("VIEW", relation), ("TABLE", copy.name)],
    )


def _read_into(session: DuckSession, copy: exp.Table, reader: exp.Expr, path: Path) -> bool:
    """``CREATE TEMP TABLE copy AS reader`` over the file at ``path``; False (nothing left behind) when DuckDB's
    reader refuses the file, so that the caller can read it another way."""
    try:
        session.execute(sql("CREATE OR REPLACE TEMP TABLE $t AS $q", t=copy, q=reader), [str(path)])
    except Exception as exc:
        if not is_engine_error(exc):
            raise
        session.execute(sql("DROP TABLE IF EXISTS $t", t=copy))
        return False
    return True


def _quoted(name_: str) -> str:
    """A struct field's name in a type string, double-quoted (DuckDB's identifier quoting)."""
    return '"' + name_.replace('"', '""') + '"'


def _struct_field(name_: str) -> exp.Expr:
    """``properties['name']``: a field of the typed properties struct."""
    return exp.Bracket(this=col("properties"), expressions=[exp.Literal.string(name_)])


def _dated_first_value(session: DuckSession, relation: str, columns: list[str]) -> bool:
    """Whether the first value of a new text property (in the records the loader judges) looks like a date or a
    date-time: the JSON path would register it as such, where a typed column registers text."""
    if not columns:
        return False
    firsts = [sql("arg_min($c, _row) FILTER (WHERE $c IS NOT NULL AND _error IS NULL)", c=col(c)) for c in columns]
    row = session.fetchone(sql("SELECT $firsts FROM $rel", firsts=firsts, rel=table(None, relation))) or ()
    patterns = (re.compile(DATETIME_REGEX), re.compile(DATE_REGEX))
    return any(v is not None and any(p.match(str(v)) for p in patterns) for v in row)


def stage_json_lines(
    session: DuckSession, lines: pa.Array | list[str | None], first_line: int, *, source: str
) -> Staged:
    """Stage JSON lines one by one; ``first_line`` is the number of the first (blank lines are skipped)."""
    array = lines if isinstance(lines, pa.Array) else pa.array(lines, pa.string())
    rows = pa.array(range(first_line, first_line + len(array)), pa.int64())
    session.register(LINES, pa.table({"_row": rows, "line": array}))
    try:
        # Materialised: the loader reads the staged records several times; each line is parsed only here.
        session.execute(_stage_lines())
    finally:
        session.unregister(LINES)
    return _staged(STAGED_LINES, source, raw_available=True)


#: The registered lines and the table of their records (one staging at a time: the writer is held throughout).
LINES = "_ul_jsonl"
STAGED_LINES = "_ul_jsonl_v"


@functools.cache
def _stage_lines() -> exp.Expr:
    """The statement that parses the registered lines into the staged records (built once: the collector
    stages batch after batch)."""
    fields = [exp.alias_(_field(i, t), name(k)) for i, (k, t) in enumerate(FIELDS.items())]
    properties = _item(list(FIELDS).index("properties"))
    error = sql(
        "CASE WHEN line IS NULL THEN 'line is not valid UTF-8' "
        "WHEN NOT ok THEN 'malformed JSON: ' || left(line, 80) "
        "WHEN json_type(line) <> 'OBJECT' THEN 'record is not a JSON object' "
        "WHEN $props IS NOT NULL AND json_type($props) NOT IN ('OBJECT', 'NULL') THEN $not_object END",
        props=properties,
        not_object=PROPERTIES_NOT_OBJECT,
    )
    parsed = sql(
        """(SELECT _row, line, ok, x, $fields
         FROM (SELECT _row, line, ok,
                      CASE WHEN ok AND json_type(line) = 'OBJECT' THEN json_extract(line, $paths) END AS x
               FROM (SELECT _row, line, coalesce(json_valid(line), false) AS ok
                     FROM (SELECT _row, rtrim(line, chr(13)) AS line FROM $lines)
                     WHERE line IS NULL OR trim(line) <> '')))""",
        fields=fields,
        paths=[f"$.{k}" for k in FIELDS],
        lines=table(None, LINES),
    )
    canonical = _canonical(parsed, raw=sql("coalesce(line, '<not UTF-8>')"), error=error)
    return freeze(sql("CREATE OR REPLACE TEMP TABLE $t AS $q", t=table(None, STAGED_LINES), q=canonical))


def _field(i: int, duck_type: str) -> exp.Expr:
    """The ``i``-th extracted field (of ``x``) typed as the reader would."""
    value = _item(i)
    if duck_type == "VARCHAR":
        return sql("$v ->> '$'", v=value)
    if duck_type.startswith("MAP"):
        return exp.TryCast(this=value, to=type_(duck_type))
    return value


def _item(i: int) -> exp.Expr:
    """``x[i + 1]``: the ``i``-th extracted field (sqlglot counts from 0 and prints DuckDB's 1-based index)."""
    return exp.Bracket(this=col("x"), expressions=[exp.Literal.number(i)])


def _staged(relation: str, source: str, *, raw_available: bool) -> Staged:
    return Staged(
        relation=relation,
        source=source,
        json_props_column="properties",
        ignore_keys=(LOGIN_FLAG,),
        raw_available=raw_available,
        cleanup=[("TABLE", relation)],
    )


def open_bytes(path: Path) -> Iterator[bytes]:
    """The file's bytes in chunks, gunzipped when it is gzip (by magic number, not by name)."""
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def _has_blank_lines(path: Path) -> bool:
    """Blank lines would shift the fast reader's record numbers away from line numbers."""
    with path.open("rb") as f:
        if f.read(2) != b"\x1f\x8b":  # plain file: search it in place, without copying it into Python
            f.seek(0)
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    if mm[:1] in (b"\n", b"\r") or mm.find(b"\n\n") >= 0:
                        return True
                    return mm.find(b"\r") >= 0 and mm.find(b"\n\r\n") >= 0
            except ValueError:  # an empty file cannot be mapped
                return False
    previous = b"\n"
    for chunk in open_bytes(path):
        if b"\n\n" in chunk or b"\n\r\n" in chunk or (previous == b"\n" and chunk[:1] in (b"\n", b"\r")):
            return True
        previous = chunk[-1:]
    return False


def iter_line_chunks(path: Path) -> Iterator[tuple[int, pa.Array]]:
    """(number of the first line, the lines as an Arrow string array; NULL where a line is not UTF-8)."""
    line_no = 1
    tail = b""
    for chunk in open_bytes(path):
        data = tail + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            continue
        tail = data[cut + 1 :]
        lines = split_lines(data[:cut])
        yield line_no, lines
        line_no += len(lines)
    if tail.strip():
        yield line_no, split_lines(tail)


def split_lines(data: bytes) -> pa.Array:
    """Split on newlines in Arrow (vectorised); a line that is not UTF-8 becomes NULL, the others stay."""
    parts = pc.split_pattern(pa.array([data], pa.binary()), b"\n").flatten()
    try:
        return parts.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([_utf8_or_none(b) for b in parts.to_pylist()], pa.string())


def _utf8_or_none(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None
