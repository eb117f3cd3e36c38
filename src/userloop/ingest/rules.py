"""Record rules: each declared once (field, condition, message), judged in two places.

The collector's door judges a record in Python before acknowledging it (:func:`first_broken`), so that the SDK's
response says which records were refused and why; the loader judges every staged record again in SQL, in one
vectorised pass (:func:`userloop.ingest.checks.record_checks`). Both read the same :data:`RECORD_RULES`, so a
record refused at the door carries the same field and message as it would in the dead letter.

Conditions read a record's *canonical* fields (:func:`canonical`: ``distinct_id`` falls back to the login or
anonymous id of ``identities``, as the JSON reader does), and a message is text with a record's values shown in
it (:class:`Shown`), rendered by Python at the door and by SQL in the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlglot import exp

from userloop.schema.types import EVENT_TYPES, RecordType
from userloop.store.sqlbuild import col, sql

LOGIN_ID = "$identity_login_id"
ANONYMOUS_ID = "$identity_anonymous_id"
RECORD_TYPES = tuple(t.value for t in RecordType)
EVENT_RECORDS = tuple(t.value for t in RecordType if t in EVENT_TYPES)
ITEM_RECORDS = tuple(t.value for t in RecordType if t.is_item)
#: Records about a person (everything but items): they need a distinct_id.
PERSON_RECORDS = tuple(t for t in RECORD_TYPES if t not in ITEM_RECORDS)
MAX_ID_LENGTH = 255
#: Times beyond this many milliseconds cannot be shown as a date: they are shown as their number.
SHOWABLE_MS = 9_000_000_000_000

Canonical = Mapping[str, Any]


@dataclass(frozen=True)
class Window:
    """The event times a project accepts at one moment: ``lo`` ≤ time ≤ ``hi`` (epoch ms)."""

    lo: int
    hi: int


# conditions -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Missing:
    """The field is absent or empty."""

    field: str

    def sql(self, window: Window) -> exp.Expr:
        return sql("$f = '' OR $f IS NULL", f=col(self.field))

    def holds(self, record: Canonical, window: Window) -> bool:
        return record.get(self.field) in (None, "")


@dataclass(frozen=True)
class Null:
    """The field is absent."""

    field: str

    def sql(self, window: Window) -> exp.Expr:
        return sql("$f IS NULL", f=col(self.field))

    def holds(self, record: Canonical, window: Window) -> bool:
        return record.get(self.field) is None


@dataclass(frozen=True)
class Unknown:
    """The field is set to a value outside ``values``."""

    field: str
    values: tuple[str, ...]

    def sql(self, window: Window) -> exp.Expr:
        return sql("NOT list_contains($values, $f)", values=list(self.values), f=col(self.field))

    def holds(self, record: Canonical, window: Window) -> bool:
        value = record.get(self.field)
        return value is not None and value not in self.values


@dataclass(frozen=True)
class Longer:
    """The field's text is longer than ``limit`` characters."""

    field: str
    limit: int

    def sql(self, window: Window) -> exp.Expr:
        return sql("length($f) > $n", f=col(self.field), n=self.limit)

    def holds(self, record: Canonical, window: Window) -> bool:
        value = record.get(self.field)
        return value is not None and len(value) > self.limit


@dataclass(frozen=True)
class Same:
    """Two fields hold the same value."""

    field: str
    other: str

    def sql(self, window: Window) -> exp.Expr:
        return sql("$a = $b", a=col(self.field), b=col(self.other))

    def holds(self, record: Canonical, window: Window) -> bool:
        value = record.get(self.field)
        return value is not None and value == record.get(self.other)


@dataclass(frozen=True)
class Early:
    """The time is before the project's window."""

    def sql(self, window: Window) -> exp.Expr:
        return sql("time IS NOT NULL AND time < $lo", lo=window.lo)

    def holds(self, record: Canonical, window: Window) -> bool:
        return record.get("time") is not None and record["time"] < window.lo


@dataclass(frozen=True)
class Late:
    """The time is after the project's window."""

    def sql(self, window: Window) -> exp.Expr:
        return sql("time IS NOT NULL AND time > $hi", hi=window.hi)

    def holds(self, record: Canonical, window: Window) -> bool:
        return record.get("time") is not None and record["time"] > window.hi


@dataclass(frozen=True)
class NotObject:
    """The (JSON) field is set but is not an object."""

    field: str

    def sql(self, window: Window) -> exp.Expr:
        return sql("$f IS NOT NULL AND json_type($f) <> 'OBJECT'", f=col(self.field))

    def holds(self, record: Canonical, window: Window) -> bool:
        value = record.get(self.field)
        return value is not None and not isinstance(value, dict)


@dataclass(frozen=True)
class EmptyObject:
    """The (JSON) field is absent or ``{}``."""

    field: str

    def sql(self, window: Window) -> exp.Expr:
        return sql("$f IS NULL OR CAST($f AS VARCHAR) = '{}'", f=col(self.field))

    def holds(self, record: Canonical, window: Window) -> bool:
        value = record.get(self.field)
        return value is None or value == {}


Condition = Missing | Null | Unknown | Longer | Same | Early | Late | NotObject | EmptyObject


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
        value = record.get(self.field)
        if self.how == "json":
            return orjson.dumps(value).decode()
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

    def condition(self, window: Window) -> exp.Expr:
        """The rule as a SQL condition over the staged records."""
        cond = self.when.sql(window)
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

    def broken_by(self, record: Canonical, window: Window) -> bool:
        return (self.records is None or record.get("type") in self.records) and self.when.holds(record, window)

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


@dataclass(frozen=True)
class _AnyNull:
    """One of the fields is absent (item records need both their type and their id)."""

    fields: tuple[str, ...]

    def sql(self, window: Window) -> exp.Expr:
        return exp.or_(*(sql("$f IS NULL", f=col(f)) for f in self.fields))

    def holds(self, record: Canonical, window: Window) -> bool:
        return any(record.get(f) is None for f in self.fields)


ITEM_IDS_MISSING = _AnyNull(("item_id", "item_type"))
EVENT_MISSING = Rule("event", Null("event"), ("event is missing",), EVENT_RECORDS)

#: Properties that are not an object of name → value.
PROPERTIES_NOT_OBJECT = "properties must be a JSON object of name → value"
#: A time that is not whole epoch milliseconds (judged where records are read: the JSON reader, the door).
TIME_NOT_INTEGER = "time must be an integer: epoch milliseconds (UTC)"


def canonical(record: Mapping[str, Any]) -> dict[str, Any]:
    """A raw record's canonical fields as the loader's JSON reader derives them (see
    :mod:`userloop.ingest.jsonl`): ids as text, ``distinct_id`` falling back to the identities' login or
    anonymous id, ``time`` only when it is an integer."""
    identities = record.get("identities")
    ids = identities if isinstance(identities, dict) else {}
    distinct = record.get("distinct_id")
    if distinct is None:
        distinct = ids.get(LOGIN_ID) if ids.get(LOGIN_ID) is not None else ids.get(ANONYMOUS_ID)
    when = record.get("time")
    return {
        "type": _text(record.get("type")),
        "event": _text(record.get("event")),
        "distinct_id": _text(distinct),
        "original_id": _text(record.get("original_id")),
        "time": when if isinstance(when, int) and not isinstance(when, bool) else None,
        "item_type": _text(record.get("item_type")),
        "item_id": _text(record.get("item_id")),
        "identities": identities,
    }


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def first_broken(rules: list[Rule], record: Canonical, window: Window) -> Rule | None:
    """The first rule ``record`` (canonical fields) breaks, or None."""
    return next((r for r in rules if r.broken_by(record, window)), None)
