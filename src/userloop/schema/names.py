"""Name rules for events and properties.

Sensors Analytics' rules, which teams moving from Sensors already follow: a name matches
``[a-zA-Z_$][a-zA-Z0-9_$]{0,99}``, and a few words that the storage or the query layer uses itself are
reserved. Names are compared case-insensitively against the reserved list, as Sensors does, because SQL
identifiers are case-insensitive in the engines we target.

Property names become DuckDB columns, and DuckDB compares column names case-insensitively with ASCII-only
folding (``Revenue`` and ``revenue`` are one column; ``É`` and ``é``, ``ß`` and ``SS`` are two). The registry
compares names the same way, through :func:`fold`: two spellings with one fold are one property, and the
spelling registered first is the only one accepted. Valid names are ASCII anyway, so the two rules agree on
everything a name can be. A table holds at most :data:`MAX_TABLE_PROPERTIES` properties: every property is a
column, and an unbounded number of them would grow memory and DDL without bound.
"""

from __future__ import annotations

import re

from userloop.core.errors import ValidationError

NAME_PATTERN = re.compile(r"[a-zA-Z_$][a-zA-Z0-9_$]{0,99}")  # used with fullmatch: no trailing newline
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: The most properties (columns) one table of a project may have.
MAX_TABLE_PROPERTIES = {"events": 2000, "users": 1000, "items": 1000}

#: Words Sensors Analytics refuses as property names, plus the columns of our own tables.
RESERVED_PROPERTY_NAMES = frozenset(
    {
        "date",
        "datetime",
        "distinct_id",
        "event",
        "events",
        "event_id",
        "first_id",
        "id",
        "original_id",
        "device_id",
        "properties",
        "second_id",
        "time",
        "user_id",
        "users",
        "user_group",
        "user_tag",
        "received_at",
        "lib",
        "first_seen",
        "last_seen",
        "item_type",
        "item_id",
        "updated_at",
        "created_at",
        "type",
        "is_login_id",
    }
)

#: Event names that Sensors reserves for its own record kinds.
RESERVED_EVENT_NAMES = frozenset({"events", "event", "users", "profile_set", "profile_set_once"})


def name_problem(name: object, *, what: str = "property", reserved: frozenset[str] = frozenset()) -> str | None:
    """Why ``name`` is not a valid name, or ``None`` when it is fine."""
    if not isinstance(name, str) or not name:
        return f"{what} name is missing or not a string"
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        return (
            f"{what} name {shown!r} is invalid: it must start with a letter, '_' or '$' and contain only "
            f"letters, digits, '_' or '$' (at most 100 characters)"
        )
    if name.lower() in reserved:
        return f"{what} name {name!r} is reserved; choose another name"
    return None


def fold(name: str) -> str:
    """The form under which DuckDB compares column names: ASCII letters lower-cased, nothing else changed."""
    return name.translate(_ASCII_LOWER)


def collision_reason(name: str, existing: str, *, registered: bool) -> str:
    """Why ``name`` is refused when ``existing`` is the same column in another spelling."""
    where = "is already a property" if registered else "came first"
    return (
        f"property {name!r} differs only in case from {existing!r}, which {where}; property names are "
        f"case-insensitive (one column), so send it as {existing!r}"
    )


def cap_reason(name: str, table: str, cap: int, *, have: int, adding: int = 1) -> str:
    """Why a record with new properties is refused when they would take the table past its cap."""
    what = {"events": "event", "users": "profile", "items": "item"}.get(table, table)
    news = f"{adding} new {what} properties (the first: {name!r})" if adding > 1 else f"new {what} property {name!r}"
    return (
        f"{news} would take the project past its limit of {cap} {what} properties (it has {have}); "
        "send fewer distinct property names"
    )


def check_property_name(name: str) -> str:
    problem = name_problem(name, what="property", reserved=RESERVED_PROPERTY_NAMES)
    if problem:
        raise ValidationError(problem)
    return name


def check_event_name(name: str) -> str:
    problem = name_problem(name, what="event", reserved=RESERVED_EVENT_NAMES)
    if problem:
        raise ValidationError(problem)
    return name
