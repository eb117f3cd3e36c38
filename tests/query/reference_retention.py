"""Brute-force references for retention, lifecycle and stickiness, written from the kinds' definitions alone.

Each works on the resolved events of a log (:func:`tests.query.logs.reference_events`), one person at a time,
with plain loops over local calendar periods: nothing here shares code with the SQL it checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from tests.query.logs import Ev

Pred = Callable[[Ev], bool]
OTHER, NONE = "$other", "$none"


# calendar --------------------------------------------------------------------------------------------------------
def period_of(day: date, interval: str) -> date:
    """The first day of the local day / Monday week / calendar month holding ``day``."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return date(day.year, day.month, 1)
    return day


def shift(start: date, n: int, interval: str) -> date:
    """The period ``n`` periods after (or before) the one starting on ``start``."""
    if interval == "day":
        return start + timedelta(days=n)
    if interval == "week":
        return start + timedelta(days=7 * n)
    m = start.year * 12 + start.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def last_day(start: date, interval: str) -> date:
    return shift(start, 1, interval) - timedelta(days=1)


def periods_in(first: date, last: date, interval: str) -> list[date]:
    out, p = [], period_of(first, interval)
    while p <= last:
        out.append(p)
        p = shift(p, 1, interval)
    return out


# retention -------------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    person: str
    cohort: date
    t0: int
    bd: str | None


@dataclass
class RetentionRef:
    cohorts: list[date]
    #: (breakdown label, cohort) → people in the cohort
    members: dict[tuple[str | None, date], set[str]] = field(default_factory=dict)
    #: (breakdown label, cohort, k) → people counted in cell k (following the mode)
    cells: dict[tuple[str | None, date, int], set[str]] = field(default_factory=dict)
    #: (breakdown label, cohort, k) → the summed value of the return events of cell k
    values: dict[tuple[str | None, date, int], float] = field(default_factory=dict)


def retention(
    evs: list[Ev],
    tz: str,
    *,
    start: Pred,
    ret: Pred,
    start_type: str,
    interval: str,
    periods: int,
    mode: str,
    first: date,
    last: date,
    today: date,
    event_bd: Callable[[Ev], str | None] | None = None,
    person_bd: dict[str, str] | None = None,
    bd_limit: int = 25,
) -> RetentionRef:
    cohorts = periods_in(first, last, interval)
    horizon = min(last_day(shift(cohorts[-1], periods, interval), interval), today)
    seen = [e for e in evs if e.local_day(tz) <= horizon]
    by_person: dict[str, list[Ev]] = defaultdict(list)
    for e in seen:
        by_person[e.person].append(e)

    def bd_of(person: str, at: list[Ev]) -> str | None:
        if person_bd is not None:
            return person_bd.get(person)
        if event_bd is None:
            return None
        values = [v for v in (event_bd(e) for e in at) if v is not None]
        return min(values) if values else None

    entries: list[Entry] = []
    for person, mine in by_person.items():
        starts = [e for e in mine if start(e)]
        if start_type == "first_time":
            groups = [starts] if starts else []
        else:
            groups = [[e for e in starts if period_of(e.local_day(tz), interval) == c] for c in cohorts]
        for group in groups:
            if not group:
                continue
            t0 = min(e.time_ms for e in group)
            cohort = period_of(next(e for e in group if e.time_ms == t0).local_day(tz), interval)
            if cohort in cohorts:
                entries.append(Entry(person, cohort, t0, bd_of(person, [e for e in group if e.time_ms == t0])))

    if person_bd is not None or event_bd is not None:
        freq: dict[str, int] = defaultdict(int)
        for en in entries:
            if en.bd is not None:
                freq[en.bd] += 1
        top = set(sorted(freq, key=lambda v: (-freq[v], v))[:bd_limit])
        for en in entries:
            en.bd = NONE if en.bd is None else en.bd if en.bd in top else OTHER

    out = RetentionRef(cohorts)
    for en in entries:
        out.members.setdefault((en.bd, en.cohort), set()).add(en.person)
        returns = [e for e in by_person[en.person] if ret(e)]

        def returns_in(k: int, en: Entry = en, returns: list[Ev] = returns) -> list[Ev]:
            target = shift(en.cohort, k, interval)
            return [
                e for e in returns if period_of(e.local_day(tz), interval) == target and (k > 0 or e.time_ms >= en.t0)
            ]

        hit = [bool(returns_in(k)) for k in range(periods + 1)]
        for k in range(periods + 1):
            counted = hit[k] if mode == "on" else any(hit[k:])
            if counted:
                out.cells.setdefault((en.bd, en.cohort, k), set()).add(en.person)
            total = sum(e.amount for e in returns_in(k) if e.amount is not None)
            key = (en.bd, en.cohort, k)
            out.values[key] = out.values.get(key, 0.0) + total
    return out


# lifecycle -------------------------------------------------------------------------------------------------------
def lifecycle(
    evs: list[Ev], tz: str, *, pred: Pred, interval: str, first: date, last: date, today: date
) -> dict[date, dict[str, set[str]] | None]:
    """Per period of the range: the people of each status (``None`` for a period not begun by today)."""
    shown = periods_in(first, last, interval)
    horizon = min(last_day(shown[-1], interval), today)
    active: dict[str, set[date]] = defaultdict(set)
    for e in evs:
        if pred(e) and e.local_day(tz) <= horizon:
            active[e.person].add(period_of(e.local_day(tz), interval))
    out: dict[date, dict[str, set[str]] | None] = {}
    for b in shown:
        if b > today:
            out[b] = None
            continue
        prev = shift(b, -1, interval)
        status: dict[str, set[str]] = {s: set() for s in ("new", "returning", "resurrecting", "dormant")}
        for person, ps in active.items():
            if b in ps:
                if min(ps) == b:
                    status["new"].add(person)
                elif prev in ps:
                    status["returning"].add(person)
                else:
                    status["resurrecting"].add(person)
            elif prev in ps:
                status["dormant"].add(person)
        out[b] = status
    return out


# stickiness ------------------------------------------------------------------------------------------------------
def stickiness(
    evs: list[Ev], tz: str, *, pred: Pred, interval: str, first: date, last: date, today: date
) -> tuple[int, dict[int, set[str]]]:
    """The number of periods in the range, and k → the people active in exactly k of them."""
    shown = periods_in(first, last, interval)
    horizon = min(last_day(shown[-1], interval), today)
    active: dict[str, set[date]] = defaultdict(set)
    for e in evs:
        day = e.local_day(tz)
        if pred(e) and shown[0] <= day <= horizon:
            active[e.person].add(period_of(day, interval))
    by_k: dict[int, set[str]] = defaultdict(set)
    for person, ps in active.items():
        by_k[len(ps)].add(person)
    return len(shown), dict(by_k)
