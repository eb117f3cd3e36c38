"""Random event logs for checking analyses against plain-Python references.

A log is a list of Sensors-format records: track events from anonymous ids (``a0``…) and login ids (``L0``…),
with ties in time, two properties (``amount`` NUMBER, ``channel`` STRING), and sign-ups that bind an anonymous id
to a login id (an identity merge). :func:`load` writes a log through the real ingest path; :func:`reference_events`
resolves the same log with a union-find of its own, so the references never read what the engine wrote.

Person names: a person is named by its login id when it has one, else by its anonymous id; :func:`person_names`
maps the engine's ``user_id`` keys to the same names so user lists can be compared.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

import userloop.query.engine as engine_module
from userloop.ingest import load_json_lines
from userloop.store import ProjectStore, Workspace
from userloop.store.backend import Capability

#: Monday 2026-01-05 00:00 UTC, in epoch milliseconds: the first instant random logs use.
BASE_MS = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
EVENTS = ("view", "cart", "pay", "push", "other")
CHANNELS = ("a", "b", "c")
ANON = tuple(f"a{i}" for i in range(6))
LOGIN = tuple(f"L{i}" for i in range(4))


@dataclass(frozen=True)
class Ev:
    """One event as the reference sees it: the resolved person's name, UTC epoch ms, and properties."""

    person: str
    time_ms: int
    event: str
    event_id: str
    amount: float | None
    channel: str | None

    @property
    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, UTC).replace(tzinfo=None)

    def local(self, timezone: str) -> datetime:
        return datetime.fromtimestamp(self.time_ms / 1000, ZoneInfo(timezone)).replace(tzinfo=None)

    def local_day(self, timezone: str) -> date:
        return self.local(timezone).date()


@st.composite
def event_logs(
    draw: st.DrawFn,
    *,
    max_events: int = 40,
    days: int = 21,
    events: tuple[str, ...] = EVENTS,
    merges: bool = True,
) -> list[dict[str, Any]]:
    """A random log. Times come from a coarse grid (so ties happen) spread over ``days`` days, at any hour."""
    n = draw(st.integers(0, max_events))
    # a small pool of instants makes exact ties common; any hour of the day tests local-day boundaries
    instants = draw(
        st.lists(st.integers(0, days * 24 * 4 - 1), min_size=1, max_size=max(1, n), unique=True).map(
            lambda xs: [BASE_MS + x * 15 * 60_000 for x in xs]
        )
    )
    records: list[dict[str, Any]] = []
    for i in range(n):
        who = draw(st.sampled_from(ANON + LOGIN))
        props: dict[str, Any] = {}
        if who.startswith("L"):
            props["$is_login_id"] = True
        if draw(st.booleans()):
            props["amount"] = float(draw(st.integers(0, 100)))
        if draw(st.booleans()):
            props["channel"] = draw(st.sampled_from(CHANNELS))
        records.append(
            {
                "type": "track",
                "event": draw(st.sampled_from(events)),
                "distinct_id": who,
                "time": draw(st.sampled_from(instants)),
                "event_id": f"e{i:03d}",
                "properties": props,
            }
        )
    if merges:
        bound = draw(st.dictionaries(st.sampled_from(ANON), st.sampled_from(LOGIN), max_size=len(ANON)))
        for anon, login in bound.items():
            at = draw(st.integers(0, len(records)))
            records.insert(
                at,
                {
                    "type": "track_signup",
                    "event": "$SignUp",
                    "distinct_id": login,
                    "original_id": anon,
                    "time": draw(st.sampled_from(instants)),
                    "event_id": f"s_{anon}",
                    "properties": {"$is_login_id": True},
                },
            )
    return records


def reference_events(records: list[dict[str, Any]]) -> list[Ev]:
    """Every event of the log with its person resolved by union-find (sign-up events included, as ``$SignUp``)."""
    login_of: dict[str, str] = {}
    for r in records:
        if r["type"] == "track_signup":
            login_of.setdefault(str(r["original_id"]), str(r["distinct_id"]))
    out = []
    for r in records:
        who = str(r["distinct_id"])
        props = r.get("properties", {})
        out.append(
            Ev(
                person=login_of.get(who, who),
                time_ms=int(r["time"]),
                event=str(r["event"]),
                event_id=str(r["event_id"]),
                amount=props.get("amount"),
                channel=props.get("channel"),
            )
        )
    return out


def shift(records: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The log moved by ``days``, plus an event a year earlier that registers both properties (so filters on them
    compile even for an empty log) and lies outside every range and lookback."""
    seed = {
        "type": "track",
        "event": "seed",
        "distinct_id": "seeder",
        "time": BASE_MS - 365 * 86_400_000,
        "event_id": "seed",
        "properties": {"amount": 1.0, "channel": "a"},
    }
    return [seed, *({**r, "time": r["time"] + days * 86_400_000} for r in records)]


def compare(value: Any, f: dict[str, Any]) -> bool:
    """One filter's operator on a property value, with SQL's NULL rules: a comparison with a missing value is
    false, except the negations (``neq``, ``not_in``), which keep missing values."""
    op, want = f.get("op", "eq"), f.get("value")
    if op == "is_set":
        return value is not None
    if op == "is_not_set":
        return value is None
    if op == "neq":
        return value is None or value != want
    if op == "not_in":
        return value is None or value not in want
    if value is None:
        return False
    checks = {
        "eq": lambda: value == want,
        "in": lambda: value in want,
        "gt": lambda: value > want,
        "gte": lambda: value >= want,
        "lt": lambda: value < want,
        "lte": lambda: value <= want,
    }
    if op not in checks:
        raise AssertionError(f"the reference does not know operator {op!r}")
    return bool(checks[op]())


_projects = itertools.count()


def fresh_project(ws: Workspace, timezone: str = "Asia/Shanghai") -> tuple[str, ProjectStore]:
    """A new, empty project in ``ws`` (one per Hypothesis example, so examples never see each other's data)."""
    name = f"t{next(_projects)}"
    ws.create_project(name, timezone=timezone)
    return name, ws.project(name)


def load(project: ProjectStore, records: list[dict[str, Any]], *, chunks: int = 1) -> None:
    """Write the log through the real ingest path, in ``chunks`` loads (later chunks merge earlier persons)."""
    size = max(1, -(-len(records) // chunks))
    for lo in range(0, len(records), size):
        result = load_json_lines(project, [json.dumps(r) for r in records[lo : lo + size]], source="test")
        assert result.rejected == 0, "a random log must load without rejects"


def person_names(project: ProjectStore) -> dict[int, str]:
    """The engine's person key → the person's name (its login id, else its only anonymous id)."""
    rows = project.con.execute(
        f"SELECT user_id, list(id_value ORDER BY id_value) FROM {project.table('identities')} GROUP BY user_id"
    ).fetchall()
    names = {}
    for user_id, ids in rows:
        logins = [i for i in ids if i.startswith("L")]
        names[int(user_id)] = logins[0] if logins else ids[0]
    return names


def day_range(evs: list[Ev], timezone: str) -> tuple[date, date]:
    """The local days covering every event of ``evs`` (a fixed range when there are none)."""
    if not evs:
        first = datetime.fromtimestamp(BASE_MS / 1000, UTC).date()
        return first, first + timedelta(days=6)
    days = [e.local_day(timezone) for e in evs]
    return min(days), max(days)


@contextmanager
def sql_only() -> Iterator[None]:
    """The engine as on a backend without :attr:`Capability.ARROW_STAGE`: no fold outside SQL, statements alone."""
    real = engine_module.capabilities_of
    with patch.object(engine_module, "capabilities_of", lambda project: real(project) - {Capability.ARROW_STAGE}):
        yield
