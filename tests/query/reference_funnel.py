"""Funnels in plain Python, by brute force: every attempt of every person is enumerated and the one to report is
picked by an explicit sort key. Written from the definitions in ``userloop.query.kinds.funnel``'s docstring,
without looking at its SQL; slow (exponential in steps), so only for the small random logs of the tests.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.query.logs import Ev, compare

MS = 1000  # microseconds per millisecond
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}


def matches_filter(ev: Ev, f: dict[str, Any]) -> bool:
    """One event-property filter on ``amount`` (NUMBER) or ``channel`` (STRING), as SQL would evaluate it."""
    return compare(getattr(ev, f["property"]) if f["property"] != "event" else ev.event, f)


def matches(ev: Ev, ref: dict[str, Any]) -> bool:
    if ref["event"] != "$any" and ev.event != ref["event"]:
        return False
    return all(matches_filter(ev, f) for f in ref.get("filters", []))


def utc_ms_of_local_midnight(day: date, tz: str) -> int:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return int(local.astimezone(UTC).timestamp() * 1000)


@dataclass
class Attempt:
    """A chain of (step, event) pairs; ``events`` are positions in the person's sorted stream."""

    steps: list[int]
    events: list[Ev]
    positions: list[int]

    @property
    def duration_us(self) -> int:
        return (self.events[-1].time_ms - self.events[0].time_ms) * MS

    @property
    def gap_us(self) -> int | None:
        if len(self.events) < 2:
            return None
        return (self.events[-1].time_ms - self.events[-2].time_ms) * MS


@dataclass
class PersonResult:
    #: step → (duration, gap to the previous event) of the attempt the funnel reports for that step, in µs
    reached: dict[int, tuple[int, int | None]] = field(default_factory=dict)
    depth: int = 0
    entry_ms: int = 0
    value: str | None = None
    excluded: bool = False
    last_ms: int = 0


def run_reference(evs: list[Ev], defn: dict[str, Any], tz: str, first: date, last: date) -> dict[str, Any]:
    """The funnel's numbers for ``defn`` over ``evs``: per step counts and times, per breakdown value, the
    time-to-convert histogram, the people list (person names) and the trend."""
    steps = defn["steps"]
    n = len(steps)
    order = defn.get("order", "sequential")
    window = defn.get("window", {"value": 14, "unit": "day"})
    w_ms = window.get("value", 14) * UNIT_SECONDS[window.get("unit", "day")] * 1000
    lo = utc_ms_of_local_midnight(first, tz)
    hi = utc_ms_of_local_midnight(last + timedelta(days=1), tz)
    gfilters = defn.get("filters", [])

    persons: dict[str, list[Ev]] = {}
    for ev in evs:
        if lo <= ev.time_ms < hi + w_ms and all(matches_filter(ev, f) for f in gfilters):
            persons.setdefault(ev.person, []).append(ev)
    results: dict[str, PersonResult] = {}
    for person, stream in persons.items():
        stream.sort(key=lambda e: (e.time_ms, e.event_id))
        person_of = _any_person if order == "any" else _ordered_person
        res = person_of(stream, defn, lo, hi, w_ms)
        if res is not None and not res.excluded:
            results[person] = res

    # breakdown values: the top `limit` by people, the rest $other, missing $none
    bd = defn.get("breakdown")
    labels: dict[str, str | None] = dict.fromkeys(results)
    if bd is not None:
        counts = Counter(r.value for r in results.values() if r.value is not None)
        top = {v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: bd.get("limit", 25)]}
        for p, r in results.items():
            labels[p] = "$none" if r.value is None else (r.value if r.value in top else "$other")

    def series(members: list[str]) -> dict[str, Any]:
        out = []
        for k in range(1, n + 1):
            hits = [results[p].reached[k] for p in members if k in results[p].reached]
            gaps = [gap for _, gap in hits if gap is not None]
            durs = [dur for dur, _ in hits]
            out.append(
                {
                    "count": len(hits),
                    "avg_gap": statistics.fmean(gaps) / 1e6 if gaps and k > 1 else None,
                    "median_gap": statistics.median(gaps) / 1e6 if gaps and k > 1 else None,
                    "avg_dur": statistics.fmean(durs) / 1e6 if durs else None,
                    "median_dur": statistics.median(durs) / 1e6 if durs else None,
                }
            )
        return {"steps": out}

    everyone = sorted(results)
    out: dict[str, Any] = {"total": series(everyone), "breakdowns": {}}
    if bd is not None:
        for value in sorted({v for v in labels.values() if v is not None}):
            out["breakdowns"][value] = series([p for p in everyone if labels[p] == value])

    # time to convert histogram
    conv = sorted(results[p].reached[n][0] for p in everyone if n in results[p].reached)
    bins = defn.get("time_to_convert_bins", 10)
    hist: list[tuple[float, float, int]] = []
    if conv:
        lo_us = (conv[0] // 1_000_000) * 1_000_000
        span = conv[-1] - lo_us + 1
        width = -(-span // (bins * 1_000_000)) * 1_000_000
        idx = Counter((d - lo_us) // width for d in conv)
        hist = [
            ((lo_us + i * width) / 1e6, (lo_us + (i + 1) * width) / 1e6, idx.get(i, 0)) for i in range(max(idx) + 1)
        ]
    out["time_to_convert"] = hist

    people = defn.get("people")
    if people is not None:
        k = people["step"]
        prev = _previous_required(steps, k) if k > 1 else 1
        chosen = []
        for p in everyone:
            r = results[p]
            if people.get("breakdown") is not None and labels[p] != people["breakdown"]:
                continue
            if people.get("status", "converted") == "converted":
                if k in r.reached:
                    chosen.append(p)
            elif prev in r.reached and k not in r.reached:
                chosen.append(p)
        out["people"] = chosen

    interval = defn.get("trend_interval")
    if interval is not None:
        trend: dict[date, list[int]] = {}
        for p in everyone:
            r = results[p]
            local = datetime.fromtimestamp(r.entry_ms / 1000, ZoneInfo(tz)).date()
            b = _bucket(local, interval)
            slot = trend.setdefault(b, [0, 0])
            slot[0] += 1
            slot[1] += r.depth == n
        out["trend"] = {b.isoformat(): tuple(v) for b, v in trend.items()}
    out["levels"] = {p: (results[p].depth, results[p].last_ms) for p in everyone}
    return out


def _bucket(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _previous_required(steps: list[dict[str, Any]], k: int) -> int:
    j = k - 1
    while steps[j - 1].get("optional", False):
        j -= 1
    return j


def _ordered_person(stream: list[Ev], defn: dict[str, Any], lo: int, hi: int, w_ms: int) -> PersonResult | None:
    steps = defn["steps"]
    n = len(steps)
    strict = defn.get("order") == "strict"
    attempts: list[Attempt] = []

    def extend(chain: Attempt) -> None:
        attempts.append(chain)
        s, at = chain.steps[-1], chain.positions[-1]
        nexts = []
        for k in range(s + 1, n + 1):  # the next step, or a later one when every step between is optional
            nexts.append(k)
            if not steps[k - 1].get("optional", False):
                break
        candidates = [at + 1] if strict else range(at + 1, len(stream))
        for pos in candidates:
            if pos >= len(stream):
                continue
            ev = stream[pos]
            if ev.time_ms - chain.events[0].time_ms > w_ms:
                continue
            for k in nexts:
                if matches(ev, steps[k - 1]):
                    extend(Attempt([*chain.steps, k], [*chain.events, ev], [*chain.positions, pos]))

    for pos, ev in enumerate(stream):
        if lo <= ev.time_ms < hi and matches(ev, steps[0]):
            extend(Attempt([1], [ev], [pos]))
    if not attempts:
        return None

    def preference(a: Attempt) -> tuple[Any, ...]:
        # shortest; then the earliest last event; then the latest start and, from the end backward, each earlier
        # event (and step) as late as possible
        back: list[int] = [a.positions[0]]
        for i in range(len(a.steps) - 2, -1, -1):
            back += [a.positions[i], a.steps[i]]
        return (a.duration_us, a.positions[-1], tuple(-x for x in back))

    res = PersonResult()
    best: dict[int, Attempt] = {}
    for k in range(1, n + 1):
        ending = [a for a in attempts if a.steps[-1] == k]
        if ending:
            best[k] = min(ending, key=preference)
            res.reached[k] = (best[k].duration_us, best[k].gap_us)
    res.depth = max(best)
    res.entry_ms = min(a.events[0].time_ms for a in attempts)
    chosen = best[res.depth]
    res.last_ms = chosen.events[-1].time_ms
    res.value = _value(chosen, defn)
    for x in defn.get("exclusions", []):
        f, t = x.get("from_step", 1), x.get("to_step") or n
        if res.depth < f:
            continue
        e_f = chosen.positions[chosen.steps.index(f)]
        if res.depth >= t:
            e_t = chosen.positions[chosen.steps.index(t)]
            hit = any(matches(stream[p], x) for p in range(e_f + 1, e_t))
        else:
            limit = chosen.events[0].time_ms + w_ms
            hit = any(matches(stream[p], x) and stream[p].time_ms <= limit for p in range(e_f + 1, len(stream)))
        if hit:
            res.excluded = True
    return res


def _value(a: Attempt, defn: dict[str, Any]) -> str | None:
    bd = defn.get("breakdown")
    if bd is None or bd.get("source", "event") != "event":
        return None
    attribution = defn.get("breakdown_attribution", "first_touch")
    if attribution == "first_touch":
        ev: Ev | None = a.events[0]
    elif attribution == "last_touch":
        ev = a.events[-1]
    else:
        k = attribution["step"]
        ev = a.events[a.steps.index(k)] if k in a.steps else None
    return None if ev is None else _text(getattr(ev, bd["property"]))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(float(value)) if isinstance(value, int | float) else str(value)


def _any_person(stream: list[Ev], defn: dict[str, Any], lo: int, hi: int, w_ms: int) -> PersonResult | None:
    steps = defn["steps"]
    # level m → candidates (duration, start position, gap, start event, included events)
    per_level: dict[int, list[tuple[int, int, int | None, Ev, list[tuple[int, Ev, int]]]]] = {}
    for pos, ev in enumerate(stream):
        if not (lo <= ev.time_ms < hi and any(matches(ev, s) for s in steps)):
            continue
        included: list[tuple[int, Ev, int]] = []  # (step, event, position): each step's first event from here on
        for j, s in enumerate(steps, start=1):
            later = [(p, e) for p, e in enumerate(stream) if p >= pos and matches(e, s)]
            if later and later[0][1].time_ms - ev.time_ms <= w_ms:
                included.append((j, later[0][1], later[0][0]))
        included.sort(key=lambda x: (x[1].time_ms, x[2]))
        for m in range(1, len(included) + 1):
            dur = (included[m - 1][1].time_ms - ev.time_ms) * MS
            gap = (included[m - 1][1].time_ms - included[m - 2][1].time_ms) * MS if m > 1 else None
            per_level.setdefault(m, []).append((dur, pos, gap, ev, included))
    if not per_level:
        return None
    res = PersonResult()
    for m, candidates in per_level.items():
        dur, _, gap, _, _ = min(candidates, key=lambda x: (x[0], x[1]))  # shortest, then the earliest start
        res.reached[m] = (dur, gap)
    res.depth = max(per_level)
    _, _, _, start, included = min(per_level[res.depth], key=lambda x: (x[0], x[1]))
    res.last_ms = included[res.depth - 1][1].time_ms
    res.value = _any_value(start, included, defn)
    res.entry_ms = min(x[3].time_ms for x in per_level[1])
    return res


def _any_value(start: Ev, included: list[tuple[int, Ev, int]], defn: dict[str, Any]) -> str | None:
    bd = defn.get("breakdown")
    if bd is None or bd.get("source", "event") != "event":
        return None
    attribution = defn.get("breakdown_attribution", "first_touch")
    if attribution == "first_touch":
        ev: Ev | None = start
    elif attribution == "last_touch":
        ev = included[-1][1]
    else:
        hit = [e for j, e, _ in included if j == attribution["step"]]
        ev = hit[0] if hit else None
    return None if ev is None else _text(getattr(ev, bd["property"]))
