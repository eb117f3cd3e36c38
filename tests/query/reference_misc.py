"""Brute-force references for the ltv, distribution, interval and drilldown kinds.

Plain Python over :func:`tests.query.logs.reference_events`: every person's events in a list, every rule spelled out
the slow, obvious way, sharing no code with the engine. Definitions are the same JSON dicts the engine gets; the
small interpreter here (:func:`matches`) understands the filters the tests draw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.query.logs import (
    BASE_MS,
    DAY_MS,
    EVENTS,
    LOGIN,
    Ev,
    compare,
    event_logs,
    fresh_project,
    load,
    reference_events,
)
from userloop.query.engine import Engine
from userloop.schema.types import PropertyType
from userloop.store import Workspace

Ref = dict[str, Any]
Profiles = dict[str, dict[str, Any]]


# the filters tests use --------------------------------------------------------------------------------------------
def field(ev: Ev, name: str) -> Any:
    if name == "event":
        return ev.event
    return getattr(ev, name)


def passes(ev: Ev, f: dict[str, Any], profiles: Profiles) -> bool:
    """One filter, on an event property or on the person's profile, with SQL's NULL rules."""
    value = profiles.get(ev.person, {}).get(f["property"]) if f.get("source") == "user" else field(ev, f["property"])
    return compare(value, f)


def matches(ev: Ev, ref: Ref, filters: list[dict[str, Any]], profiles: Profiles) -> bool:
    """The event reference ``ref`` (name or $any, own filters) and the global ``filters``."""
    if ref["event"] != "$any" and ev.event != ref["event"]:
        return False
    return all(passes(ev, f, profiles) for f in [*ref.get("filters", []), *filters])


def by_person(evs: list[Ev]) -> dict[str, list[Ev]]:
    out: dict[str, list[Ev]] = defaultdict(list)
    for ev in sorted(evs, key=lambda e: (e.time_ms, e.event_id)):
        out[ev.person].append(ev)
    return out


def in_days(ev: Ev, tz: str, first: date, last: date) -> bool:
    return first <= ev.local_day(tz) <= last


# ltv --------------------------------------------------------------------------------------------------------------
def cohort_start(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return date(day.year, day.month, 1)
    return day


def cohort_starts(first: date, last: date, interval: str) -> list[date]:
    out, d = [], cohort_start(first, interval)
    while d <= last:
        out.append(d)
        if interval == "day":
            d += timedelta(days=1)
        elif interval == "week":
            d += timedelta(days=7)
        else:
            d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def ltv(evs: list[Ev], tz: str, first: date, last: date, today: date, q: dict[str, Any], profiles: Profiles) -> Any:
    filters = q.get("filters", [])
    days: list[int] = sorted(set(q.get("days", [1, 7, 14, 30, 60, 90])))
    interval = q.get("cohort_interval", "day")
    cohort_ref = q.get("cohort_event", {"event": "$any"})
    members: dict[date, list[tuple[Ev, list[Ev]]]] = defaultdict(list)
    for person_evs in by_person(evs).values():
        starts = [e for e in person_evs if matches(e, cohort_ref, filters, profiles)]
        if not starts or not in_days(starts[0], tz, first, last):
            continue
        start = starts[0]
        values = [
            e for e in person_evs if e.time_ms >= start.time_ms and matches(e, q["value_event"], filters, profiles)
        ]
        members[cohort_start(start.local_day(tz), interval)].append((start, values))

    def worth(e: Ev) -> float:
        if q.get("math", "sum") == "count":
            return 1.0
        return float(getattr(e, q["value_property"]) or 0.0)

    rows = []
    for c in cohort_starts(first, last, interval):
        group = members.get(c, [])
        latest = max((s.local_day(tz) for s, _ in group), default=None)
        totals: list[float | None] = []
        for n in days:
            if latest is None or latest + timedelta(days=n) > today:
                totals.append(None)
                continue
            total = 0.0
            for start, values in group:
                for e in values:
                    if (e.local_day(tz) - start.local_day(tz)).days <= n:
                        total += worth(e)
            totals.append(total)
        size = len(group)
        rows.append(
            {
                "cohort": c.isoformat(),
                "size": size,
                "totals": totals,
                "values": [None if t is None else t / size for t in totals],
            }
        )
    all_totals: list[float | None] = []
    all_values: list[float | None] = []
    for i in range(len(days)):
        seen = [r for r in rows if r["totals"][i] is not None]
        if not seen:
            all_totals.append(None)
            all_values.append(None)
            continue
        t = sum(r["totals"][i] for r in seen)
        all_totals.append(t)
        all_values.append(t / sum(r["size"] for r in seen))
    everyone = {"cohort": "all", "size": sum(r["size"] for r in rows), "totals": all_totals, "values": all_values}
    # a cohort is partial when the range cuts its period or the period has not ended before today
    starts = cohort_starts(first, last, interval)
    ends = [s - timedelta(days=1) for s in cohort_starts(first, last + timedelta(days=31), interval)[1:]]
    partial = [s.isoformat() for s, e in zip(starts, ends, strict=False) if s < first or e > last or e >= today]
    return {"interval": interval, "days": days, "cohorts": rows, "all": everyone, "partial": partial}


# distributions ----------------------------------------------------------------------------------------------------
def quantile(xs: list[float], q: float) -> float | None:
    """Linear interpolation between order statistics (Hyndman & Fan type 7)."""
    if not xs:
        return None
    s = sorted(xs)
    h = (len(s) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def bucket_counts(values: list[float], edges: list[float]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for v in values:
        out[sum(1 for e in edges if e <= v)] += 1
    return dict(out)


def distribution(evs: list[Ev], tz: str, first: date, last: date, q: dict[str, Any], profiles: Profiles) -> Any:
    filters = q.get("filters", [])
    values: list[float] = []
    for person_evs in by_person(evs).values():
        active = [
            e for e in person_evs if in_days(e, tz, first, last) and matches(e, {"event": "$any"}, filters, profiles)
        ]
        done = [e for e in active if matches(e, q["event"], filters, profiles)]
        if not done and not (q.get("include_zero") and active):
            continue
        if q.get("measure", "count") == "count":
            values.append(float(len(done)))
        else:
            values.append(sum(float(getattr(e, q["property"]) or 0.0) for e in done))
    return values


def intervals(evs: list[Ev], tz: str, first: date, last: date, q: dict[str, Any], profiles: Profiles) -> Any:
    """(person, gap in seconds) for every pair, or each person's first pair with per 'person'."""
    filters = q.get("filters", [])
    gap = q.get("max_gap", {"value": 7, "unit": "day"})
    gap_ms = gap["value"] * {"minute": 60_000, "hour": 3_600_000, "day": DAY_MS, "week": 7 * DAY_MS}[gap["unit"]]
    out: list[tuple[str, float]] = []
    for person, person_evs in by_person(evs).items():
        found = []
        for i, a in enumerate(person_evs):
            if not (in_days(a, tz, first, last) and matches(a, q["from_event"], filters, profiles)):
                continue
            later = [b for b in person_evs[i + 1 :] if matches(b, q["to_event"], filters, profiles)]
            if later and later[0].time_ms - a.time_ms <= gap_ms:
                found.append((person, (later[0].time_ms - a.time_ms) / 1000))
        if q.get("per", "pair") == "person":
            found = found[:1]
        out.extend(found)
    return out


# drilldown --------------------------------------------------------------------------------------------------------
def previous(first: date, last: date) -> tuple[date, date]:
    n = (last - first).days + 1
    return first - timedelta(days=n), first - timedelta(days=1)


def dimension_value(ev: Ev, dim: dict[str, Any], profiles: Profiles) -> str | None:
    if dim.get("source", "event") == "user":
        value = profiles.get(ev.person, {}).get(dim["property"])
    else:
        value = field(ev, dim["property"])
    return None if value is None else str(value)


def drilldown(
    evs: list[Ev], tz: str, periods: dict[str, tuple[date, date]], q: dict[str, Any], profiles: Profiles
) -> dict[str, Any]:
    """Per dimension: {label: (kind, values folded, current, baseline)} and the totals of both periods."""
    series = q["series"]
    mathop = series.get("math", "total")
    filters = q.get("filters", [])
    counted: dict[str, list[Ev]] = {}
    for name, (first, last) in periods.items():
        hits = [e for e in evs if in_days(e, tz, first, last) and matches(e, series, filters, profiles)]
        if mathop == "users":  # each person's first event of the period stands for them
            hits = [person_evs[0] for person_evs in by_person(hits).values()]
        counted[name] = hits

    def amount(e: Ev) -> float:
        if mathop == "sum":
            return float(getattr(e, series["property"]) or 0.0)
        return 1.0

    totals = {name: sum(amount(e) for e in hits) for name, hits in counted.items()}
    dims = {}
    for dim in q["dimensions"]:
        per: dict[str | None, dict[str, float]] = defaultdict(lambda: {"current": 0.0, "baseline": 0.0})
        for name, hits in counted.items():
            for e in hits:
                per[dimension_value(e, dim, profiles)][name] += amount(e)
        dims[dim["property"]] = fold(per, q.get("top", 20))
    return {"totals": totals, "dimensions": dims}


def fold(per: dict[str | None, dict[str, float]], top: int) -> dict[str, tuple[str, int, float, float]]:
    named = [(v, c["current"], c["baseline"]) for v, c in per.items() if v is not None]
    named.sort(key=lambda r: (-abs(r[1] - r[2]), -(r[1] + r[2]), r[0]))
    out = {v: ("value", 1, c, b) for v, c, b in named[:top]}
    rest = named[top:]
    if rest:
        out["$other"] = ("other", len(rest), sum(r[1] for r in rest), sum(r[2] for r in rest))
    if None in per:
        out["$none"] = ("none", 1, per[None]["current"], per[None]["baseline"])
    return out


def js(p: float, q: float) -> float:
    """Jensen–Shannon divergence of two one-value shares, written from its definition with natural logs."""
    m = (p + q) / 2
    kl_p = p * math.log(p / m) if p > 0 else 0.0
    kl_q = q * math.log(q / m) if q > 0 else 0.0
    return (kl_p + kl_q) / 2 / math.log(2)


def explanatory(
    rows: dict[str, tuple[str, int, float, float]], totals: dict[str, float]
) -> tuple[list[str] | None, float]:
    """Adtributor's explanatory set of one dimension: labels, or None when none explains more than 67%."""
    change = totals["current"] - totals["baseline"]
    if change == 0:
        return None, 0.0
    scored = []
    for label, (kind, _, cur, base) in rows.items():
        if kind == "other":
            continue
        p = base / totals["baseline"] if totals["baseline"] else 0.0
        q = cur / totals["current"] if totals["current"] else 0.0
        scored.append((js(p, q), (cur - base) / change, label))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    chosen: list[str] = []
    explained = 0.0
    surprise = 0.0
    for s, ep, label in scored:
        if ep > 0.10:
            chosen.append(label)
            explained += ep
            surprise += s
            if explained > 0.67:
                return (chosen if surprise > 0 else None), explained
    return None, explained


# fixtures the tests share -----------------------------------------------------------------------------------------
#: (zone, days the random log is moved on): New York's log is moved 8 weeks so it spans the DST change of 2026-03-08.
ZONES = [("Asia/Shanghai", 0), ("America/New_York", 56)]
PLANS = ("gold", "free")
FIRST_DAY = date(2026, 1, 5)


def shifted(records: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    return [{**r, "time": r["time"] + days * DAY_MS} for r in records]


@st.composite
def logs_with_profiles(draw: st.DrawFn, shift: int, max_events: int = 40) -> tuple[list[dict[str, Any]], Profiles]:
    """A random log (moved ``shift`` days on) plus a 'plan' profile property for some login ids."""
    records = shifted(draw(event_logs(max_events=max_events)), shift)
    plans = draw(st.dictionaries(st.sampled_from(LOGIN), st.sampled_from(PLANS), max_size=len(LOGIN)))
    for login, plan in sorted(plans.items()):
        records.append(
            {
                "type": "profile_set",
                "distinct_id": login,
                "time": BASE_MS,
                "properties": {"$is_login_id": True, "plan": plan},
            }
        )
    return records, {login: {"plan": plan} for login, plan in plans.items()}


def filters() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {"property": "channel", "op": "eq", "value": "a"},
            {"property": "channel", "op": "neq", "value": "b"},
            {"property": "channel", "op": "in", "value": ["a", "c"]},
            {"property": "channel", "op": "is_set"},
            {"property": "amount", "op": "gt", "value": 30},
            {"property": "amount", "op": "lte", "value": 60},
            {"property": "plan", "source": "user", "op": "eq", "value": "gold"},
            {"property": "plan", "source": "user", "op": "neq", "value": "free"},
        ]
    )


def event_refs(names: tuple[str, ...] = (*EVENTS, "$any")) -> st.SearchStrategy[Ref]:
    return st.builds(
        lambda event, fs: {"event": event, "filters": fs},
        st.sampled_from(names),
        st.lists(filters(), max_size=1),
    )


def prepare(ws: Workspace, timezone: str, records: list[dict[str, Any]], *, chunks: int = 1) -> Engine:
    """A fresh project with the log loaded, its properties registered up front (so a log that never sets
    ``amount`` still has the column)."""
    _, project = fresh_project(ws, timezone)
    with project.store.transaction():
        project.register("events", {"amount": PropertyType.NUMBER, "channel": PropertyType.STRING})
        project.register("users", {"plan": PropertyType.STRING})
    load(project, records, chunks=chunks)
    return Engine(project, timezone)


def track(event: str, who: str, t_ms: int, *, event_id: str, **props: Any) -> dict[str, Any]:
    if who.startswith("L"):
        props["$is_login_id"] = True
    return {
        "type": "track",
        "event": event,
        "distinct_id": who,
        "time": t_ms,
        "event_id": event_id,
        "properties": props,
    }


def events_of(records: list[dict[str, Any]]) -> list[Ev]:
    """The reference's events of a log that may hold profile records too."""
    return reference_events([r for r in records if r["type"] != "profile_set"])
