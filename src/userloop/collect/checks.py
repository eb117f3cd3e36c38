"""Front-line checks: the rules a record can be judged by before it is acknowledged.

The loader checks everything again inside DuckDB; these checks exist so that the response to the SDK can say
which records were refused and why. They use the project's time policy and a snapshot of its property registry
(refreshed by the background loader after each batch); a conflict that only the loader can see (two new
properties of different types in flight at once) still lands in the dead letter, just not in the response.

Property names are judged as the store will judge them: a name that differs only in case from a registered
one, or from another name of the same record, refuses the record (the reason names both spellings), and so
does a record whose new names would take its table past the project's cap. New names of accepted records
count as pending until the next refresh, so a burst of requests cannot pass a cap together.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from userloop.collect.spool import Position
from userloop.schema.names import (
    MAX_TABLE_PROPERTIES,
    RESERVED_EVENT_NAMES,
    RESERVED_PROPERTY_NAMES,
    cap_reason,
    collision_reason,
    fold,
    name_problem,
)
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, PropertyType, RecordType

RECORD_TYPES = frozenset(t.value for t in RecordType)
EVENT_TYPES = frozenset({"track", "track_signup", "track_id_bind"})
MAX_ID_LENGTH = 255
_DATETIME = re.compile(DATETIME_REGEX)
_DATE = re.compile(DATE_REGEX)
_TABLE = {
    "profile_set": "users",
    "profile_set_once": "users",
    "profile_increment": "users",
    "profile_append": "users",
    "item_set": "items",
}


@dataclass
class Rules:
    """What one project accepts: time window, the known property types per table, and the caps on names."""

    max_future_ms: int = 3_600_000
    max_past_ms: int = 3650 * 86_400_000
    registry: dict[tuple[str, str], PropertyType] = field(default_factory=dict)
    max_properties: int = 1000
    max_table_properties: dict[str, int] = field(default_factory=lambda: dict(MAX_TABLE_PROPERTIES))
    spellings: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, folded name) → registered name
    counts: Counter[str] = field(default_factory=Counter)  # registered properties per table

    def __post_init__(self) -> None:
        for table, name in self.registry:
            self.spellings.setdefault((table, fold(name)), name)
            self.counts[table] += 1


@dataclass(eq=False)
class Admission:
    """One request's admitted new property names, and where its spool lines end once written."""

    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, folded name) → spelling
    end: Position | None = None


class Pending:
    """New property names the door admitted for one project that may not be in its registry snapshot yet.

    Each request's names are kept until the loader has committed past the request's spool lines; by then the
    snapshot in :class:`Rules` has been refreshed with them. So a refresh can never make the door forget names
    still on their way, and a burst of requests cannot pass a cap together.
    """

    def __init__(self) -> None:
        self._requests: list[Admission] = []
        self.spellings: dict[tuple[str, str], str] = {}  # (table, folded name) → the spelling admitted

    def seed(self, record: Any, end: Position) -> None:
        """Count the property names of a record already spooled (before a restart) until ``end`` is loaded."""
        if not isinstance(record, dict) or not isinstance(record.get("properties"), dict):
            return
        rtype = record.get("type")
        table = "events" if rtype in EVENT_TYPES else _TABLE.get(rtype) if isinstance(rtype, str) else None
        if table is None:
            return
        if not self._requests or self._requests[-1].end != end:
            self._requests.append(Admission(end=end))
        names = [n for n in record["properties"] if isinstance(n, str) and n != "$is_login_id"]
        self.add(self._requests[-1], table, names)

    def begin(self) -> Admission:
        """A new request's entry: its names, and (once spooled) where its lines end."""
        entry = Admission()
        self._requests.append(entry)
        return entry

    def spooled(self, entry: Admission, end: Position | None) -> None:
        """The request's lines end at ``end`` in the spool (``None``: it was not spooled, forget its names)."""
        if end is None or not entry.names:
            self._requests.remove(entry)
            if entry.names:
                self._rebuild()
        else:
            entry.end = end

    def prune(self, loaded: Position) -> None:
        """Forget the names of requests the loader has committed past."""
        kept = [r for r in self._requests if r.end is None or r.end > loaded]
        if len(kept) != len(self._requests):
            self._requests = kept
            self._rebuild()

    def add(self, entry: Admission, table: str, names: list[str]) -> None:
        for name in names:
            entry.names[(table, fold(name))] = name
            self.spellings[(table, fold(name))] = name

    def count(self, table: str, rules: Rules) -> int:
        """Admitted names of ``table`` that the registry snapshot does not hold yet."""
        return sum(1 for key in self.spellings if key[0] == table and key not in rules.spellings)

    def _rebuild(self) -> None:
        self.spellings = {key: name for r in self._requests for key, name in r.names.items()}


@lru_cache(maxsize=65_536)  # names repeat across records: check each once
def _event_name_problem(name: str) -> str | None:
    return name_problem(name, what="event", reserved=RESERVED_EVENT_NAMES)


@lru_cache(maxsize=65_536)
def _property_name_problem(name: str) -> str | None:
    return name_problem(name, reserved=RESERVED_PROPERTY_NAMES)


def problem(
    record: Any,
    rules: Rules,
    now_ms: int,
    pending: Pending | None = None,
    entry: Admission | None = None,
) -> tuple[str, str] | None:
    """(field, reason) of the first rule ``record`` breaks, or ``None``.

    ``pending`` holds the names admitted by requests still on their way to the registry; with ``entry`` (the
    current request's), the new names of a record that passes are admitted there.
    """
    if not isinstance(record, dict):
        return "record", "record is not a JSON object"
    rtype = record.get("type")
    if rtype not in RECORD_TYPES:
        return "type", f"unknown record type {rtype!r}; expected one of {', '.join(sorted(RECORD_TYPES))}"
    found = _ids(record, rtype) or _event(record, rtype, rules, now_ms)
    return found or _properties(record, rtype, rules, pending or Pending(), entry)


def _ids(record: dict[str, Any], rtype: str) -> tuple[str, str] | None:
    if rtype.startswith("item_"):
        if not isinstance(record.get("item_id"), str) or not isinstance(record.get("item_type"), str):
            return "item_id", "item records need item_type and item_id"
        return None
    distinct = record.get("distinct_id")
    if distinct is None and isinstance(record.get("identities"), dict):
        return None
    if not isinstance(distinct, str | int) or isinstance(distinct, bool) or distinct == "":
        return "distinct_id", "distinct_id is missing: every record needs distinct_id (or an identities object)"
    if len(str(distinct)) > MAX_ID_LENGTH:
        return "distinct_id", f"distinct_id is longer than {MAX_ID_LENGTH} characters"
    return None


def _event(record: dict[str, Any], rtype: str, rules: Rules, now_ms: int) -> tuple[str, str] | None:
    if rtype not in EVENT_TYPES:
        return None
    event = record.get("event")
    bad = _event_name_problem(event) if isinstance(event, str) else name_problem(event, what="event")
    if bad:
        return "event", bad
    when = record.get("time")
    if not isinstance(when, int) or isinstance(when, bool):
        return "time", "time is missing or not an integer: events need time as epoch milliseconds (UTC)"
    if when > now_ms + rules.max_future_ms:
        return "time", "time is in the future by more than the project accepts; check the client clock"
    if when < now_ms - rules.max_past_ms:
        return "time", "time is older than the project accepts; is it epoch seconds instead of milliseconds?"
    if rtype == "track_signup" and (
        not record.get("original_id") or record.get("original_id") == record.get("distinct_id")
    ):
        return "original_id", "track_signup needs original_id (the anonymous id), different from distinct_id"
    return None


def _properties(
    record: dict[str, Any],
    rtype: str,
    rules: Rules,
    pending: Pending,
    entry: Admission | None,
) -> tuple[str, str] | None:
    props = record.get("properties")
    if props is None:
        return None
    if not isinstance(props, dict):
        return "properties", "properties must be a JSON object of name → value"
    if len(props) > rules.max_properties:
        return "properties", f"more than {rules.max_properties} properties"
    table = "events" if rtype in EVENT_TYPES else _TABLE.get(rtype)
    for name, value in props.items():
        if name == "$is_login_id":
            continue
        bad = _property_name_problem(name) if isinstance(name, str) else name_problem(name)
        if bad:
            return name, bad
        known = rules.registry.get((table, name)) if table else None
        if known is not None and value is not None and not _fits(value, known):
            return name, f"property {name} is {known.value}; got {type(value).__name__} {str(value)[:60]!r}"
    if table is None:
        return None
    return _names(props, table, rules, pending, entry)


def _names(
    props: dict[str, Any],
    table: str,
    rules: Rules,
    pending: Pending,
    entry: Admission | None,
) -> tuple[str, str] | None:
    """Case collisions (with the registry, pending names, or inside the record) and the table's cap."""
    new: dict[str, str] = {}  # folded → spelling, of the names the table does not have yet
    for name in props:
        if name == "$is_login_id" or (table, name) in rules.registry:
            continue
        folded = fold(name)
        existing = rules.spellings.get((table, folded)) or pending.spellings.get((table, folded))
        if existing is not None and existing != name:
            return name, collision_reason(name, existing, registered=(table, existing) in rules.registry)
        if folded in new:
            return name, collision_reason(name, new[folded], registered=False)
        if existing is None:
            new[folded] = name
    if not new:
        return None
    cap = rules.max_table_properties.get(table)
    have = rules.counts[table] + pending.count(table, rules)
    if cap is not None and have + len(new) > cap:
        first = next(iter(new.values()))
        return first, cap_reason(first, table, cap, have=have, adding=len(new))
    if entry is not None:
        pending.add(entry, table, list(new.values()))
    return None


def _fits(value: object, ptype: PropertyType) -> bool:
    if ptype is PropertyType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ptype is PropertyType.BOOL:
        return isinstance(value, bool)
    if ptype is PropertyType.STRING:
        return isinstance(value, str)
    if ptype is PropertyType.LIST:
        return isinstance(value, list)
    if ptype is PropertyType.DATETIME:
        return isinstance(value, str) and bool(_DATETIME.match(value))
    return isinstance(value, str) and bool(_DATE.match(value))
