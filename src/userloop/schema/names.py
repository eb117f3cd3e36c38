"""Name rules for events and properties.

Sensors Analytics' rules, which teams moving from Sensors already follow: a name matches
``[a-zA-Z_$][a-zA-Z0-9_$]{0,99}``, and a few words that the storage or the query layer uses itself are
reserved. Names are compared case-insensitively against the reserved list, as Sensors does, because SQL
identifiers are case-insensitive in the engines we target.
"""

from __future__ import annotations

import re

from userloop.core.errors import ValidationError

NAME_PATTERN = re.compile(r"^[a-zA-Z_$][a-zA-Z0-9_$]{0,99}$")

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
    if not NAME_PATTERN.match(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        return (
            f"{what} name {shown!r} is invalid: it must start with a letter, '_' or '$' and contain only "
            f"letters, digits, '_' or '$' (at most 100 characters)"
        )
    if name.lower() in reserved:
        return f"{what} name {name!r} is reserved; choose another name"
    return None


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
