"""Front-line checks: the rules a record can be judged by before it is acknowledged.

The loader checks everything again inside DuckDB; these checks exist so that the response to the SDK can say
which records were refused and why. The rules on a record's fields and on property values are the loader's own
(:mod:`userloop.ingest.rules`, judged here in Python), so a record gets the same field and message at the door
as in the dead letter. They use the project's time policy and a snapshot of its property registry
(refreshed by the background loader after each batch); a conflict that only the loader can see (two new
properties of different types in flight at once) still lands in the dead letter, just not in the response.

Property names are judged as the store will judge them: a name that differs only in case from a registered
one, or from another name of the same record, refuses the record (the reason names both spellings), and so
does a record whose new names would take its table past the project's cap. New names of accepted records
count as pending until the next refresh, so a burst of requests cannot pass a cap together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from userloop.collect.spool import Position
from userloop.ingest.rules import (
    EVENT_RECORDS,
    PROPERTIES_NOT_OBJECT,
    TABLE_OF_RECORDS,
    TIME_NOT_INTEGER,
    RulesByType,
    Window,
    canonical,
    conflict_message,
    event_name_problem,
    fits,
    property_name_problem,
)
from userloop.ingest.rules import RECORD_TYPES as _RECORD_TYPES
from userloop.schema.names import (
    MAX_TABLE_PROPERTIES,
    cap_reason,
    collision_reason,
    fold,
)
from userloop.schema.types import PropertyType

RECORD_TYPES = frozenset(_RECORD_TYPES)
#: The table whose properties a record type carries.
_TABLE = {rtype: table for table, records in TABLE_OF_RECORDS.items() for rtype in records}


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
        table = _TABLE.get(rtype) if isinstance(rtype, str) else None
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


@lru_cache(maxsize=64)
def _rules(max_past_ms: int, max_future_ms: int) -> RulesByType:
    return RulesByType(max_past_ms=max_past_ms, max_future_ms=max_future_ms)


@lru_cache(maxsize=16)  # a request's records share one now
def _judge(now_ms: int, max_past_ms: int, max_future_ms: int) -> tuple[RulesByType, Window]:
    return _rules(max_past_ms, max_future_ms), Window(now_ms - max_past_ms, now_ms + max_future_ms)


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
    found = _fields(record, rules, now_ms)
    if found:
        return found
    rtype = record["type"]
    return _properties(record, rtype, rules, pending or Pending(), entry)


def _fields(record: dict[str, Any], rules: Rules, now_ms: int) -> tuple[str, str] | None:
    """The loader's rules on the record's own fields, in its order (the JSON reader's first)."""
    props = record.get("properties")
    if type(props) is not dict and props is not None:
        return "properties", PROPERTIES_NOT_OBJECT
    when = record.get("time")
    if type(when) is not int and when is not None:  # (a bool is not an int here)
        return "time", TIME_NOT_INTEGER
    by_type, window = _judge(now_ms, rules.max_past_ms, rules.max_future_ms)
    rule = by_type.first(record, window)
    if record.get("type") in EVENT_RECORDS and (rule is None or rule in by_type.after_event_name):
        event = record.get("event")
        bad = event_name_problem(event if type(event) is str else canonical(record)["event"])
        if bad:
            return "event", bad
    return None if rule is None else (rule.field, rule.text(canonical(record)))


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
        return "properties", PROPERTIES_NOT_OBJECT
    if len(props) > rules.max_properties:
        return "properties", f"more than {rules.max_properties} properties"
    table = _TABLE.get(rtype)
    for name, value in props.items():
        if name == "$is_login_id":
            continue
        bad = property_name_problem(name)
        if bad:
            return name, bad
        known = rules.registry.get((table, name)) if table else None
        if known is not None and not fits(value, known):
            return name, conflict_message(name, known, value)
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
