"""Per-record checks, as SQL trees over the staged relation.

Each check is a condition and a reason; the loader folds them into one ``CASE`` so that every record gets the
first reason that applies (the field and a message the user can act on) in a single vectorised pass. The rules
on a record's own fields are declared once in :mod:`userloop.ingest.rules`, which the collector's door reads too.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlglot import exp

from userloop.ingest.rules import (
    EVENT_MISSING,
    EVENT_RECORDS,
    ITEM_RECORDS,
    KIND_LABELS,
    PROFILE_RECORDS,
    PROPERTIES_NOT_OBJECT,
    SHOWN_CHARS,
    TABLE_OF_RECORDS,
    UNTYPED_PROPERTY_RECORDS,
    conflict_prefix,
    event_name_problem,
    record_rules,
)
from userloop.ingest.source import PropSource
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, JSON_KINDS, PropertyType
from userloop.store.sqlbuild import col, literal, sql, type_

__all__ = [
    "EVENT_RECORDS",
    "ITEM_RECORDS",
    "PROFILE_RECORDS",
    "TABLE_OF_RECORDS",
    "UNTYPED_PROPERTY_RECORDS",
    "event_name_problem",
]

JSON_KEYS = "_k"
#: Each record's list of JSON property names (a column of the JSON sources).
KEYS = col(JSON_KEYS)


@dataclass(frozen=True)
class Check:
    """A record check: the ``condition`` that refuses a record, on ``field``, with ``reason``.

    ``value``: a JSON value the reason goes on to show (its kind and text, see :func:`shown_value`); that part
    is added once after the checks rather than in each, which keeps a wide batch's statement small.
    """

    field: str
    condition: exp.Expr
    reason: exp.Expr  # yields the message
    field_sql: exp.Expr | None = None  # when the field depends on the record
    value: exp.Expr | None = None

    @property
    def field_expr(self) -> exp.Expr:
        return self.field_sql or literal(self.field)


def _msg(text: str) -> exp.Expr:
    return exp.Literal.string(text)


def of_types(types: tuple[str, ...] | list[str]) -> exp.Expr:
    """The records of these types."""
    return sql("list_contains($types, type)", types=list(types))


def record_checks(*, max_future_ms: int, max_past_ms: int, bad_events: dict[str, str] | None = None) -> list[Check]:
    """Checks on the canonical fields, in the order their reasons are reported; the time window's bounds are
    the columns :data:`userloop.ingest.rules.WINDOW_LO` and ``WINDOW_HI``.

    ``bad_events`` maps each event name of the batch that breaks the name rules to its reason: names are
    checked once per distinct name in Python, not once per record in SQL.
    """
    reader_error = Check(
        "record",
        sql("_error IS NOT NULL"),
        col("_error"),
        sql(
            "CASE WHEN starts_with(_error, 'time') THEN 'time' "
            "WHEN starts_with(_error, 'properties') THEN 'properties' ELSE 'record' END"
        ),
    )
    checks = [reader_error]
    for rule in record_rules(max_past_ms=max_past_ms, max_future_ms=max_future_ms):
        checks.append(Check(rule.field, rule.condition(), rule.reason()))
        if rule is EVENT_MISSING:
            checks += _event_name_checks(bad_events or {})
    return checks


def _event_name_checks(bad_events: dict[str, str]) -> list[Check]:
    if not bad_events:
        return []
    cond = sql("$records AND list_contains($names, event)", records=of_types(EVENT_RECORDS), names=sorted(bad_events))
    return [Check("event", cond, _lookup(col("event"), bad_events))]


def _lookup(key: exp.Expr, reasons: dict[str, str]) -> exp.Expr:
    """``CASE key WHEN name THEN reason … END``."""
    ifs = [exp.If(this=exp.Literal.string(n), true=exp.Literal.string(r)) for n, r in sorted(reasons.items())]
    return exp.Case(this=key, ifs=ifs)


def name_checks(bad_names: dict[str, str], props: list[PropSource], json_keys: bool) -> list[Check]:
    """Reject records that carry a property whose name breaks the rules (the reason names it).

    ``json_keys``: properties come as JSON objects, whose names are in each record's :data:`KEYS`.
    """
    checks: list[Check] = []
    if json_keys and bad_names:
        first_bad = sql("list_filter($keys, lambda k: list_contains($names, k))[1]", keys=KEYS, names=sorted(bad_names))
        checks.append(Check("properties", sql("$b IS NOT NULL", b=first_bad), _lookup(first_bad, bad_names)))
    for prop in props:
        if prop.kind == "typed" and prop.name in bad_names:
            checks.append(Check(prop.name, sql("$c IS NOT NULL", c=col(prop.column)), _msg(bad_names[prop.name])))
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
        checks.append(Check("properties", sql("_ref_reason IS NOT NULL"), col("_ref_reason"), col("_ref_name")))
    for (table, name), reason in sorted(refused.items()):
        for prop in props:
            if prop.kind == "typed" and prop.name == name:
                cond = sql("$records AND $c IS NOT NULL", records=of_types(TABLE_OF_RECORDS[table]), c=col(prop.column))
                checks.append(Check(prop.name, cond, _msg(reason)))
    return checks


def json_properties_check(json_column: str) -> Check:
    cond = sql("$c IS NOT NULL AND $keys IS NULL", c=col(json_column), keys=KEYS)
    return Check("properties", cond, _msg(PROPERTIES_NOT_OBJECT))


def _cast(value: exp.Expr, sql_type: str, *, safe: bool = True) -> exp.Expr:
    return (exp.TryCast if safe else exp.Cast)(this=value, to=type_(sql_type))


def value_expr(prop: PropSource, ptype: PropertyType) -> exp.Expr:
    """The property's value as its registered type (NULL where absent or unreadable)."""
    src = _source(prop)
    if prop.kind == "json":
        text = sql("$v ->> '$'", v=src)
        if ptype in (PropertyType.NUMBER, PropertyType.BOOL):
            return _cast(src, ptype.sql_type)
        if ptype is PropertyType.STRING:
            return exp.paren(text)
        if ptype is PropertyType.LIST:
            return _cast(sql("from_json($v, '[\"VARCHAR\"]')", v=src), "VARCHAR[]")
        return _cast(text, ptype.sql_type)
    return _cast(src, ptype.sql_type, safe=typed_family(prop.duck_type) != ptype)


@functools.lru_cache(maxsize=16_384)  # a project's columns come back batch after batch
def conflict_check(prop: PropSource, ptype: PropertyType, table: str) -> Check | None:
    """The check that a value fits the registered type; None when it always does."""
    src = _source(prop)
    rows_of_table = of_types(TABLE_OF_RECORDS[table])
    label = f"property {prop.name!r} is {ptype.value}"
    if prop.kind == "typed":
        family = typed_family(prop.duck_type)
        if family == ptype:
            return None
        if prop.duck_type == "VARCHAR":  # text columns (CSV) are read as the registered type
            cond = sql(
                "$rows AND $v IS NOT NULL AND $typed IS NULL", rows=rows_of_table, v=src, typed=value_expr(prop, ptype)
            )
            reason = sql(
                "$label || CAST(to_json($v) AS VARCHAR) || $as",
                label=label + "; cannot read ",
                v=src,
                **{"as": f" as {ptype.value}"},
            )
            return Check(prop.name, cond, reason)
        got = family.value if family else prop.duck_type
        return Check(prop.name, sql("$rows AND $v IS NOT NULL", rows=rows_of_table, v=src), _msg(f"{label}; got {got}"))
    accepted = [exp.Literal.string(k) for k in (*JSON_KINDS[ptype], "NULL")]  # JSON null: not set
    # One json_type per value: a SQL NULL (key absent) gives NULL, so the condition is false for it.
    if ptype in (PropertyType.DATETIME, PropertyType.DATE):
        regex = DATETIME_REGEX if ptype is PropertyType.DATETIME else DATE_REGEX
        cond = sql(
            "$rows AND (json_type($v) NOT IN ($accepted) OR (json_type($v) <> 'NULL' AND "
            "NOT (regexp_full_match($v ->> '$', $re) AND $typed IS NOT NULL)))",
            rows=rows_of_table,
            v=src,
            accepted=accepted,
            re=regex,
            typed=value_expr(prop, ptype),
        )
    elif ptype is PropertyType.LIST:
        cond = sql(
            "$rows AND (json_type($v) NOT IN ($accepted) OR (json_type($v) <> 'NULL' AND "
            "NOT list_bool_and(list_transform(TRY_CAST($v AS JSON[]), lambda x: json_type(x) = 'VARCHAR'))))",
            rows=rows_of_table,
            v=src,
            accepted=accepted,
        )
    else:
        cond = sql("$rows AND json_type($v) NOT IN ($accepted)", rows=rows_of_table, v=src, accepted=accepted)
    return Check(prop.name, cond, _msg(conflict_prefix(prop.name, ptype)), value=src)


def shown_value(reason: exp.Expr, value: exp.Expr) -> exp.Expr:
    """``reason`` followed by a JSON ``value``'s kind, in the registry's words, and its text (cut)."""
    kind = sql("json_type($v)", v=value)
    ifs = [exp.If(this=exp.Literal.string(k), true=exp.Literal.string(label)) for k, label in KIND_LABELS.items()]
    return sql(
        "$reason || $label || ' ' || left(CAST($v AS VARCHAR), $n)",
        reason=reason,
        label=exp.Case(this=kind, ifs=ifs, default=kind.copy()),
        v=value,
        n=SHOWN_CHARS,
    )


_NUMBER_TYPES = frozenset(
    {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT"}
    | {"UTINYINT", "REAL"}
)


def typed_family(duck_type: str) -> PropertyType | None:
    """The property type a DuckDB column type stores."""
    t = duck_type.upper()
    if t in _NUMBER_TYPES or t.startswith("DECIMAL"):
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


def _source(prop: PropSource) -> exp.Expr:
    if prop.kind == "json":  # properties arrive as MAP(VARCHAR, JSON): one parse per record, upstream
        return exp.Bracket(this=col(prop.column), expressions=[exp.Literal.string(prop.name)])
    return col(prop.column)
