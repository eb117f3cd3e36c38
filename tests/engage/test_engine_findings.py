"""Engine cases found by the integration tests and fixed: a send's benefit reported as ``$benefit_granted``;
timers due before an event handled first; events loaded or dated before a journey started enter nobody; a load
larger than one read page read through; a 29 February anniversary on 28 February in common years."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.engage.conftest import Env, Person
from tests.engage.test_engine import WELCOME, _mail_per_pass, _visits, runs
from userloop.benefits import GrantRow
from userloop.engage.interpreter import effect_key


def test_a_send_with_a_benefit_reports_the_grant_as_benefit_granted(env: Env) -> None:
    """Each ``benefit_grants`` row also appears as a ``$benefit_granted`` event (report.py's module doc lists it),
    whether the benefit came with a message or from a grant node."""
    t0 = datetime(2026, 4, 6, 1, 0)
    env.add_people([Person("g1"), Person("g2")])
    doc = {**WELCOME, "name": "coupon only", "nodes": [{**WELCOME["nodes"][0], "next": None}]}  # type: ignore[index]
    doc.pop("goal")
    jid = env.start(doc, t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    env.track([("g1", "register", t0), ("g2", "register", t0)], loaded_at=t0 + timedelta(seconds=1))
    engine.step(t0 + timedelta(minutes=1))
    with env.meta.session() as s:
        keys = sorted(g.key for g in s.scalars(select(GrantRow)))
    assert keys == sorted(effect_key(jid, 1, "hello", env.keys[d], 1) for d in ("g1", "g2"))
    granted = env.sql("SELECT distinct_id, message_key FROM {events} WHERE event = '$benefit_granted'")
    assert sorted(granted) == sorted((d, effect_key(jid, 1, "hello", env.keys[d], 1)) for d in ("g1", "g2"))


def test_a_timer_due_before_an_entry_event_ends_the_run_before_re_entry_is_judged(env: Env) -> None:
    """A person whose one-hour wait ended at 03:01 and who visits again at 04:01 may re-enter (after_exit), also
    when no pass ran between the two: the outcome must not depend on when the passes happen to run."""
    env.add_people([Person("again")])
    t0 = datetime(2026, 6, 1, 2, 0)
    jid = env.start(_visits({"mode": "after_exit"}), t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    first, second = t0 + timedelta(minutes=1), t0 + timedelta(hours=2, minutes=1)
    env.track([("again", "visit", first)], loaded_at=first)
    engine.step(first + timedelta(minutes=1))
    env.track([("again", "visit", second)], loaded_at=second)
    engine.step(second + timedelta(minutes=1))  # the first run's wait ended an hour ago
    assert [r.entered_at for r in runs(env, jid)] == [first, second]


def _send_on(name: str, event: str) -> dict[str, object]:
    return {"name": name, "entry": {"kind": "event", "event": event}, "start": "m",
            "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip


def test_a_journey_started_later_does_not_take_in_events_loaded_before_it_started(env: Env) -> None:
    env.add_people([Person("p1"), Person("p2")])
    t0 = datetime(2026, 6, 1, 2, 0)
    env.start(_send_on("visits", "visit"), t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    env.track([("p2", "visit", t0 + timedelta(minutes=1))], loaded_at=t0 + timedelta(minutes=1))
    engine.step(t0 + timedelta(minutes=2))
    # p1 registers at 02:10, while only the 'visits' journey runs
    env.track([("p1", "register", t0 + timedelta(minutes=10))], loaded_at=t0 + timedelta(minutes=10))
    engine.step(t0 + timedelta(minutes=11))
    later = env.start(_send_on("registrations", "register"), t0 + timedelta(minutes=20))
    engine.step(t0 + timedelta(minutes=21))
    assert runs(env, later) == []
    assert env.mail_to() == {"p2@example.com": 1}


def test_more_listened_events_in_one_load_than_a_batch_are_all_handled(env: Env) -> None:
    env.add_people([Person("w")] + [Person(f"o{i}") for i in range(10)])
    t0 = datetime(2026, 6, 1, 2, 0)
    doc = {"name": "paid", "entry": {"kind": "event", "event": "register"}, "start": "wait",
           "nodes": [{"id": "wait", "kind": "wait_event", "event": "order_paid", "timeout_seconds": 86400,
                      "next": "m"},
                     {"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    jid = env.start(doc, t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    env.track([("w", "register", t0 + timedelta(minutes=1))], loaded_at=t0 + timedelta(minutes=1))
    engine.step(t0 + timedelta(minutes=2))
    # one import: 20,000 payments by others, then w's, all loaded at the same instant
    loaded = t0 + timedelta(minutes=5)
    events = [(f"o{i % 10}", "order_paid", t0 + timedelta(minutes=3, milliseconds=i)) for i in range(20_000)]
    env.track([*events, ("w", "order_paid", t0 + timedelta(minutes=4))], loaded_at=loaded)
    handled = sum(engine.step(loaded + timedelta(minutes=1 + k)).events for k in range(3))
    assert handled == 20_001
    assert [(r.node, r.status) for r in runs(env, jid)] == [("$exit", "exited")]
    assert env.mail_to() == {"w@example.com": 1}


def test_an_annual_date_on_29_february_fires_once_in_a_common_year(env: Env) -> None:
    env.add_people(
        [Person("leap", extra={"birthday": "2000-02-29"}), Person("feb28", extra={"birthday": "1999-02-28"})]
    )
    doc = {"name": "birthday", "entry": {"kind": "date", "property": "birthday", "time_of_day": "10:00:00"},
           "reentry": {"mode": "after_exit"},
           "start": "m", "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    start = datetime(2026, 2, 26)
    env.start(doc, start)
    got = _mail_per_pass(env, env.engine(), [start + timedelta(hours=k) for k in range(1, 5 * 24)])
    assert got["feb28"] == [datetime(2026, 2, 28, 2, 0)]  # 10:00 in Shanghai
    assert got.get("leap") in ([datetime(2026, 2, 28, 2, 0)], [datetime(2026, 3, 1, 2, 0)])


def test_an_import_of_old_events_enters_nobody(env: Env) -> None:
    env.add_people([Person("old")])
    t0 = datetime(2026, 6, 1, 2, 0)
    jid = env.start(_send_on("registrations", "register"), t0)
    engine = env.engine()
    engine.step(t0)
    # last month's registrations, imported now
    env.track([("old", "register", t0 - timedelta(days=30))], loaded_at=t0 + timedelta(minutes=1))
    engine.step(t0 + timedelta(minutes=2))
    assert runs(env, jid) == []
    assert env.mail() == []
