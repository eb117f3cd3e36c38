"""Active and passive events: every notion of "active" counts active events only.

Random logs mix people's own events with passive ones (``push_received``, ``coupon_received``, passive by
default); DAU and ``$any`` in trends, retention's any-event return, lifecycle and stickiness must equal plain-Python
references that drop the passive events, while a definition that names a passive event still counts it. Then: a
flag changes results and the data version, a store made before the flag existed is upgraded in place, and the
user 360 view's last seen ignores a push.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import examples
from tests.query import reference_retention as ref
from tests.query.logs import BASE_MS, DAY_MS, HOUR_MS, Ev, event_logs, fresh_project, load, reference_events
from tests.query.snapshot import assert_snapshot
from userloop.profile.user360 import profile_360
from userloop.query.engine import Engine
from userloop.schema.activity import DEFAULT_PASSIVE_EVENTS
from userloop.store import ProjectStore, Workspace
from userloop.store.sqlbuild import sql

TZ = "Asia/Shanghai"
BASE_DAY = date(2026, 1, 5)
PASSIVE = ("push_received", "coupon_received")
EVENTS = ("view", "pay", *PASSIVE)
SETTINGS = settings(
    max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def is_active(e: Ev) -> bool:
    return e.event not in PASSIVE


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    first = BASE_DAY + timedelta(days=draw(st.integers(-2, 10)))
    return {
        "records": draw(event_logs(max_events=40, days=21, events=EVENTS)),
        "chunks": draw(st.integers(1, 2)),
        "first": first,
        "last": first + timedelta(days=draw(st.integers(0, 12))),
        "interval": draw(st.sampled_from(("day", "week"))),
    }


def _range(case: dict[str, Any]) -> dict[str, str]:
    return {"from": case["first"].isoformat(), "to": case["last"].isoformat()}


def _days(case: dict[str, Any]) -> list[date]:
    return [case["first"] + timedelta(days=k) for k in range((case["last"] - case["first"]).days + 1)]


def _people_per_day(evs: list[Ev], pred: Any) -> dict[date, set[str]]:
    out: dict[date, set[str]] = defaultdict(set)
    for e in evs:
        if pred(e):
            out[e.local_day(TZ)].add(e.person)
    return out


@SETTINGS
@given(case=cases())
def test_activity_leaves_passive_events_out(ws: Workspace, case: dict[str, Any]) -> None:
    _, project = fresh_project(ws, TZ)
    load(project, case["records"], chunks=case["chunks"])
    assert project.passive_events() == {e for e in PASSIVE if e in project.event_names()}
    evs = reference_events(case["records"])
    today = case["last"] + timedelta(days=40)  # every period complete
    engine = Engine(project, TZ)

    # DAU and $any in trends; a passive event named explicitly still counts
    trend = engine.run(
        {
            "kind": "trends",
            "date_range": _range(case),
            "series": [
                {"event": "$any", "math": "dau"},
                {"event": "$any", "math": "total"},
                {"event": "push_received", "math": "users"},
            ],
        },
        today=today,
    ).result
    dau, total, pushed = (s["data"] for s in trend["series"])
    active_people = _people_per_day(evs, is_active)
    push_people = _people_per_day(evs, lambda e: e.event == "push_received")
    counts: dict[date, int] = defaultdict(int)
    for e in evs:
        if is_active(e):
            counts[e.local_day(TZ)] += 1
    days = _days(case)
    assert trend["buckets"] == [d.isoformat() for d in days]
    assert dau == [len(active_people[d]) for d in days]
    assert total == [counts[d] for d in days]
    assert pushed == [len(push_people[d]) for d in days]

    # retention: a first view, returning with any (active) event
    periods = 3
    retention = engine.run(
        {
            "kind": "retention",
            "date_range": _range(case),
            "interval": case["interval"],
            "periods": periods,
            "start": {"event": "view"},
            "return_event": {"event": "$any"},
            "start_type": "first_time",
        },
        today=today,
    ).result
    want = ref.retention(
        evs, TZ, start=lambda e: e.event == "view", ret=is_active, start_type="first_time",
        interval=case["interval"], periods=periods, mode="on", first=case["first"], last=case["last"], today=today,
    )  # fmt: skip
    got_cohorts = {date.fromisoformat(c["cohort"]): c for c in retention["cohorts"]}
    for cohort in want.cohorts:
        members = want.members.get((None, cohort), set())
        row = got_cohorts.get(cohort)
        assert (row["size"] if row else 0) == len(members)
        if row:
            assert row["counts"] == [len(want.cells.get((None, cohort, k), set())) for k in range(periods + 1)]

    # lifecycle and stickiness of any (active) event
    definition = {"event": {"event": "$any"}, "interval": case["interval"], "date_range": _range(case)}
    life = engine.run({"kind": "lifecycle", **definition}, today=today).result
    want_life = ref.lifecycle(
        evs, TZ, pred=is_active, interval=case["interval"], first=case["first"], last=case["last"], today=today
    )
    for row in life["buckets"]:
        status = want_life[date.fromisoformat(row["bucket"])]
        assert status is not None
        assert (row["new"], row["returning"], row["resurrecting"], row["dormant"]) == (
            len(status["new"]), len(status["returning"]), len(status["resurrecting"]), -len(status["dormant"]),
        )  # fmt: skip
    sticky = engine.run({"kind": "stickiness", **definition}, today=today).result
    n, by_k = ref.stickiness(
        evs, TZ, pred=is_active, interval=case["interval"], first=case["first"], last=case["last"], today=today
    )
    assert sticky["periods"] == n
    assert [r["people"] for r in sticky["rows"]] == [len(by_k.get(k, set())) for k in range(1, n + 1)]


# hand-made data ---------------------------------------------------------------------------------------------------
def track(event: str, who: str, day: int, n: int, hour: int = 12) -> dict[str, Any]:
    """An event at ``hour`` o'clock Shanghai time, ``day`` days after Monday 2026-01-05."""
    t = BASE_MS + day * DAY_MS + (hour - 8) * HOUR_MS
    return {"type": "track", "event": event, "distinct_id": who, "time": t, "event_id": f"h{n}", "properties": {}}


HAND = [
    track("view", "u1", 0, 1),
    track("view", "u2", 0, 2),
    track("push_received", "u1", 1, 3),
    track("push_received", "u2", 1, 4),
    track("coupon_received", "u3", 1, 5),  # u3 never does anything themselves
    track("view", "u2", 2, 6),
    track("push_received", "u1", 4, 7),  # u1's last event is a push
]
HAND_RANGE = {"from": "2026-01-05", "to": "2026-01-09"}
HAND_TODAY = date(2026, 1, 20)
DAU = {"kind": "trends", "date_range": HAND_RANGE, "series": [{"event": "$any", "math": "dau"}]}


@pytest.fixture
def hand(ws: Workspace) -> ProjectStore:
    _, project = fresh_project(ws, TZ)
    load(project, HAND)
    return project


def _seen(project: ProjectStore) -> dict[str, tuple[Any, Any]]:
    rows = project.fetchall(
        sql(
            "SELECT i.id_value, u.first_seen, u.last_seen FROM $u AS u JOIN $i AS i ON i.user_id = u.user_id",
            u=project.ref("users"),
            i=project.ref("identities"),
        )
    )
    return {who: (first, last) for who, first, last in rows}


def test_flag_changes_results_and_data_version(hand: ProjectStore) -> None:
    engine = Engine(hand, TZ)
    before = engine.run(DAU, today=HAND_TODAY)
    assert before.result["series"][0]["data"] == [2, 0, 1, 0, 0]
    assert engine.run(DAU, today=HAND_TODAY).cached
    seen_before = _seen(hand)
    assert seen_before["u3"] == (None, None)  # only passive events: never seen
    version = hand.data_version()

    assert hand.set_event_active("push_received", True) is True
    assert hand.data_version() == version + 1
    after = engine.run(DAU, today=HAND_TODAY)
    assert not after.cached
    assert after.result["series"][0]["data"] == [2, 2, 1, 0, 1]
    assert _seen(hand)["u1"][1] > seen_before["u1"][1]  # last seen restamped from the push, now active
    assert hand.set_event_active("push_received", True) is False  # unchanged: no new version
    assert hand.data_version() == version + 1

    assert hand.set_event_active("view", False) is True  # any event can be made passive
    assert engine.run(DAU, today=HAND_TODAY).result["series"][0]["data"] == [0, 2, 0, 0, 1]
    assert hand.set_event_active("nope", False) is None


def test_user360_last_seen_ignores_a_push(hand: ProjectStore) -> None:
    u1 = next(u for u, name in _names(hand).items() if name == "u1")
    view = profile_360(hand, u1, timezone=TZ)
    assert view["profile"]["last_seen"].startswith("2026-01-05T12:00:00")
    assert view["summary"]["last_active"].startswith("2026-01-05T12:00:00")
    assert view["summary"]["last_event"].startswith("2026-01-09T12:00:00")  # the push, shown as an event
    assert view["summary"]["active_days"] == 1 and view["summary"]["events"] == 3


def _names(project: ProjectStore) -> dict[int, str]:
    rows = project.fetchall(sql("SELECT user_id, id_value FROM $i", i=project.ref("identities")))
    return {int(row[0]): str(row[1]) for row in rows}


def test_activity_tags_leave_passive_events_out(ws: Workspace) -> None:
    from userloop.profile import history, tags
    from userloop.profile import materialise as mat

    name, project = fresh_project(ws, TZ)
    load(project, HAND)
    pid = ws.project_info(name).id
    window = {"from": "2026-01-05", "to": "2026-01-09"}
    sources = {
        "active_days_any": {"from": "events", "event": "$any", "agg": "active_days", "window": window},
        "pushes": {"from": "events", "event": "push_received", "agg": "count", "window": window},
        "last_any": {"from": "events", "event": "$any", "agg": "last_time"},
    }
    for tag, source in sources.items():
        kind = "date" if tag == "last_any" else "number"
        tags.save(ws.meta, project, pid, {"name": tag, "kind": "behaviour", "type": kind, "source": source})
    mat.materialise(project, ws.meta, pid, TZ, date(2026, 1, 12))
    names = _names(project)

    def values(tag: str) -> dict[str, Any]:
        rows = project.fetchall(history.values_on(project.schema, f"tag_{tag}", None))
        return {names[int(u)]: v for u, v in rows}

    assert values("active_days_any") == {"u1": 1, "u2": 2, "u3": 0}  # the pushes and the coupon make no day active
    assert values("pushes") == {"u1": 2, "u2": 1, "u3": 0}  # named on purpose: counted
    last = values("last_any")
    assert str(last["u1"]) == "2026-01-05" and str(last["u2"]) == "2026-01-07" and last.get("u3") is None


def test_snapshot_of_any_without_passive_events(hand: ProjectStore) -> None:
    assert_snapshot("trends_dau_passive", Engine(hand, TZ), DAU)


# the registry's upgrade ---------------------------------------------------------------------------------------------
def test_store_without_the_flag_is_upgraded_in_place(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws", timezone=TZ)
    project = ws.project("default")
    load(project, HAND)
    schema = project.schema
    ws.close()
    # make it as an earlier version left it: no flag, first and last seen stamped by every event
    con = duckdb.connect(str(tmp_path / "ws" / "events.duckdb"))
    con.execute(f'ALTER TABLE "{schema}".event_names DROP COLUMN active')
    con.execute(
        f'UPDATE "{schema}".users AS u SET first_seen = s.lo, last_seen = s.hi FROM (SELECT user_id, min(time) AS lo, '
        f'max(time) AS hi FROM "{schema}".events GROUP BY user_id) AS s WHERE u.user_id = s.user_id'
    )
    version = con.execute(f"SELECT value FROM \"{schema}\".counters WHERE name = 'data_version'").fetchone()
    con.close()

    with Workspace.open(tmp_path / "ws", read_only=True) as old:  # read-only: each event reads as its default
        store = old.project("default")
        assert store.passive_events() == {"push_received", "coupon_received"}
        assert _seen(store)["u3"] != (None, None)  # not upgraded yet
    with Workspace.open(tmp_path / "ws") as new:
        store = new.project("default")
        assert store.event_flags() == {"view": True, "push_received": False, "coupon_received": False}
        seen = _seen(store)
        assert seen["u3"] == (None, None)
        assert seen["u1"][1] == seen["u1"][0]  # u1's last seen is their only view again
        assert store.data_version() == version[0] + 1
        engine = Engine(store, TZ)
        assert engine.run(DAU, today=HAND_TODAY).result["series"][0]["data"] == [2, 0, 1, 0, 0]
    with Workspace.open(tmp_path / "ws") as again:  # upgrading twice changes nothing
        assert again.project("default").data_version() == version[0] + 1


def test_defaults_name_delivery_and_grant_events() -> None:
    assert {"push_received", "coupon_received", "message_delivered", "email_delivered"} <= DEFAULT_PASSIVE_EVENTS
    assert not {"view", "app_start", "order_paid", "push_clicked", "coupon_used"} & DEFAULT_PASSIVE_EVENTS


# the faces ----------------------------------------------------------------------------------------------------------
def test_cli_lists_and_sets_flags(tmp_path: Path) -> None:
    import json

    from userloop.cli.main import app

    ws, _ = Workspace.init(tmp_path / "ws", timezone=TZ)
    load(ws.project("default"), HAND)
    ws.close()
    runner = CliRunner()
    w = ["-w", str(tmp_path / "ws")]
    listed = runner.invoke(app, ["events", "list", *w, "--json"])
    assert listed.exit_code == 0, listed.output
    assert {r["event"]: r["active"] for r in json.loads(listed.output)} == {
        "view": True, "push_received": False, "coupon_received": False,
    }  # fmt: skip
    changed = runner.invoke(app, ["events", "set-active", "view", "--passive", *w, "--json"])
    assert changed.exit_code == 0, changed.output
    reply = json.loads(changed.output)
    assert reply["event"] == "view" and reply["active"] is False and reply["changed"] is True
    missing = runner.invoke(app, ["events", "set-active", "nope", "--passive", *w, "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.output)["error"]["code"] == "unknown_event"
