"""Segment rules in plain Python: the people a rule (its JSON) holds for, from the reference events and profiles.

Restates the definitions of :mod:`userloop.profile.rules` without SQL: local days come from Python's zoneinfo
for each event, windows are resolved here, and tags, segments and models are read from the snapshots the test
wrote (a value on a date is the latest snapshot on or before it; the current value is the latest snapshot).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from tests.query.logs import Ev, person_names
from userloop.profile import history
from userloop.store import ProjectStore

#: How the reference types each profile property (and the built-ins).
PROPERTY_KINDS = {
    "city": "string",
    "age": "number",
    "vip": "bool",
    "birthday": "date",
    "first_seen": "datetime",
    "last_seen": "datetime",
}
EVENT_KINDS = {"amount": "number", "channel": "string"}
NEGATED = {"neq": "eq", "not_in": "in", "not_contains": "contains", "is_not_set": "is_set"}
DATE_OPS = ("in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days")
ORDERED = ("gt", "gte", "lt", "lte", "between")
UNIT_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


@dataclass
class Snapshots:
    """Dated values per person (ascending dates), as written with ``history.apply_snapshot``."""

    runs: list[tuple[date, dict[str, Any]]] = field(default_factory=list)

    def on(self, day: date | None) -> dict[str, Any]:
        if day is None:
            return self.runs[-1][1] if self.runs else {}
        chosen: dict[str, Any] = {}
        for run_date, values in self.runs:
            if run_date <= day:
                chosen = values
        return chosen


@dataclass
class TagRef:
    kind: str  # enum | string | number | bool | date
    order: tuple[str, ...] | None
    values: Snapshots


@dataclass
class World:
    timezone: str
    today: date
    events: list[Ev]
    people: dict[str, dict[str, Any]]
    tags: dict[str, TagRef] = field(default_factory=dict)
    #: model → [(run_date, {person: {field: value}})]
    models: dict[str, list[tuple[date, dict[str, dict[str, Any]]]]] = field(default_factory=dict)
    model_kinds: dict[str, dict[str, str]] = field(default_factory=dict)
    segments: dict[int, Snapshots] = field(default_factory=dict)

    @property
    def cap_ms(self) -> int:
        """Epoch ms of the local midnight that ends ``today``."""
        end = self.today + timedelta(days=1)
        return int(datetime(end.year, end.month, end.day, tzinfo=ZoneInfo(self.timezone)).timestamp() * 1000)

    def day(self, e: Ev) -> date:
        return e.local_day(self.timezone)


def evaluate(rule: dict[str, Any], w: World) -> set[str]:
    """The names of the people ``rule`` holds for."""
    everyone = set(w.people)
    if "all" in rule:
        out = set(everyone)
        for part in rule["all"]:
            out &= evaluate(part, w)
        return out
    if "any" in rule:
        out = set()
        for part in rule["any"]:
            out |= evaluate(part, w)
        return out
    if "not" in rule:
        return everyone - evaluate(rule["not"], w)
    check = CONDITIONS[rule["type"]]
    return {p for p in everyone if check(rule, p, w)}


# values ------------------------------------------------------------------------------------------------------------
def typed(value: Any, kind: str) -> Any:
    if kind == "number":
        return float(value)
    if kind == "date":
        return date.fromisoformat(str(value))
    if kind == "datetime":
        return datetime.fromisoformat(str(value))
    if kind in ("string", "enum"):
        return str(value)
    return value


def compare(
    op: str, want: Any, x: Any, kind: str, w: World, order: tuple[str, ...] | None = None
) -> bool:  # fmt: skip
    """One value operator on one value (None: no value)."""
    if op in NEGATED:
        return x is None or not compare(NEGATED[op], want, x, kind, w, order)
    if op == "is_set":
        return x is not None
    if x is None:
        return False
    if op in DATE_OPS:
        return _relative(op, int(want), x, kind, w)
    wants = want if isinstance(want, list) else [want]
    if order is not None and op in ORDERED:
        i, bounds = order.index(x), [order.index(str(v)) for v in wants]
        return _ordered(op, i, bounds)
    if op == "contains":
        return str(want) in x
    vals = [typed(v, kind) for v in wants]
    if op == "in":
        return x in vals
    if op == "eq":
        return bool(x == vals[0])
    return _ordered(op, x, vals)


def _ordered(op: str, x: Any, b: list[Any]) -> bool:
    return {
        "gt": lambda: x > b[0],
        "gte": lambda: x >= b[0],
        "lt": lambda: x < b[0],
        "lte": lambda: x <= b[0],
        "between": lambda: b[0] <= x <= b[1],
    }[op]()


def _relative(op: str, n: int, x: Any, kind: str, w: World) -> bool:
    if kind == "datetime":  # naive UTC → the local day
        x = x.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(w.timezone)).date()
    t = w.today
    if op == "in_last_days":
        return bool(t - timedelta(days=n - 1) <= x <= t)
    if op == "in_next_days":
        return bool(t <= x <= t + timedelta(days=n))
    if op == "before_days_ago":
        return bool(x <= t - timedelta(days=n))
    for i in range(n + 1):
        d = t + timedelta(days=i)
        if (d.month, d.day) == (x.month, x.day):
            return True
        if (x.month, x.day) == (2, 29) and (d.month, d.day) == (2, 28) and not calendar.isleap(d.year):
            return True
    return False


def on_date(on: Any, w: World) -> date | None:
    if on is None:
        return None
    if isinstance(on, dict):
        return w.today - timedelta(days=on["days_ago"])
    return date.fromisoformat(on)


def _property(c: dict[str, Any], person: str, w: World) -> bool:
    kind = PROPERTY_KINDS[c["property"]]
    return compare(c.get("op", "eq"), c.get("value"), w.people[person][c["property"]], kind, w)


def _tag(c: dict[str, Any], person: str, w: World) -> bool:
    tag = w.tags[c["tag"]]
    x = tag.values.on(on_date(c.get("on"), w)).get(person)
    kind = "date" if tag.kind == "date" else tag.kind
    return compare(c.get("op", "eq"), c.get("value"), x, kind, w, tag.order if tag.kind == "enum" else None)


def _model(c: dict[str, Any], person: str, w: World) -> bool:
    # a run is known by its rows: a run that scored no one left nothing in the table, so it is no run at all
    runs = [r for r in w.models[c["model"]] if r[0] <= w.today and r[1]]
    row = max(runs, key=lambda r: r[0])[1].get(person) if runs else None
    x = None if row is None else row.get(c["field"])
    return compare(c.get("op", "eq"), c.get("value"), x, w.model_kinds[c["model"]][c["field"]], w)


def _segment(c: dict[str, Any], person: str, w: World) -> bool:
    member = w.segments[c["segment"]].on(on_date(c.get("on"), w)).get(person) is True
    return member if c.get("member", True) else not member


# behaviour ---------------------------------------------------------------------------------------------------------
def matches(e: Ev, ref: dict[str, Any], w: World) -> bool:
    if ref["event"] != "$any" and e.event != ref["event"]:
        return False
    for f in ref.get("filters", []):
        if f.get("source", "event") == "user":
            x, kind = w.people[e.person][f["property"]], PROPERTY_KINDS[f["property"]]
        else:
            x, kind = getattr(e, f["property"]), EVENT_KINDS[f["property"]]
        if not compare(f.get("op", "eq"), f.get("value"), x, kind, w):
            return False
    return True


def mine(person: str, ref: dict[str, Any], w: World) -> list[Ev]:
    """The person's events matching ``ref`` up to the end of today."""
    cap = w.cap_ms
    return [e for e in w.events if e.person == person and e.time_ms < cap and matches(e, ref, w)]


def window_days(window: dict[str, Any], w: World) -> tuple[date, date]:
    """The window's first and last local day, cut at today."""
    if "last" in window:
        end = w.today if window.get("include_today", True) else w.today - timedelta(days=1)
        first, last = end - timedelta(days=window["last"] - 1), end
    else:
        first = date.fromisoformat(window["from"])
        last = date.fromisoformat(window["to"]) if window.get("to") else w.today
    return first, min(last, w.today)


def _holds(check: dict[str, Any], x: float) -> bool:
    v = check.get("value", 1)
    return _ordered(check["op"], x, v if isinstance(v, list) else [v]) if check["op"] != "eq" else x == v


def _event(c: dict[str, Any], person: str, w: World) -> bool:
    first, last = window_days(c["window"], w)
    rows = [e for e in mine(person, c, w) if first <= w.day(e) <= last]
    if c.get("sum") is not None:
        check = c["sum"]
        total = sum(getattr(e, check["property"]) or 0.0 for e in rows)
        held = _holds(check, total)
    else:
        held = _holds(c.get("count") or {"op": "gte", "value": 1}, len(rows))
    return held if c.get("did", True) else not held


def _first_time(c: dict[str, Any], person: str, w: World) -> bool:
    rows = mine(person, c, w)
    if not rows:
        return False
    first, last = window_days(c["window"], w)
    return first <= w.day(min(rows, key=lambda e: e.time_ms)) <= last


def _sequence(c: dict[str, Any], person: str, w: World) -> bool:
    """Funnel order: events sorted by (time, event id); each step a later event; greedy earliest next step."""
    cap = w.cap_ms
    evs = sorted((e for e in w.events if e.person == person and e.time_ms < cap), key=lambda e: (e.time_ms, e.event_id))
    first, last = window_days(c["window"], w)
    within = c["within"]["value"] * UNIT_MS[c["within"].get("unit", "day")]
    steps = c["steps"]
    for i, start in enumerate(evs):
        if not (matches(start, steps[0], w) and first <= w.day(start) <= last):
            continue
        at = i
        for step in steps[1:]:
            at = next((j for j in range(at + 1, len(evs)) if matches(evs[j], step, w)), -1)
            if at < 0:
                break
        if at >= 0 and evs[at].time_ms - start.time_ms <= within:
            return True
    return False


def _regular(c: dict[str, Any], person: str, w: World) -> bool:
    weeks = c["weeks"]
    blocks = {(w.today - w.day(e)).days // 7 for e in mine(person, c, w)}
    return len({b for b in blocks if 0 <= b < weeks["of"]}) >= weeks["min"]


def _stopped(c: dict[str, Any], person: str, w: World) -> bool:
    since = w.today - timedelta(days=c["days"] - 1)
    days = [w.day(e) for e in mine(person, c, w)]
    return any(d < since for d in days) and not any(d >= since for d in days)


def _restarted(c: dict[str, Any], person: str, w: World) -> bool:
    recent = w.today - timedelta(days=c["days"] - 1)
    gap = recent - timedelta(days=c["gap_days"])
    days = [w.day(e) for e in mine(person, c, w)]
    return any(d >= recent for d in days) and not any(gap <= d < recent for d in days) and any(d < gap for d in days)


CONDITIONS: dict[str, Callable[[dict[str, Any], str, World], bool]] = {
    "property": _property,
    "tag": _tag,
    "model": _model,
    "segment": _segment,
    "event": _event,
    "first_time": _first_time,
    "sequence": _sequence,
    "regular": _regular,
    "stopped": _stopped,
    "restarted": _restarted,
}


# writing the world's tags, model runs and segments into a project ---------------------------------------------------
TAG_SQL_TYPES = {"enum": "VARCHAR", "string": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"}
_ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32()}
_MODEL_SQL = {"number": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN", "date": "DATE"}


def install(project: ProjectStore, w: World) -> None:
    """Write ``w``'s tag and segment snapshots (``history.apply_snapshot``) and model runs (a ``model_<name>``
    table per model) into ``project``, whose people were loaded from the same log."""
    ids = {name: user_id for user_id, name in person_names(project).items()}
    for name, tag in w.tags.items():
        _snapshots(project, f"tag_{name}", TAG_SQL_TYPES[tag.kind], tag.values, ids)
    for segment, snaps in w.segments.items():
        _snapshots(project, f"segment_{segment}", "BOOLEAN", snaps, ids)
    for model, runs in w.models.items():
        kinds = w.model_kinds[model]
        table = project.table(f"model_{model}")
        columns = ", ".join(f'"{f}" {_MODEL_SQL[k]}' for f, k in kinds.items())
        with project.store.lock:
            project.con.execute(
                f"CREATE TABLE {table} (user_id BIGINT, run_date DATE, model_version VARCHAR, {columns})"
            )
            for run_date, rows in runs:
                for person, values in rows.items():
                    project.con.execute(
                        f"INSERT INTO {table} VALUES (?, ?, 'v1', {', '.join('?' for _ in kinds)})",
                        [ids[person], run_date, *(values.get(f) for f in kinds)],
                    )


def _snapshots(project: ProjectStore, table: str, sql_type: str, snaps: Snapshots, ids: dict[str, int]) -> None:
    for run_date, values in snaps.runs:
        data = pa.table(
            {
                "user_id": pa.array([ids[p] for p in values], pa.int64()),
                "value": pa.array(list(values.values()), _ARROW[sql_type]),
            }
        )
        history.apply_snapshot(project, table, sql_type, run_date, data)
