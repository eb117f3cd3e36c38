"""Record rules: each declared once (field, condition, message), judged in two places.

The collector's door judges a record in Python before acknowledging it (:class:`RulesByType`), so that the SDK's
response says which records were refused and why; the loader judges every staged record again in SQL, in one
vectorised pass (:func:`userloop.ingest.checks.record_checks`). Both take the same :func:`record_rules`, so a
record refused at the door carries the same field and message as it would in the dead letter; the same holds for
event and property names (:func:`event_name_problem`, :func:`property_name_problem`) and for property values
(:func:`fits`, :func:`conflict_message`).

Each condition is written twice, side by side in its class: as SQL over the staged records and as a Python
expression over a record's *canonical* fields (``distinct_id`` falls back to the login or anonymous id of
``identities``, as the JSON reader does). A message is text with a record's values shown in it (:class:`Shown`),
rendered by Python at the door and by SQL in the loader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlglot import exp

from userloop.ingest.identity import ANONYMOUS, LOGIN
from userloop.schema.names import RESERVED_EVENT_NAMES, RESERVED_PROPERTY_NAMES, name_problem
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, EVENT_TYPES, JSON_KINDS, PropertyType, RecordType
from userloop.store.sqlbuild import col, sql

RECORD_TYPES = tuple(t.value for t in RecordType)
EVENT_RECORDS = tuple(t.value for t in RecordType if t in EVENT_TYPES)
ITEM_RECORDS = tuple(t.value for t in RecordType if t.is_item)
PROFILE_RECORDS = tuple(t.value for t in RecordType if t.is_profile)
#: Records about a person (everything but items): they need a distinct_id.
PERSON_RECORDS = tuple(t for t in RECORD_TYPES if t not in ITEM_RECORDS)
#: Record types whose properties are *not* values to type-check (unset names properties to clear).
UNTYPED_PROPERTY_RECORDS = ("profile_unset", "profile_delete", "item_delete", "track_id_unbind")
#: The table whose properties each kind of record carries.
TABLE_OF_RECORDS = {
    "events": EVENT_RECORDS,
    "users": tuple(t for t in PROFILE_RECORDS if t not in UNTYPED_PROPERTY_RECORDS),
    "items": ("item_set",),
}
MAX_ID_LENGTH = 255
#: Times beyond this many milliseconds cannot be shown as a date: they are shown as their number.
SHOWABLE_MS = 9_000_000_000_000

Canonical = Mapping[str, Any]


#: The columns the loader gives the window's bounds (bound parameters), for the time rules' SQL.
WINDOW_LO = "_ul_lo"
WINDOW_HI = "_ul_hi"


class Window(NamedTuple):
    """The event times a project accepts at one moment: ``lo`` ≤ time ≤ ``hi`` (epoch ms)."""

    lo: int
    hi: int


# conditions: each is SQL over the staged records (``sql``) and a Python expression (``py``) over a record's
# canonical fields, as locals ``f_<field>``, and the window's ``lo`` and ``hi`` (see RulesByType) ---------------
@dataclass(frozen=True)
class Missing:
    """The field is absent or empty."""

    field: str

    def sql(self) -> exp.Expr:
        return sql("$f = '' OR $f IS NULL", f=col(self.field))

    def py(self) -> str:
        return f"(f_{self.field} is None or f_{self.field} == '')"


@dataclass(frozen=True)
class Null:
    """The field is absent."""

    field: str

    def sql(self) -> exp.Expr:
        return sql("$f IS NULL", f=col(self.field))

    def py(self) -> str:
        return f"f_{self.field} is None"


@dataclass(frozen=True)
class Unknown:
    """The field is set to a value outside ``values``."""

    field: str
    values: tuple[str, ...]

    def sql(self) -> exp.Expr:
        return sql("NOT list_contains($values, $f)", values=list(self.values), f=col(self.field))

    def py(self) -> str:
        return f"(f_{self.field} is not None and f_{self.field} not in {self.values!r})"


@dataclass(frozen=True)
class Longer:
    """The field's text is longer than ``limit`` characters."""

    field: str
    limit: int

    def sql(self) -> exp.Expr:
        return sql("length($f) > $n", f=col(self.field), n=self.limit)

    def py(self) -> str:
        return f"(f_{self.field} is not None and len(f_{self.field}) > {self.limit:d})"


@dataclass(frozen=True)
class Same:
    """Two fields hold the same value."""

    field: str
    other: str

    def sql(self) -> exp.Expr:
        return sql("$a = $b", a=col(self.field), b=col(self.other))

    def py(self) -> str:
        return f"(f_{self.field} is not None and f_{self.field} == f_{self.other})"


@dataclass(frozen=True)
class Early:
    """The time is before the project's window."""

    def sql(self) -> exp.Expr:
        return sql("time IS NOT NULL AND time < $lo", lo=col(WINDOW_LO))

    def py(self) -> str:
        return "(f_time is not None and f_time < lo)"


@dataclass(frozen=True)
class Late:
    """The time is after the project's window."""

    def sql(self) -> exp.Expr:
        return sql("time IS NOT NULL AND time > $hi", hi=col(WINDOW_HI))

    def py(self) -> str:
        return "(f_time is not None and f_time > hi)"


@dataclass(frozen=True)
class NotObject:
    """The (JSON) field is set but is not an object."""

    field: str

    def sql(self) -> exp.Expr:
        return sql("$f IS NOT NULL AND json_type($f) <> 'OBJECT'", f=col(self.field))

    def py(self) -> str:
        return f"(f_{self.field} is not None and type(f_{self.field}) is not dict)"


@dataclass(frozen=True)
class EmptyObject:
    """The (JSON) field is absent or ``{}``."""

    field: str

    def sql(self) -> exp.Expr:
        return sql("$f IS NULL OR CAST($f AS VARCHAR) = '{}'", f=col(self.field))

    def py(self) -> str:
        return f"(f_{self.field} is None or f_{self.field} == {{}})"


@dataclass(frozen=True)
class AnyNull:
    """One of the fields is absent (item records need both their type and their id)."""

    fields: tuple[str, ...]

    def sql(self) -> exp.Expr:
        return exp.or_(*(sql("$f IS NULL", f=col(f)) for f in self.fields))

    def py(self) -> str:
        return "(" + " or ".join(f"f_{f} is None" for f in self.fields) + ")"


Condition = Missing | Null | Unknown | Longer | Same | Early | Late | NotObject | EmptyObject | AnyNull


# what a message shows of the record -------------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """A record value inside a message: ``"json"`` (the value as JSON) or ``"time"`` (a UTC date-time)."""

    field: str
    how: str

    def sql(self) -> exp.Expr:
        if self.how == "json":
            return sql("CAST(to_json($f) AS VARCHAR)", f=col(self.field))
        # A time too far out for a timestamp (9e18 ms) is shown as its number: formatting it would overflow and
        # fail the whole batch instead of refusing this record.
        return sql(
            "CASE WHEN $f BETWEEN -$n AND $n THEN strftime(make_timestamp($f * 1000), '%Y-%m-%d %H:%M:%S') || ' UTC' "
            "ELSE CAST($f AS VARCHAR) || ' ms' END",
            f=col(self.field),
            n=SHOWABLE_MS,
        )

    def text(self, record: Canonical) -> str:
        if self.how == "json":
            return orjson.dumps(record.get(self.field)).decode()
        value: int = record[self.field]
        if -SHOWABLE_MS <= value <= SHOWABLE_MS:
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"
        return f"{value} ms"


@dataclass(frozen=True)
class Rule:
    """A record rule: records of ``records`` (every type when None) for which ``when`` holds are refused, on
    ``field``, with ``message`` (text and shown values)."""

    field: str
    when: Condition
    message: tuple[str | Shown, ...]
    records: tuple[str, ...] | None = None

    def condition(self) -> exp.Expr:
        """The rule as a SQL condition over the staged records (and the window's bounds :data:`WINDOW_LO`,
        :data:`WINDOW_HI`)."""
        cond = self.when.sql()
        if self.records is None:
            return cond
        return sql("list_contains($types, type) AND ($c)", types=list(self.records), c=cond)

    def reason(self) -> exp.Expr:
        """The message as a SQL expression (text only when nothing of the record is shown)."""
        parts = [p.sql() if isinstance(p, Shown) else exp.Literal.string(p) for p in self.message]
        out = parts[0]
        for part in parts[1:]:
            out = exp.DPipe(this=out, expression=part, safe=True)
        return out

    def text(self, record: Canonical) -> str:
        return "".join(p.text(record) if isinstance(p, Shown) else p for p in self.message)


def record_rules(*, max_past_ms: int, max_future_ms: int) -> list[Rule]:
    """The rules on a record's canonical fields, in the order their reasons are reported.

    The event name's rules are judged once per distinct name (:func:`userloop.ingest.checks.event_name_problem`),
    between ``event`` missing and ``time`` missing; properties are judged after these.
    """
    days, seconds = max_past_ms // 86_400_000, max_future_ms // 1000
    return [
        Rule("type", Null("type"), ("type is missing",)),
        Rule(
            "type",
            Unknown("type", RECORD_TYPES),
            ("unknown record type ", Shown("type", "json"), f"; expected one of {', '.join(RECORD_TYPES)}"),
        ),
        Rule(
            "distinct_id",
            Missing("distinct_id"),
            ("distinct_id is missing: every record needs distinct_id (or an identities object)",),
            PERSON_RECORDS,
        ),
        Rule(
            "distinct_id",
            Longer("distinct_id", MAX_ID_LENGTH),
            (f"distinct_id is longer than {MAX_ID_LENGTH} characters",),
        ),
        EVENT_MISSING,
        Rule(
            "time",
            Null("time"),
            ("time is missing: events need time as epoch milliseconds (UTC)",),
            EVENT_RECORDS,
        ),
        Rule(
            "time",
            Early(),
            (
                "time ",
                Shown("time", "time"),
                f" is older than the project accepts ({days} days); is it epoch seconds instead of milliseconds?",
            ),
        ),
        Rule(
            "time",
            Late(),
            (
                "time ",
                Shown("time", "time"),
                f" is in the future by more than the project accepts ({seconds} seconds); check the client clock",
            ),
        ),
        Rule(
            "original_id",
            Missing("original_id"),
            ("track_signup needs original_id: the anonymous id to bind to the login id in distinct_id",),
            ("track_signup",),
        ),
        Rule(
            "original_id",
            Same("original_id", "distinct_id"),
            ("track_signup has original_id equal to distinct_id; nothing to bind",),
            ("track_signup",),
        ),
        Rule("item_id", ITEM_IDS_MISSING, ("item records need item_type and item_id",), ITEM_RECORDS),
        Rule(
            "identities",
            NotObject("identities"),
            ('identities must be an object of id type → id value, e.g. {"$identity_mobile": "13800000000"}',),
        ),
        Rule(
            "identities",
            EmptyObject("identities"),
            ("track_id_unbind needs identities: the ids to detach from the person",),
            ("track_id_unbind",),
        ),
    ]


ITEM_IDS_MISSING = AnyNull(("item_id", "item_type"))
EVENT_MISSING = Rule("event", Null("event"), ("event is missing",), EVENT_RECORDS)


@lru_cache(maxsize=65_536)  # names repeat across records: judge each once
def event_name_problem(name: str) -> str | None:
    """Why an event name is refused (Sensors rules), or None."""
    return name_problem(name, what="event", reserved=RESERVED_EVENT_NAMES)


@lru_cache(maxsize=65_536)
def property_name_problem(name: str) -> str | None:
    """Why a property name is refused, or None."""
    return name_problem(name, reserved=RESERVED_PROPERTY_NAMES)


#: Properties that are not an object of name → value.
PROPERTIES_NOT_OBJECT = "properties must be a JSON object of name → value"
#: A time that is not whole epoch milliseconds (judged where records are read: the JSON reader, the door).
TIME_NOT_INTEGER = "time must be an integer: epoch milliseconds (UTC)"


#: A JSON value's kind (DuckDB's json_type) as messages name it: in the registry's words.
KIND_LABELS = {
    "VARCHAR": "STRING",
    "BOOLEAN": "BOOL",
    "ARRAY": "LIST",
    "OBJECT": "an object",
    "BIGINT": "NUMBER",
    "UBIGINT": "NUMBER",
    "DOUBLE": "NUMBER",
}
#: How much of a refused value a message shows.
SHOWN_CHARS = 60
_SHAPES = {PropertyType.DATETIME: re.compile(DATETIME_REGEX), PropertyType.DATE: re.compile(DATE_REGEX)}


def conflict_prefix(name: str, ptype: PropertyType) -> str:
    """The start of the message for a value that does not fit its property's type; the value's kind label
    (:data:`KIND_LABELS`), a space and its JSON text (:data:`SHOWN_CHARS` at most) follow."""
    return f"property {name!r} is {ptype.value}; got "


def json_kind(value: object) -> str:
    """DuckDB's json_type of a parsed JSON value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT" if value < 1 << 63 else "UBIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "VARCHAR"
    return "ARRAY" if isinstance(value, list) else "OBJECT"


#: The Python type a parsed JSON value of each kind has.
_PYTHON_TYPES: dict[str, type] = {
    "BIGINT": int,
    "UBIGINT": int,
    "HUGEINT": int,
    "DOUBLE": float,
    "BOOLEAN": bool,
    "VARCHAR": str,
    "ARRAY": list,
}
#: The Python types of the JSON values each property type accepts (from JSON_KINDS).
_ACCEPTED = {ptype: frozenset(_PYTHON_TYPES[k] for k in kinds) for ptype, kinds in JSON_KINDS.items()}


def fits(value: object, ptype: PropertyType) -> bool:
    """Whether a JSON value may be stored in a property of ``ptype`` (JSON null always may: it sets nothing).

    The loader judges the same in SQL (:func:`userloop.ingest.checks.conflict_check`): the kinds each type accepts
    (:data:`userloop.schema.types.JSON_KINDS`), the shape of date and date-time strings, text items in lists."""
    if value is None:
        return True
    if type(value) not in _ACCEPTED[ptype]:
        return False
    shape = _SHAPES.get(ptype)
    if shape is not None:
        return isinstance(value, str) and shape.fullmatch(value) is not None and _readable(value, ptype)
    if ptype is PropertyType.LIST:
        return isinstance(value, list) and all(type(v) is str for v in value)
    return True


def _readable(text: str, ptype: PropertyType) -> bool:
    """Whether a date(-time) string of the right shape is a real one (not the 31st of February)."""
    try:
        if ptype is PropertyType.DATETIME:
            datetime.fromisoformat(text)
        else:
            date.fromisoformat(text)
    except ValueError:
        return False
    return True


def conflict_message(name: str, ptype: PropertyType, value: object) -> str:
    """The message for ``value`` not fitting property ``name`` of ``ptype``."""
    shown = orjson.dumps(value).decode()[:SHOWN_CHARS]
    return f"{conflict_prefix(name, ptype)}{KIND_LABELS.get(json_kind(value), json_kind(value))} {shown}"


def _text_field(name: str) -> str:
    return (
        f"    f_{name} = get({name!r})\n"
        f"    if type(f_{name}) is not str and f_{name} is not None:\n"
        f"        f_{name} = as_json(f_{name})\n"
    )


#: Python statements that set ``f_<field>`` to a raw ``record``'s canonical field, as the loader's JSON reader
#: derives it (:mod:`userloop.ingest.jsonl`): ids as text, ``distinct_id`` falling back to the identities'
#: login or anonymous id, ``time`` only when it is an integer. In the order they must run.
_CANONICAL = {
    "identities": '    f_identities = get("identities")\n',
    "distinct_id": (
        '    f_distinct_id = get("distinct_id")\n'
        "    if f_distinct_id is None and type(f_identities) is dict:\n"
        "        f_distinct_id = f_identities.get(LOGIN)\n"
        "        if f_distinct_id is None:\n"
        "            f_distinct_id = f_identities.get(ANONYMOUS)\n"
        "    if type(f_distinct_id) is not str and f_distinct_id is not None:\n"
        "        f_distinct_id = as_json(f_distinct_id)\n"
    ),
    **{f: _text_field(f) for f in ("type", "event", "original_id", "item_type", "item_id")},
    "time": '    f_time = get("time")\n    if type(f_time) is not int:\n        f_time = None\n',
}


def _compile(name: str, body: str) -> Callable[..., Any]:
    """A function of ``(record, lo, hi)`` generated from Python source: the canonical fields ``body`` reads
    (``f_<field>``), then ``body``."""
    reads = set(re.findall(r"\bf_(\w+)", body))
    if "distinct_id" in reads:
        reads.add("identities")
    prelude = "".join(code for f, code in _CANONICAL.items() if f in reads)
    namespace: dict[str, Any] = {"LOGIN": LOGIN, "ANONYMOUS": ANONYMOUS, "as_json": _as_json}
    source = f"def {name}(record, lo, hi):\n    get = record.get\n{prelude}{body}"
    code = compile(source, f"<record rules: {name}>", "exec")
    exec(code, namespace)  # noqa: S102 -- source built here from the rules' own expressions, no input
    function: Callable[..., Any] = namespace[name]
    return function


def _as_json(value: object) -> str:
    return orjson.dumps(value).decode()


_canonical = _compile("canonical", "    return {" + ", ".join(f"{f!r}: f_{f}" for f in _CANONICAL) + "}\n")


def canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    """A raw record's canonical fields as the loader's JSON reader derives them (see ``_CANONICAL``)."""
    fields: dict[str, Any] = _canonical(record, 0, 0)
    return fields


class RulesByType:
    """The record rules of one time policy, compiled for each record type into one function of a raw record and
    the window that returns the index of the first rule it breaks. The door judges every record it acknowledges:
    one call, instead of one per rule and a dict of canonical fields, keeps it as fast as hand-written checks."""

    def __init__(self, *, max_past_ms: int, max_future_ms: int) -> None:
        rules = record_rules(max_past_ms=max_past_ms, max_future_ms=max_future_ms)
        #: the rules judged after the event's name (which is judged once per distinct name, not here)
        self.after_event_name = tuple(rules[rules.index(EVENT_MISSING) + 1 :])
        self.any_type = self._judge("any_type", [r for r in rules if r.records is None])
        # a record of a known type breaks no rule about its type
        self.by_type = {
            t: self._judge(t, [r for r in rules if r.field != "type" and (r.records is None or t in r.records)])
            for t in RECORD_TYPES
        }

    @staticmethod
    def _judge(name: str, rules: list[Rule]) -> tuple[tuple[Rule, ...], Callable[..., int]]:
        tests = "".join(f"    if {r.when.py()}:\n        return {i}\n" for i, r in enumerate(rules))
        return tuple(rules), _compile(f"judge_{name}", tests + "    return -1\n")

    def first(self, record: Mapping[str, Any], window: Window) -> Rule | None:
        """The first rule ``record`` (a raw record) breaks, or None."""
        rtype = record.get("type")
        rules, judge = self.by_type.get(rtype, self.any_type) if type(rtype) is str else self.any_type
        at = judge(record, window.lo, window.hi)
        return None if at < 0 else rules[at]
