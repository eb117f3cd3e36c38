"""Per-record checks, written as SQL over the staged relation.

Each check is a condition and a reason; the loader folds them into one ``CASE`` so that every record gets the
first reason that applies (the field and a message the user can act on) in a single vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from userloop.ingest.source import PropSource
from userloop.schema.names import RESERVED_EVENT_NAMES, name_problem
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, JSON_KINDS, PropertyType, RecordType
from userloop.store.sqltext import ident, literal

EVENT_RECORDS = ("track", "track_signup", "track_id_bind")
PROFILE_RECORDS = tuple(t.value for t in RecordType if t.is_profile)
ITEM_RECORDS = tuple(t.value for t in RecordType if t.is_item)
#: Record types whose properties are *not* values to type-check (unset names properties to clear).
UNTYPED_PROPERTY_RECORDS = ("profile_unset", "profile_delete", "item_delete", "track_id_unbind")

TABLE_OF_RECORDS = {
    "events": EVENT_RECORDS,
    "users": tuple(t for t in PROFILE_RECORDS if t not in UNTYPED_PROPERTY_RECORDS),
    "items": ("item_set",),
}

MAX_ID_LENGTH = 255
JSON_KEYS = "_k"


@dataclass(frozen=True)
class Check:
    field: str
    condition: str
    reason: str  # a SQL expression yielding the message
    field_sql: str | None = None  # when the field depends on the record

    @property
    def field_expr(self) -> str:
        return self.field_sql or literal(self.field)


def _msg(text: str) -> str:
    return literal(text)


def record_checks(
    *, now_ms: int, max_future_ms: int, max_past_ms: int, bad_events: dict[str, str] | None = None
) -> list[Check]:
    """Checks on the canonical fields, in the order their reasons are reported.

    ``bad_events`` maps each event name of the batch that breaks the name rules to its reason: names are
    checked once per distinct name in Python, not once per record in SQL.
    """
    types = literal([t.value for t in RecordType])
    needs_distinct = literal([t for t in (t.value for t in RecordType) if not t.startswith("item_")])
    ev_types = literal(list(EVENT_RECORDS))
    lo, hi = now_ms - max_past_ms, now_ms + max_future_ms
    # A time too far out for a timestamp (9e18 ms) is shown as its number: formatting it would overflow and
    # fail the whole batch instead of refusing this record.
    ts = (
        "CASE WHEN time BETWEEN -9000000000000 AND 9000000000000 "
        "THEN strftime(make_timestamp(time * 1000), '%Y-%m-%d %H:%M:%S') || ' UTC' "
        "ELSE time::VARCHAR || ' ms' END"
    )
    return [
        Check(
            "record",
            "_error IS NOT NULL",
            "_error",
            "CASE WHEN starts_with(_error, 'time') THEN 'time' "
            "WHEN starts_with(_error, 'properties') THEN 'properties' ELSE 'record' END",
        ),
        Check("type", "type IS NULL", _msg("type is missing")),
        Check(
            "type",
            f"NOT list_contains({types}, type)",
            f"'unknown record type ' || to_json(type)::VARCHAR || '; expected one of ' || "
            f"array_to_string({types}, ', ')",
        ),
        Check(
            "distinct_id",
            f"list_contains({needs_distinct}, type) AND (distinct_id IS NULL OR distinct_id = '')",
            _msg("distinct_id is missing: every record needs distinct_id (or an identities object)"),
        ),
        Check(
            "distinct_id",
            f"length(distinct_id) > {MAX_ID_LENGTH}",
            _msg(f"distinct_id is longer than {MAX_ID_LENGTH} characters"),
        ),
        Check("event", f"list_contains({ev_types}, type) AND event IS NULL", _msg("event is missing")),
        *_event_name_checks(ev_types, bad_events or {}),
        Check(
            "time",
            f"list_contains({ev_types}, type) AND time IS NULL",
            _msg("time is missing: events need time as epoch milliseconds (UTC)"),
        ),
        Check(
            "time",
            f"time IS NOT NULL AND time < {lo}",
            f"'time ' || {ts} || ' is older than the project accepts ({max_past_ms // 86_400_000} days); "
            "is it epoch seconds instead of milliseconds?'",
        ),
        Check(
            "time",
            f"time IS NOT NULL AND time > {hi}",
            f"'time ' || {ts} || ' is in the future by more than the project accepts "
            f"({max_future_ms // 1000} seconds); check the client clock'",
        ),
        Check(
            "original_id",
            "type = 'track_signup' AND (original_id IS NULL OR original_id = '')",
            _msg("track_signup needs original_id: the anonymous id to bind to the login id in distinct_id"),
        ),
        Check(
            "original_id",
            "type = 'track_signup' AND original_id = distinct_id",
            _msg("track_signup has original_id equal to distinct_id; nothing to bind"),
        ),
        Check(
            "item_id",
            f"list_contains({literal(list(ITEM_RECORDS))}, type) AND (item_id IS NULL OR item_type IS NULL)",
            _msg("item records need item_type and item_id"),
        ),
        Check(
            "identities",
            "identities IS NOT NULL AND json_type(identities) <> 'OBJECT'",
            _msg('identities must be an object of id type → id value, e.g. {"$identity_mobile": "13800000000"}'),
        ),
        Check(
            "identities",
            "type = 'track_id_unbind' AND (identities IS NULL OR identities::VARCHAR = '{}')",
            _msg("track_id_unbind needs identities: the ids to detach from the person"),
        ),
    ]


def _event_name_checks(ev_types: str, bad_events: dict[str, str]) -> list[Check]:
    if not bad_events:
        return []
    names = literal(sorted(bad_events))
    whens = " ".join(f"WHEN {literal(n)} THEN {literal(r)}" for n, r in sorted(bad_events.items()))
    return [
        Check("event", f"list_contains({ev_types}, type) AND list_contains({names}, event)", f"CASE event {whens} END")
    ]


def event_name_problem(name: str) -> str | None:
    """Why an event name is refused (Sensors rules), or None."""
    return name_problem(name, what="event", reserved=RESERVED_EVENT_NAMES)


def name_checks(bad_names: dict[str, str], props: list[PropSource], keys: str | None) -> list[Check]:
    """Reject records that carry a property whose name breaks the rules (the reason names it).

    ``keys`` is the SQL for each record's list of property names, when properties come as JSON objects.
    """
    checks: list[Check] = []
    if keys and bad_names:
        names = literal(sorted(bad_names))
        first_bad = f"list_filter({keys}, lambda k: list_contains({names}, k))[1]"
        whens = " ".join(f"WHEN {literal(n)} THEN {literal(r)}" for n, r in sorted(bad_names.items()))
        checks.append(Check("properties", f"{first_bad} IS NOT NULL", f"CASE {first_bad} {whens} END"))
    for prop in props:
        if prop.kind == "typed" and prop.name in bad_names:
            checks.append(Check(prop.name, f"{ident(prop.column)} IS NOT NULL", _msg(bad_names[prop.name])))
    return checks


def table_name_checks(refused: dict[tuple[str, str], str], props: list[PropSource], json_refusals: bool) -> list[Check]:
    """Reject the records of a table that carry a name refused in that table (a case collision, a full table).

    Unlike :func:`name_checks`, a name is refused per table: ``Revenue`` may clash with the events' ``revenue``
    and still be a fine profile property. JSON properties are matched beforehand by a join (the loader's
    ``_ul_refused`` rows, columns ``_ref_name`` and ``_ref_reason``), because one ``CASE`` branch per refused
    name would copy the list of names into every branch: thousands of names made that quadratic in memory.
    """
    checks: list[Check] = []
    if json_refusals:
        checks.append(Check("properties", "_ref_reason IS NOT NULL", "_ref_reason", "_ref_name"))
    for (table, name), reason in sorted(refused.items()):
        rows_of_table = f"list_contains({literal(list(TABLE_OF_RECORDS[table]))}, type)"
        for prop in props:
            if prop.kind == "typed" and prop.name == name:
                checks.append(Check(prop.name, f"{rows_of_table} AND {ident(prop.column)} IS NOT NULL", _msg(reason)))
    return checks


def json_properties_check(json_column: str) -> Check:
    col = ident(json_column)
    return Check(
        "properties",
        f"{col} IS NOT NULL AND {JSON_KEYS} IS NULL",
        _msg("properties must be a JSON object of name → value"),
    )


def value_expr(prop: PropSource, ptype: PropertyType) -> str:
    """SQL for the property's value as its registered type (NULL where absent or unreadable)."""
    src = _source(prop)
    if prop.kind == "json":
        text = f"({src}->>'$')"
        return {
            PropertyType.NUMBER: f"TRY_CAST({src} AS DOUBLE)",
            PropertyType.BOOL: f"TRY_CAST({src} AS BOOLEAN)",
            PropertyType.STRING: text,
            PropertyType.DATETIME: f"TRY_CAST({text} AS TIMESTAMP)",
            PropertyType.DATE: f"TRY_CAST({text} AS DATE)",
            PropertyType.LIST: f"TRY_CAST(from_json({src}, '[\"VARCHAR\"]') AS VARCHAR[])",
        }[ptype]
    if typed_family(prop.duck_type) == ptype:
        return f"CAST({src} AS {ptype.sql_type})"
    return f"TRY_CAST({src} AS {ptype.sql_type})"


def conflict_check(prop: PropSource, ptype: PropertyType, table: str) -> Check | None:
    """The check that a value fits the registered type; None when it always does."""
    src = _source(prop)
    rows_of_table = f"list_contains({literal(list(TABLE_OF_RECORDS[table]))}, type)"
    label = f"property {prop.name!r} is {ptype.value}"
    if prop.kind == "typed":
        family = typed_family(prop.duck_type)
        if family == ptype:
            return None
        if prop.duck_type == "VARCHAR":  # text columns (CSV) are read as the registered type
            cond = f"{rows_of_table} AND {src} IS NOT NULL AND {value_expr(prop, ptype)} IS NULL"
            reason = f"{literal(label + '; cannot read ')} || to_json({src})::VARCHAR || ' as {ptype.value}'"
            return Check(prop.name, cond, reason)
        got = family.value if family else prop.duck_type
        return Check(prop.name, f"{rows_of_table} AND {src} IS NOT NULL", _msg(f"{label}; got {got}"))
    kind = f"json_type({src})"
    accepted = literal([*JSON_KINDS[ptype], "NULL"])  # JSON null: not set
    shape_ok = None
    if ptype is PropertyType.DATETIME:
        shape_ok = (
            f"regexp_full_match({src}->>'$', {literal(DATETIME_REGEX)}) AND {value_expr(prop, ptype)} IS NOT NULL"
        )
    elif ptype is PropertyType.DATE:
        shape_ok = f"regexp_full_match({src}->>'$', {literal(DATE_REGEX)}) AND {value_expr(prop, ptype)} IS NOT NULL"
    elif ptype is PropertyType.LIST:
        shape_ok = f"list_bool_and(list_transform(json_extract({src}, '$[*]'), lambda x: json_type(x) = 'VARCHAR'))"
    # One json_type per value: a SQL NULL (key absent) gives NULL, so the condition is false for it.
    wrong_kind = f"{kind} NOT IN {_tuple(accepted)}"
    if shape_ok is not None:
        wrong_kind = f"({wrong_kind} OR ({kind} <> 'NULL' AND NOT ({shape_ok})))"
    cond = f"{rows_of_table} AND {wrong_kind}"
    reason = f"{literal(label + '; got ')} || {json_kind_label(kind)} || ' ' || left(({src})::VARCHAR, 60)"
    return Check(prop.name, cond, reason)


def json_kind_label(kind: str) -> str:
    """SQL naming a JSON value's kind (``kind`` is a json_type expression) in the registry's words."""
    return (
        f"CASE {kind} WHEN 'VARCHAR' THEN 'STRING' WHEN 'BOOLEAN' THEN 'BOOL' WHEN 'ARRAY' THEN 'LIST' "
        "WHEN 'OBJECT' THEN 'an object' WHEN 'BIGINT' THEN 'NUMBER' WHEN 'UBIGINT' THEN 'NUMBER' "
        f"WHEN 'DOUBLE' THEN 'NUMBER' ELSE {kind} END"
    )


def typed_family(duck_type: str) -> PropertyType | None:
    """The property type a DuckDB column type stores."""
    t = duck_type.upper()
    if t in (
        "DOUBLE",
        "FLOAT",
        "BIGINT",
        "INTEGER",
        "SMALLINT",
        "TINYINT",
        "HUGEINT",
        "UBIGINT",
        "UINTEGER",
        "USMALLINT",
        "UTINYINT",
        "REAL",
    ) or t.startswith("DECIMAL"):
        return PropertyType.NUMBER
    if t == "BOOLEAN":
        return PropertyType.BOOL
    if t == "VARCHAR":
        return PropertyType.STRING
    if t.startswith("TIMESTAMP"):
        return PropertyType.DATETIME
    if t == "DATE":
        return PropertyType.DATE
    if t == "VARCHAR[]":
        return PropertyType.LIST
    return None


def _source(prop: PropSource) -> str:
    if prop.kind == "json":  # properties arrive as MAP(VARCHAR, JSON): one parse per record, upstream
        return f"{ident(prop.column)}[{literal(prop.name)}]"
    return ident(prop.column)


def _tuple(list_literal: str) -> str:
    return "(" + list_literal.strip("[]") + ")"
