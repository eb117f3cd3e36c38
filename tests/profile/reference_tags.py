"""Event tags in plain Python, for checking :mod:`userloop.profile.tagsql` on random logs.

Works on :func:`tests.query.logs.reference_events` (persons resolved by the reference's own union-find) and a
tag definition's JSON; never reads what the engine wrote. The rules it implements are the documented ones:

- as of ``run_date``: events before local midnight that ends it; a window is local days relative to it;
- ``count``, ``sum``, ``distinct_count``, ``active_days`` give 0 to every person seen by then without a match;
- ``first``/``last``: the property on the earliest/latest matching event that has it, ties by ``event_id``;
- ``most_frequent``: the value on most matching events that have it, ties to the smallest value;
- dates are local dates; ``days_since_*`` whole days to the run date;
- then: empty text is no value, bins cut numbers (``labels[#edges <= x]``), an enum keeps its listed values.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.query.logs import Ev, compare

ZERO_AGGS = {"count", "sum", "distinct_count", "active_days"}


def day_end_ms(day: date, timezone: str) -> int:
    """Epoch ms of local midnight that ends ``day``."""
    nxt = day + timedelta(days=1)
    return int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC).timestamp() * 1000)


def window_days(window: dict[str, Any] | None, run_date: date) -> tuple[date, date] | None:
    if window is None:
        return None
    if "last" in window:
        end = run_date if window.get("include_today", True) else run_date - timedelta(days=1)
        return end - timedelta(days=window["last"] - 1), min(end, run_date)
    first = date.fromisoformat(window["from"])
    last = date.fromisoformat(window["to"]) if window.get("to") else run_date
    return first, min(last, run_date)


def prop_of(ev: Ev, name: str) -> Any:
    if name in ("amount", "channel"):
        return getattr(ev, name)
    if name == "event":
        return ev.event
    raise AssertionError(f"the reference knows no property {name!r}")


def tag_values(evs: list[Ev], tag: dict[str, Any], run_date: date, timezone: str) -> dict[str, Any]:
    """person → the tag's value as of ``run_date`` (people without a value are absent)."""
    source = tag["source"]
    hi = day_end_ms(run_date, timezone)
    known = [e for e in evs if e.time_ms < hi]
    days = window_days(source.get("window"), run_date)
    matched: dict[str, list[Ev]] = {}
    for e in known:
        if source["event"] != "$any" and e.event != source["event"]:
            continue
        if not all(compare(prop_of(e, f["property"]), f) for f in source.get("filters", [])):
            continue
        if days is not None and not days[0] <= e.local_day(timezone) <= days[1]:
            continue
        matched.setdefault(e.person, []).append(e)
    out: dict[str, Any] = {}
    persons = {e.person for e in known}
    for person in persons:
        value = aggregate(matched.get(person, []), source, run_date, timezone)
        value = finish(tag, value)
        if value is not None:
            out[person] = value
    return out


def aggregate(rows: list[Ev], source: dict[str, Any], run_date: date, timezone: str) -> Any:
    agg, prop = source["agg"], source.get("property")
    if agg == "count":
        return float(len(rows))
    if agg == "active_days":
        return float(len({e.local_day(timezone) for e in rows}))
    if agg in ("first_time", "last_time", "days_since_first", "days_since_last"):
        if not rows:
            return None
        pick = min if agg in ("first_time", "days_since_first") else max
        day = pick(rows, key=lambda e: e.time_ms).local_day(timezone)
        return day if agg.endswith("_time") else float((run_date - day).days)
    assert prop is not None
    has = [e for e in rows if prop_of(e, prop) is not None]
    values = [prop_of(e, prop) for e in has]
    if agg == "sum":
        return float(sum(values))
    if agg == "distinct_count":
        return float(len(set(values)))
    if not has:
        return None
    if agg == "avg":
        return sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg in ("first", "last"):
        key = [(e.time_ms, e.event_id) for e in has]
        at = key.index(min(key) if agg == "first" else max(key))
        return values[at]
    if agg == "most_frequent":
        counts = Counter(values)
        top = max(counts.values())
        return min(v for v, n in counts.items() if n == top)
    raise AssertionError(f"the reference does not know aggregate {agg!r}")


def finish(tag: dict[str, Any], value: Any) -> Any:
    if value == "":
        return None
    bins = tag.get("bins")
    if bins is not None:
        if value is None:
            return None
        return bins["labels"][sum(1 for edge in bins["edges"] if edge <= value)]
    if tag["type"] == "enum" and value not in tag["values"]:
        return None
    return value
