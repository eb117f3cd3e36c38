"""The journeys engine on a real workspace: events loaded through the one loader, profiles in DuckDB, the metadata
DB, a real SMTP server, the reporter writing ``$message_*`` events back. Each pass gets an explicit ``now``; loads
pass ``now_ms`` so the event triggers (read by load time) see what a running service would.

Every expectation is computed in the test from the scenario (who did what when, local times with zoneinfo), then
compared with what the sink received, what the events and users tables hold and what the catalog's stats say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tests.engage.conftest import PROJECT_ZONE, Env, Person
from userloop.benefits import GrantRow
from userloop.engage.interpreter import effect_key
from userloop.engage.tables import OutboxRow, RunRow

UTC_ZONE = ZoneInfo("UTC")


def utc_of(local: datetime, zone: str) -> datetime:
    """The naive-UTC instant of a local wall time that exists once."""
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC_ZONE).replace(tzinfo=None)


def sent_events(env: Env, event: str = "$message_sent") -> list[tuple[Any, ...]]:
    return env.sql(
        "SELECT distinct_id, journey_id, node, message_key, event_id FROM {events} WHERE event = ? "
        "ORDER BY distinct_id, message_key",
        [event],
    )


def outbox(env: Env, journey_id: int) -> list[OutboxRow]:
    with env.meta.session() as s:
        return list(s.scalars(select(OutboxRow).where(OutboxRow.journey_id == journey_id)).all())


def runs(env: Env, journey_id: int) -> list[RunRow]:
    with env.meta.session() as s:
        return list(s.scalars(select(RunRow).where(RunRow.journey_id == journey_id).order_by(RunRow.id)).all())


# abandoned cart ---------------------------------------------------------------------------------------------------
CART = {
    "name": "abandoned cart",
    "entry": {"kind": "event", "event": "add_to_cart", "unless": {"event": "order_paid", "within_seconds": 3600}},
    "start": "remind",
    "nodes": [{"id": "remind", "kind": "send", "channel": "mail", "material": "reminder"}],
}


def test_abandoned_cart_reminds_only_those_who_did_not_pay_within_the_hour(env: Env) -> None:
    t0 = datetime(2026, 3, 2, 2, 0)  # 10:00 in Shanghai
    people = [Person(f"cart{i}") for i in range(6)]
    env.add_people(people)
    jid = env.start(CART, t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)  # the trigger mark starts here
    added = t0 + timedelta(minutes=1)
    env.track([(p.did, "add_to_cart", added) for p in people], loaded_at=added + timedelta(seconds=5))
    # cart0, cart1 pay within the hour; cart2 pays 90 minutes later (too late); cart3 pays before adding (no effect)
    env.track([("cart3", "order_paid", t0 - timedelta(minutes=10))], loaded_at=t0 + timedelta(minutes=2))
    engine.step(t0 + timedelta(minutes=5))
    env.track(
        [
            ("cart0", "order_paid", added + timedelta(minutes=20)),
            ("cart1", "order_paid", added + timedelta(minutes=59)),
        ],
        loaded_at=added + timedelta(minutes=59, seconds=30),
    )
    engine.step(added + timedelta(minutes=59, seconds=45))
    assert env.mail() == []  # nobody's hour is over yet
    env.track([("cart2", "order_paid", added + timedelta(minutes=90))], loaded_at=added + timedelta(minutes=91))
    done = engine.step(added + timedelta(hours=2))
    reminded = {"cart2", "cart3", "cart4", "cart5"}
    assert done.delivered.by_status == {"sent": len(reminded)}
    assert env.mail_to() == {env.people[d].address: 1 for d in reminded}
    for m in env.mail():
        assert "购物车" in m.subject  # zh-CN, the people's language
    # the results are events, with the journey, the node and the message key
    want = sorted((d, jid, "remind", effect_key(jid, 1, "remind", env.keys[d], 1)) for d in reminded)
    assert [r[:4] for r in sent_events(env)] == want
    # a second pass (and a third, later) writes nothing again
    again = engine.step(added + timedelta(hours=2, minutes=1))
    engine.step(added + timedelta(days=1))
    assert again.delivered.by_status == {} and again.reported.events == 0
    assert len(sent_events(env)) == len(reminded)
    assert len(env.mail()) == len(reminded)
    with env.meta.session() as s:
        statuses = dict(s.execute(select(RunRow.person, RunRow.exit_reason).where(RunRow.journey_id == jid)).all())
    assert statuses == {
        **{env.keys[d]: "entry_condition" for d in ("cart0", "cart1")},
        **{env.keys[d]: statuses[env.keys[d]] for d in reminded},
    }


# welcome: a benefit, a wait for an event, a random split with a control branch, a goal ----------------------------
WELCOME = {
    "name": "welcome",
    "entry": {"kind": "event", "event": "register"},
    "start": "hello",
    "nodes": [
        {"id": "hello", "kind": "send", "channel": "mail", "material": "welcome", "benefit": "welcome10",
         "next": "wait_pay"},
        {"id": "wait_pay", "kind": "wait_event", "event": "order_paid", "timeout_seconds": 3 * 86400,
         "timeout_next": "ab"},
        {"id": "ab", "kind": "split", "branches": [
            {"name": "nudge", "percent": 50, "next": "remind"},
            {"name": "holdout", "percent": 50, "control": True}]},
        {"id": "remind", "kind": "send", "channel": "mail", "material": "reminder"},
    ],
    "goal": {"event": "order_paid", "within_seconds": 7 * 86400},
}  # fmt: skip


@dataclass
class Welcome:
    """What the welcome scenario did, by distinct id, and the journey's stats at its end."""

    jid: int
    stats: dict[str, Any]
    early: set[str]
    late: set[str]
    timed_out: set[str]
    reminded: set[str]
    holdout: set[str]


def run_welcome(env: Env) -> Welcome:
    """24 people register; everyone gets a coupon by e-mail; 4 pay within three days; the other 20 time out into
    a 50/50 split (a reminder, or the holdout); 8 of them pay on day five (converted), one on day eight (too late
    for the goal)."""
    t0 = datetime(2026, 4, 6, 1, 0)  # 09:00 in Shanghai, a Monday
    people = [Person(f"new{i:02d}", language="en" if i % 3 == 0 else "zh-CN") for i in range(24)]
    env.add_people(people)
    jid = env.start(WELCOME, t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    registered = t0 + timedelta(minutes=1)
    env.track([(p.did, "register", registered) for p in people], loaded_at=registered)
    engine.step(registered + timedelta(minutes=1))
    # everyone got the welcome with their own coupon code
    mail = env.mail()
    assert len(mail) == len(people)
    with env.meta.session() as s:
        grants = {int(g.person): g for g in s.scalars(select(GrantRow).where(GrantRow.project_id == env.info.id))}
    assert set(grants) == {env.keys[p.did] for p in people}
    codes = {g.code for g in grants.values()}
    assert len(codes) == len(people)
    for m in mail:
        (rcpt,) = m.rcpt_to
        did = rcpt.split("@")[0]
        grant = grants[env.keys[did]]
        assert grant.code in (m.text or ""), (did, m.text)
        assert grant.key == effect_key(jid, 1, "hello", env.keys[did], 1)
        assert grant.expires_at == registered + timedelta(minutes=1, days=14)
        assert ("Coupon" if env.people[did].language == "en" else "优惠券") in (m.text or "")

    # the first four pay within three days; the next eight pay on day five (after the timeout, within the goal)
    early = [p.did for p in people[:4]]
    late = [p.did for p in people[4:12]]
    env.track([(d, "order_paid", registered + timedelta(days=1)) for d in early],
              loaded_at=registered + timedelta(days=1, minutes=1))  # fmt: skip
    engine.step(registered + timedelta(days=1, minutes=2))
    timeout = registered + timedelta(days=3)
    engine.step(timeout + timedelta(minutes=1))
    reminded = {r[0].split("@")[0] for m in env.mail()[len(people) :] for r in [m.rcpt_to]}
    timed_out = {p.did for p in people} - set(early)
    assert reminded < timed_out and reminded  # the split sent some, held the others
    holdout = timed_out - reminded
    assert holdout
    env.track([(d, "order_paid", registered + timedelta(days=5)) for d in late],
              loaded_at=registered + timedelta(days=5, minutes=1))  # fmt: skip
    engine.step(registered + timedelta(days=5, minutes=2))
    # the holdout is held (converted or not) until the goal's window ends
    held = [r for r in runs(env, jid) if r.status == "held"]
    assert {r.person for r in held} == {env.keys[d] for d in holdout}
    # a payment after the goal's window converts nobody
    env.track([(people[12].did, "order_paid", registered + timedelta(days=8))],
              loaded_at=registered + timedelta(days=8, minutes=1))  # fmt: skip
    engine.step(registered + timedelta(days=8, minutes=2))

    return Welcome(jid, env.journeys().stats(jid), set(early), set(late), timed_out, reminded, holdout)


def test_welcome_journey_grants_a_coupon_splits_with_a_control_and_counts_conversions(env: Env) -> None:
    w = run_welcome(env)
    jid, stats, early, late, timed_out, reminded, holdout = (
        w.jid, w.stats, w.early, w.late, w.timed_out, w.reminded, w.holdout)  # fmt: skip
    n = len(env.people)
    assert stats["entered"] == n
    assert stats["converted"] == len(early) + len(late)
    messages = stats["messages"]
    assert messages["hello"] == {"sent": n}
    assert messages["remind"] == {"sent": len(reminded)}
    nodes = stats["nodes"]
    e, t, r, h = len(early), len(timed_out), len(reminded), len(holdout)
    assert nodes == {
        "hello": {"entered": n, "moved": n},
        "wait_pay": {"entered": n, "branch:event": e, "exited": e, "branch:timeout": t},
        "ab": {"entered": t, "branch:nudge": r, "branch:holdout": h, "exited": h},
        "remind": {"entered": r, "moved": r, "exited": r},
        "$goal": {"converted": e + len(late)},
    }
    # then it exits
    assert [r for r in runs(env, jid) if r.status != "exited"] == []
    assert {r.person for r in runs(env, jid) if r.exit_reason == "control"} == {env.keys[d] for d in holdout}
    # every person who took a branch counts for it, also once they have left the journey (the reminder branch
    # ends with its send, so its people exit at once)
    branches = stats["branches"]
    assert {k: v for k, v in branches.items() if k.startswith("ab:")} == {
        "ab:nudge": {"entered": len(reminded), "converted": len(reminded & late)},
        "ab:holdout": {"entered": len(holdout), "converted": len(holdout & late)},
    }
    assert branches["wait_pay:timeout"] == {"entered": len(timed_out), "converted": len(late)}
    # the reminders' events carry the branches taken
    sent = env.sql("SELECT distinct_id, branch FROM {events} WHERE event = '$message_sent' AND node = 'remind'")
    assert sorted(sent) == sorted((d, "wait_pay:timeout|ab:nudge") for d in reminded)


# schedules --------------------------------------------------------------------------------------------------------
def _mail_per_pass(env: Env, engine: Any, passes: list[datetime]) -> dict[str, list[datetime]]:
    """Step at each time; which recipient got a message at which pass."""
    got: dict[str, list[datetime]] = {}
    seen = len(env.mail())
    for now in passes:
        engine.step(now)
        mail = env.mail()
        for m in mail[seen:]:
            for rcpt in m.rcpt_to:
                got.setdefault(rcpt.split("@")[0], []).append(now)
        seen = len(mail)
    return got


def _first_pass_at_or_after(passes: list[datetime], at: datetime) -> datetime:
    return next(p for p in passes if p >= at)


def test_a_one_off_broadcast_at_a_project_local_time_to_a_refreshed_segment_fires_once(env: Env) -> None:
    from userloop.profile import segments

    people = [Person(f"b{i}", extra={"city": "上海" if i % 2 else "北京"}) for i in range(8)]
    env.add_people(people)
    seg = segments.save(env.meta, env.store, env.info, name="shanghai",
                        rule={"type": "property", "property": "city", "op": "eq", "value": "上海"})  # fmt: skip
    segments.refresh(env.meta, env.store, env.info, seg.id, run_date=date(2026, 5, 1))
    # 2026-05-01 10:00 in Shanghai is 02:00 UTC
    doc = {"name": "may day", "entry": {"kind": "schedule", "segment": seg.id, "once_at": "2026-05-01T10:00:00"},
           "start": "m", "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    jid = env.start(doc, datetime(2026, 4, 30))
    due = utc_of(datetime(2026, 5, 1, 10, 0), PROJECT_ZONE)
    assert due == datetime(2026, 5, 1, 2, 0)
    passes = [
        due - timedelta(minutes=1),
        due + timedelta(seconds=30),
        due + timedelta(minutes=5),
        due + timedelta(days=1),
    ]
    engine = env.engine()
    got = _mail_per_pass(env, engine, passes)
    members = {p.did for p in people if p.extra["city"] == "上海"}
    assert got == {d: [passes[1]] for d in members}
    # a second engine (a restart) does not fire it again
    assert _mail_per_pass(env, env.engine(), [due + timedelta(days=2)]) == {}
    assert {r.person for r in runs(env, jid)} == {env.keys[d] for d in members}


def test_a_daily_schedule_in_each_persons_zone_fires_at_their_local_time(env: Env) -> None:
    zones = {"sh1": "Asia/Shanghai", "sh2": "Asia/Shanghai", "ny1": "America/New_York", "ny2": "America/New_York"}
    env.add_people([Person(d, zone=z) for d, z in zones.items()])
    doc = {"name": "daily", "entry": {"kind": "schedule", "every": "day", "time_of_day": "09:00:00", "zone": "person"},
           "reentry": {"mode": "after_exit"},
           "start": "m", "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    start = datetime(2026, 3, 6, 12, 0)  # Friday; New York moves to summer time on Sunday 2026-03-08
    env.start(doc, start)
    passes = [start + timedelta(minutes=20 * k) for k in range(1, 3 * 72 + 1)]  # every 20 minutes for three days
    got = _mail_per_pass(env, env.engine(), passes)
    want: dict[str, list[datetime]] = {}
    for did, zone in zones.items():
        for day in (date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)):
            at = utc_of(datetime.combine(day, datetime.min.time()).replace(hour=9), zone)
            if start <= at <= passes[-1]:
                want.setdefault(did, []).append(_first_pass_at_or_after(passes, at))
    assert got == want
    # New York's 09:00 is 14:00 UTC before the change and 13:00 UTC after it
    assert [(p.day, p.hour) for p in got["ny1"]] == [(6, 14), (7, 14), (8, 13)]
    assert [(p.day, p.hour) for p in got["sh1"]] == [(7, 1), (8, 1), (9, 1)]


def test_a_weekly_schedule_in_the_project_zone_fires_on_its_weekdays_only(env: Env) -> None:
    env.add_people([Person("w1"), Person("w2", zone="America/New_York")])  # the project's zone decides here
    doc = {"name": "weekly", "entry": {"kind": "schedule", "every": "week", "weekdays": ["mon", "thu"],
                                       "time_of_day": "20:30:00"},
           "reentry": {"mode": "after_exit"},
           "start": "m", "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    start = datetime(2026, 9, 1, 0, 0)  # Tuesday 08:00 in Shanghai
    env.start(doc, start)
    passes = [start + timedelta(minutes=30 * k) for k in range(1, 9 * 48)]
    got = _mail_per_pass(env, env.engine(), passes)
    want: list[datetime] = []
    day = date(2026, 8, 31)
    while day <= date(2026, 9, 10):
        at = utc_of(datetime(day.year, day.month, day.day, 20, 30), PROJECT_ZONE)
        if day.weekday() in (0, 3) and start <= at <= passes[-1]:
            want.append(_first_pass_at_or_after(passes, at))
        day += timedelta(days=1)
    assert [w.isoformat() for w in want] == ["2026-09-03T12:30:00", "2026-09-07T12:30:00"]
    assert got == {"w1": want, "w2": want}


# re-entry ---------------------------------------------------------------------------------------------------------
def _visits(reentry: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"visit {reentry['mode']}", "entry": {"kind": "event", "event": "visit"}, "reentry": reentry,
            "start": "m", "nodes": [
                {"id": "m", "kind": "send", "channel": "mail", "material": "reminder", "next": "w"},
                {"id": "w", "kind": "wait", "seconds": 3600}]}  # fmt: skip


def test_reentry_never_after_exit_and_cooldown_with_repeated_entry_events(env: Env) -> None:
    rules: dict[str, dict[str, Any]] = {"never": {"mode": "never"}, "after": {"mode": "after_exit"},
             "cool": {"mode": "cooldown", "cooldown_seconds": 3 * 3600}}  # fmt: skip
    env.add_people([Person(d) for d in rules])
    t0 = datetime(2026, 6, 1, 2, 0)
    ids = {d: env.start(_visits(r) | {"name": f"visit {d}"}, t0 - timedelta(minutes=1)) for d, r in rules.items()}
    # each journey hears only its own person: the 'who' filter
    for d, jid in ids.items():
        doc = _visits(rules[d]) | {
            "name": f"visit {d}",
            "who": {"all": [{"kind": "property", "property": "email", "value": f"{d}@example.com"}]},
        }
        env.journeys().update(jid, doc)
    engine = env.engine()
    engine.step(t0)
    offsets = [timedelta(0), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=3, minutes=10)]
    clock = t0
    for off in offsets:
        at = t0 + timedelta(minutes=1) + off
        while clock + timedelta(minutes=10) < at:  # a pass every ten minutes, as a service would run them
            clock += timedelta(minutes=10)
            engine.step(clock)
        env.track([(d, "visit", at) for d in rules], loaded_at=at + timedelta(seconds=1))
        clock = at + timedelta(minutes=1)
        engine.step(clock)
    engine.step(t0 + timedelta(hours=6))
    visits = [t0 + timedelta(minutes=1) + off for off in offsets]
    # independent expectation: a run lasts an hour; cooldown counts three hours from the last entry
    want: dict[str, list[datetime]] = {"never": visits[:1], "after": [], "cool": []}
    for v in visits:
        last = want["after"][-1] if want["after"] else None
        if last is None or v >= last + timedelta(hours=1):
            want["after"].append(v)
        last = want["cool"][-1] if want["cool"] else None
        if last is None or v >= last + timedelta(hours=3):
            want["cool"].append(v)
    assert want["after"] == [visits[0], visits[2], visits[3]] and want["cool"] == [visits[0], visits[3]]
    for d, jid in ids.items():
        entered = [r.entered_at for r in runs(env, jid)]
        assert entered == want[d], d
        assert [r.occurrence for r in runs(env, jid)] == list(range(1, len(want[d]) + 1))
    assert env.mail_to() == {f"{d}@example.com": len(want[d]) for d in rules}


# profile updates --------------------------------------------------------------------------------------------------
def test_an_update_node_writes_profile_properties_through_the_reporter(env: Env) -> None:
    env.add_people([Person("u1"), Person("u2")])
    t0 = datetime(2026, 6, 1, 2, 0)
    doc = {"name": "upgrade", "entry": {"kind": "event", "event": "order_paid"}, "start": "set",
           "nodes": [{"id": "set", "kind": "update", "set": {"vip": True, "tier": "gold", "score": 7}}]}  # fmt: skip
    jid = env.start(doc, t0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(t0)
    env.track([("u1", "order_paid", t0 + timedelta(minutes=1))], loaded_at=t0 + timedelta(minutes=1, seconds=1))
    done = engine.step(t0 + timedelta(minutes=2))
    assert done.reported.updates == 1
    got = env.sql("SELECT first_id, vip, tier, score FROM {users} ORDER BY first_id")
    assert got == [("u1", True, "gold", 7), ("u2", None, None, None)]
    assert [(o.node, o.status, o.kind) for o in outbox(env, jid)] == [("set", "done", "update")]
    # nothing is applied twice
    assert engine.step(t0 + timedelta(minutes=3)).reported.updates == 0


# dates ------------------------------------------------------------------------------------------------------------
def test_a_birthday_entry_fires_on_the_local_day_in_each_persons_zone(env: Env) -> None:
    people = {
        "sh": ("Asia/Shanghai", "1990-05-10"),
        "ny": ("America/New_York", "1985-05-10"),
        "kiri": ("Pacific/Kiritimati", "2000-05-10"),  # UTC+14: the day starts while it is still the 9th in UTC
        "honolulu": ("Pacific/Honolulu", "1970-05-10"),  # UTC-10
        "later": ("Asia/Shanghai", "1990-05-11"),
        "other": ("Asia/Shanghai", "1990-06-10"),
    }
    env.add_people([Person(d, zone=z, extra={"birthday": b}) for d, (z, b) in people.items()])
    doc = {"name": "birthday", "entry": {"kind": "date", "property": "birthday", "time_of_day": "10:00:00"},
           "reentry": {"mode": "after_exit"},
           "start": "m", "nodes": [{"id": "m", "kind": "send", "channel": "mail", "material": "reminder"}]}  # fmt: skip
    start = datetime(2026, 5, 9, 0, 0)
    env.start(doc, start)
    passes = [start + timedelta(minutes=30 * k) for k in range(1, 4 * 48)]
    got = _mail_per_pass(env, env.engine(), passes)
    want: dict[str, list[datetime]] = {}
    for did, (zone, birthday) in people.items():
        month, day = int(birthday[5:7]), int(birthday[8:10])
        at = utc_of(datetime(2026, month, day, 10, 0), zone)
        if start <= at <= passes[-1]:
            want[did] = [_first_pass_at_or_after(passes, at)]
    assert set(want) == {"sh", "ny", "kiri", "honolulu", "later"}
    assert want["kiri"][0] < datetime(2026, 5, 10)  # 10:00 on the 10th in Kiritimati is the 9th in UTC
    assert got == want
