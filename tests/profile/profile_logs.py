"""Random logs with profile properties, and the people they make, for checking the profile platform.

A :class:`ProfileLog` is a random event log of :func:`tests.query.logs.event_logs` (track events, ties in time,
sign-ups that merge an anonymous person into a login person) plus Sensors ``profile_set`` records that give some
anonymous and login ids ``city`` (STRING), ``age`` (NUMBER), ``vip`` (BOOL) and ``birthday`` (DATE, written
``"YYYY-MM-DD"``, which the loader types as a date on first sight). A ``seeder`` person sets all four, so the
properties exist whatever the random part holds.

How merges carry profiles (``userloop.ingest.identity_writes.merge_persons``): when a sign-up merges an anonymous
person into a login person, every property keeps the login person's value and takes the anonymous person's value
only where the login person has none (``coalesce(login, anonymous)``). :func:`load_profile_log` loads the profile
records first, so every profiled id is a person before any merge, and :func:`reference_people` applies that rule.
The log gives profiles to at most one anonymous id per login id: with two, which one fills a gap would depend on
the order of merges inside one load, which the loader does not define.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.query.logs import ANON, BASE_MS, EVENTS, LOGIN, event_logs, load, shift
from userloop.ingest import load_json_lines
from userloop.store import ProjectStore

CITIES = ("上海", "北京", "O'Brien", "x; DROP TABLE users", "杭州")
PROFILE_PROPS = ("city", "age", "vip", "birthday")
SEEDER = "seeder"
#: Month-days a birthday takes: around the new year, late February (29 February included) and the spring days
#: the random logs cover, so "birthday within N days" has hits for any ``today`` near a log.
BIRTH_DAYS = tuple(
    (d.month, d.day)
    for d in [date(2027, 12, 20) + timedelta(days=i) for i in range(20)]
    + [date(2028, 1, 1) + timedelta(days=i) for i in range(100)]
)
#: Profile records come before every event (a year before the logs), one millisecond apart, in list order.
PROFILE_MS = BASE_MS - 400 * 86_400_000
BASE_DAY = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()


@dataclass(frozen=True)
class ProfileLog:
    """Profile records (applied first) and track records (``tests.query.logs`` format, seed event included)."""

    profiles: list[dict[str, Any]]
    events: list[dict[str, Any]]
    #: The first (UTC) day the random events may fall on.
    start: date = field(default_factory=lambda: BASE_DAY)


def _profile(who: str, index: int, props: dict[str, Any]) -> dict[str, Any]:
    properties = dict(props)
    if who.startswith("L"):
        properties["$is_login_id"] = True
    return {"type": "profile_set", "distinct_id": who, "time": PROFILE_MS + index, "properties": properties}


@st.composite
def profile_values(draw: st.DrawFn) -> dict[str, Any]:
    """Some of the four profile properties (at least one)."""
    chosen = draw(st.lists(st.sampled_from(PROFILE_PROPS), min_size=1, max_size=4, unique=True))
    out: dict[str, Any] = {}
    for name in chosen:
        if name == "city":
            out[name] = draw(st.sampled_from(CITIES))
        elif name == "age":
            out[name] = draw(st.integers(2, 6)) * 10
        elif name == "vip":
            out[name] = draw(st.booleans())
        else:
            month, day = draw(st.sampled_from(((2, 29), *BIRTH_DAYS)))
            year = 2000 if (month, day) == (2, 29) else draw(st.integers(1970, 2005))
            out[name] = date(year, month, day).isoformat()
    return out


@st.composite
def profile_logs(
    draw: st.DrawFn,
    *,
    max_events: int = 40,
    days: int = 14,
    events: tuple[str, ...] = EVENTS,
    shifts: tuple[int, ...] = (0, 56),
) -> ProfileLog:
    """A random log with profiles. ``shifts`` are the days the events may move by (56 days puts a 14-day log
    across the 2026-03-08 daylight-saving change of America/New_York)."""
    records = draw(event_logs(max_events=max_events, days=days, events=events))
    days_moved = draw(st.sampled_from(shifts))
    moved = shift(records, days_moved)  # adds the seed event
    bound = {str(r["original_id"]): str(r["distinct_id"]) for r in records if r["type"] == "track_signup"}
    profiled = draw(st.lists(st.sampled_from(LOGIN), unique=True))
    for anon in draw(st.lists(st.sampled_from(ANON), unique=True)):
        login = bound.get(anon)
        if login is None or not any(bound.get(a) == login for a in profiled if not a.startswith("L")):
            profiled.append(anon)
    profiles = [_profile(SEEDER, 0, {"city": CITIES[0], "age": 40, "vip": False, "birthday": "1990-01-01"})]
    for who in profiled:
        for _ in range(draw(st.integers(1, 2))):
            profiles.append(_profile(who, len(profiles), draw(profile_values())))
    return ProfileLog(profiles=profiles, events=moved, start=BASE_DAY + timedelta(days=days_moved))


def load_profile_log(project: ProjectStore, log: ProfileLog, *, chunks: int = 1) -> None:
    """Profiles first (one load), then the events in ``chunks`` loads, through the real ingest path."""
    result = load_json_lines(project, [json.dumps(r, ensure_ascii=False) for r in log.profiles], source="profiles")
    assert result.rejected == 0, "random profiles must load without rejects"
    load(project, log.events, chunks=chunks)


def reference_people(log: ProfileLog) -> dict[str, dict[str, Any]]:
    """Every person (by name: the login id, else the only id) with their profile as the engine should hold it:
    ``city``, ``age`` (float), ``vip``, ``birthday`` (date), ``first_seen``/``last_seen`` (naive UTC, from their
    events; None without events)."""
    login_of = {str(r["original_id"]): str(r["distinct_id"]) for r in log.events if r["type"] == "track_signup"}

    def person(who: str) -> str:
        return login_of.get(who, who)

    own: dict[str, dict[str, Any]] = {}
    for r in sorted(log.profiles, key=lambda r: r["time"]):  # record order: time, then input order
        values = own.setdefault(str(r["distinct_id"]), {})
        values.update({k: v for k, v in r["properties"].items() if not k.startswith("$")})
    names = {person(str(r["distinct_id"])) for r in log.events}
    names |= {person(str(r["original_id"])) for r in log.events if r["type"] == "track_signup"}
    names |= {person(who) for who in own}
    people: dict[str, dict[str, Any]] = {n: dict.fromkeys((*PROFILE_PROPS, "first_seen", "last_seen")) for n in names}
    # the login person's own values first, then what a merged anonymous person fills in
    for who, values in sorted(own.items(), key=lambda kv: not kv[0].startswith("L")):
        target = people[person(who)]
        for k, v in values.items():
            if target[k] is None:
                target[k] = _typed(k, v)
    for r in log.events:
        at = datetime.fromtimestamp(r["time"] / 1000, UTC).replace(tzinfo=None)
        p = people[person(str(r["distinct_id"]))]
        p["first_seen"] = at if p["first_seen"] is None else min(p["first_seen"], at)
        p["last_seen"] = at if p["last_seen"] is None else max(p["last_seen"], at)
    return people


def _typed(name: str, value: Any) -> Any:
    if name == "age":
        return float(value)
    if name == "birthday":
        return date.fromisoformat(value)
    return value
