"""Delivery rules through :meth:`Deliverer.run_once` with explicit times, on a real workspace: people enter a
one-send journey (the runtime writes the outbox with their zone and addresses from DuckDB), the deliverer applies
the project's rules and sends through a real SMTP server, the reporter writes the results as events.

Each expectation is computed here, independently of :mod:`userloop.engage.rules`: local dates and weeks with
zoneinfo, quiet-hour ends as wall times converted with zoneinfo, the global control group from its documented
hash (SHA-256 of ``salt ␟ person``, the first 53 bits as a fraction), the rate limit as a token-bucket bound."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.engage.conftest import Env, Person
from userloop.engage.channels.registry import save_channel
from userloop.engage.delivery import Deliverer, Tally
from userloop.engage.fakes.jpush import JPushFake
from userloop.engage.report import report
from userloop.engage.rules import CapRule, QuietHours
from userloop.engage.tables import OutboxRow, RunRow, SubscriptionRow

UTC_ZONE = ZoneInfo("UTC")


def utc_of(local: datetime, zone: str) -> datetime:
    """The naive-UTC instant of a local wall time (the first, for an ambiguous one)."""
    return local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC_ZONE).replace(tzinfo=None)


def local_of(at: datetime, zone: str) -> datetime:
    return at.replace(tzinfo=UTC_ZONE).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def one_send(
    env: Env,
    name: str,
    at: datetime,
    *,
    channel: str = "mail",
    category: str = "marketing",
    fallback: Sequence[str] = (),
) -> int:
    """A running journey that sends once and ends; people may enter again after each run."""
    doc = {
        "name": name,
        "entry": {"kind": "event", "event": "never_loaded"},
        "reentry": {"mode": "after_exit"},
        "start": "m",
        "nodes": [{"id": "m", "kind": "send", "channel": channel, "material": "reminder", "category": category,
                   "fallback": list(fallback)}],
    }  # fmt: skip
    return env.start(doc, at)


class Driver:
    """Enter people into journeys (the runtime, reading their profiles) and deliver with one deliverer."""

    def __init__(self, env: Env, **kwargs: Any) -> None:
        self.env = env
        self.stepper = env.engine().stepper
        self.deliverer: Deliverer = env.deliverer(**kwargs)

    def enter(self, jid: int, dids: Sequence[str], at: datetime) -> None:
        got = self.stepper.enroll(jid, [self.env.keys[d] for d in dids], at)
        assert got.entered == len(dids), got

    def deliver(self, now: datetime) -> Tally:
        """Delivery passes at ``now`` until nothing is left but rows waiting for later (as the engine does)."""
        total = Tally()
        while True:
            tally = self.deliverer.run_once(now)
            for k, v in tally.by_status.items():
                total.add(k, v)
            total.deferred += tally.deferred
            total.retried += tally.retried
            if not tally.handled or tally.deferred + tally.retried == tally.handled:
                return total


def rows(env: Env, jid: int) -> list[OutboxRow]:
    with env.meta.session() as s:
        return list(
            s.scalars(
                select(OutboxRow).where(OutboxRow.journey_id == jid).order_by(OutboxRow.person, OutboxRow.occurrence)
            )
        )


def status_of(env: Env, jid: int) -> dict[tuple[int, int], str]:
    return {(r.person, r.occurrence): r.status for r in rows(env, jid)}


# frequency caps ---------------------------------------------------------------------------------------------------
CAP_ZONES = {
    "kiri": "Pacific/Kiritimati",  # UTC+14
    "pago": "Pacific/Pago_Pago",  # UTC-11: the same instant is a day earlier
    "ny": "America/New_York",
    "sh": "Asia/Shanghai",
}


def expected_caps(attempts: Sequence[datetime], zone: str, per_day: int, per_week: int) -> list[str]:
    """Independent: each attempt is sent unless the person already had ``per_day`` sends on its local date or
    ``per_week`` in its local ISO week."""
    sent: list[date] = []
    out = []
    for at in attempts:
        d = local_of(at, zone).date()
        day = sum(1 for s in sent if s == d)
        week = sum(1 for s in sent if s.isocalendar()[:2] == d.isocalendar()[:2])
        if day >= per_day or week >= per_week:
            out.append("capped")
        else:
            out.append("sent")
            sent.append(d)
    return out


@pytest.mark.parametrize(
    "start",
    [datetime(2026, 3, 4, 0, 0), datetime(2026, 10, 28, 0, 0)],
    ids=["spring-forward-2026-03-08", "fall-back-2026-11-01"],
)
def test_frequency_caps_count_per_local_day_and_week_in_the_persons_zone(env: Env, start: datetime) -> None:
    env.add_people([Person(d, zone=z) for d, z in CAP_ZONES.items()])
    env.rules(caps=[CapRule(channel="*", per_day=2, per_week=6)], quiet_hours=None)
    jid = one_send(env, "capped", start - timedelta(hours=1))
    drive = Driver(env)
    # an attempt every 3 h 20 min for 9 days: the attempts walk across every hour of every local day
    attempts = [start + timedelta(minutes=200 * k) for k in range(9 * 24 * 60 // 200)]
    for at in attempts:
        drive.enter(jid, list(CAP_ZONES), at)
        tally = drive.deliver(at)
        assert tally.deferred == 0 and tally.retried == 0
    got = status_of(env, jid)
    for did, zone in CAP_ZONES.items():
        p = env.keys[did]
        want = expected_caps(attempts, zone, per_day=2, per_week=6)
        assert [got[(p, k + 1)] for k in range(len(attempts))] == want, did
    # the mailbox holds exactly the sends
    sent = {did: sum(1 for (p, _), s in got.items() if p == env.keys[did] and s == "sent") for did in CAP_ZONES}
    assert env.mail_to() == {f"{d}@example.com": n for d, n in sent.items()}
    # a capped person has moved on: every run ended, none waits on the send
    with env.meta.session() as s:
        assert set(s.scalars(select(RunRow.status).where(RunRow.journey_id == jid))) == {"exited"}
    # and each capped send is a $message_capped event naming the rule
    report(env.meta, env.info, env.store)
    capped = env.sql(
        "SELECT distinct_id, count(*), min(reason), max(reason) FROM {events} WHERE event = '$message_capped' "
        "GROUP BY distinct_id ORDER BY distinct_id"
    )
    want_capped = sorted(
        (d, sum(1 for (p, _), s in got.items() if p == env.keys[d] and s == "capped"), "cap:*", "cap:*")
        for d in CAP_ZONES
    )
    assert capped == [w for w in want_capped if w[1]]


def test_caps_on_the_new_york_dst_days_use_the_local_day_of_23_and_25_hours(env: Env) -> None:
    """Two sends a day allowed: a send at 00:30 local and at 23:30 local fall on the same local day, however long
    it is, and a third in between is capped; the next local day starts fresh."""
    env.add_people([Person("ny", zone="America/New_York")])
    env.rules(caps=[CapRule(channel="mail", per_day=2)], quiet_hours=None)
    jid = one_send(env, "dst caps", datetime(2026, 3, 1))
    drive = Driver(env)
    zone = "America/New_York"
    walls = []
    for day in (date(2026, 3, 8), date(2026, 11, 1)):
        walls += [datetime.combine(day, time(0, 30)), datetime.combine(day, time(23, 30))]
        walls += [datetime.combine(day, time(12, 0)), datetime.combine(day + timedelta(days=1), time(0, 10))]
    attempts = sorted(utc_of(w, zone) for w in walls)
    # 2026-03-08 runs 23 hours, 2026-11-01 25 hours, between local midnights
    assert utc_of(datetime(2026, 3, 9), zone) - utc_of(datetime(2026, 3, 8), zone) == timedelta(hours=23)
    assert utc_of(datetime(2026, 11, 2), zone) - utc_of(datetime(2026, 11, 1), zone) == timedelta(hours=25)
    for at in attempts:
        drive.enter(jid, ["ny"], at)
        drive.deliver(at)
    got = status_of(env, jid)
    p = env.keys["ny"]
    want = expected_caps(attempts, zone, per_day=2, per_week=10**6)
    assert [got[(p, k + 1)] for k in range(len(attempts))] == want
    assert want == ["sent", "sent", "capped", "sent"] * 2


# quiet hours ------------------------------------------------------------------------------------------------------
def test_quiet_hours_defer_to_the_next_allowed_local_time(env: Env) -> None:
    zones = {"sh": "Asia/Shanghai", "ny": "America/New_York", "london": "Europe/London"}
    env.add_people([Person(d, zone=z) for d, z in zones.items()])
    env.rules(caps=[], quiet_hours=QuietHours(start=time(22, 0), end=time(8, 0), policy="defer"))
    # 2026-03-08 05:00 UTC: 13:00 in Shanghai, 00:00 EST in New York (clocks go forward at 02:00), 05:00 in London
    at = datetime(2026, 3, 8, 5, 0)
    jid = one_send(env, "quiet", at - timedelta(hours=1))
    drive = Driver(env)
    drive.enter(jid, list(zones), at)
    tally = drive.deliver(at)
    assert tally.by_status == {"sent": 1} and tally.deferred == 2
    want_due = {
        "sh": at,
        "ny": utc_of(datetime(2026, 3, 8, 8, 0), "America/New_York"),  # 08:00 EDT = 12:00 UTC
        "london": utc_of(datetime(2026, 3, 8, 8, 0), "Europe/London"),
    }
    assert want_due["ny"] == datetime(2026, 3, 8, 12, 0)
    by_person = {r.person: r for r in rows(env, jid)}
    for did in ("ny", "london"):
        row = by_person[env.keys[did]]
        assert (row.status, row.due_at) == ("pending", want_due[did]), did
    # nothing goes a second early; each goes at its time
    for did in ("london", "ny"):
        before = drive.deliver(want_due[did] - timedelta(seconds=1))
        assert before.handled == 0
        assert drive.deliver(want_due[did]).by_status == {"sent": 1}
        assert rows(env, jid)[[r.person for r in rows(env, jid)].index(env.keys[did])].done_at == want_due[did]
    assert env.mail_to() == {f"{d}@example.com": 1 for d in zones}


def test_quiet_hours_drop_skips_the_send_and_reports_why(env: Env) -> None:
    env.add_people([Person("sh", zone="Asia/Shanghai"), Person("ny", zone="America/New_York")])
    env.rules(caps=[], quiet_hours=QuietHours(start=time(21, 30), end=time(7, 0), policy="drop"))
    at = datetime(2026, 5, 4, 14, 0)  # 22:00 in Shanghai (quiet), 10:00 EDT in New York
    assert local_of(at, "Asia/Shanghai").time() == time(22, 0)
    jid = one_send(env, "drop", at - timedelta(hours=1))
    tx = one_send(env, "receipt", at - timedelta(hours=1), category="transactional")
    drive = Driver(env)
    drive.enter(jid, ["sh", "ny"], at)
    drive.enter(tx, ["sh"], at)
    assert drive.deliver(at).by_status == {"sent": 2, "quiet_dropped": 1}
    assert {env.keys["sh"]: "quiet_dropped", env.keys["ny"]: "sent"} == {r.person: r.status for r in rows(env, jid)}
    assert [r.status for r in rows(env, tx)] == ["sent"]  # transactional messages ignore quiet hours
    assert drive.deliver(at + timedelta(days=1)).handled == 0
    report(env.meta, env.info, env.store)
    skipped = env.sql("SELECT distinct_id, reason FROM {events} WHERE event = '$message_skipped'")
    assert skipped == [("sh", "quiet_hours")]
    assert env.mail_to() == {"sh@example.com": 1, "ny@example.com": 1}


# global control group ---------------------------------------------------------------------------------------------
def in_control(salt: str, person: int, share: float) -> bool:
    """The documented assignment, written again here: SHA-256 of ``salt ␟ person``, first 53 bits as a fraction."""
    digest = hashlib.sha256(f"{salt}\x1f{person}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53 < share


def test_the_global_control_group_is_a_stable_share_held_out_of_marketing_only(env: Env) -> None:
    people = [Person(f"gc{i:03d}") for i in range(200)]
    env.add_people(people)
    env.rules(caps=[], quiet_hours=None, control_share=0.1, control_salt="holdout-2026")
    t0 = datetime(2026, 6, 1, 2, 0)
    promo = one_send(env, "promo", t0)
    receipt = one_send(env, "receipt", t0, category="transactional")
    drive = Driver(env)
    dids = [p.did for p in people]
    want = {env.keys[d] for d in dids if in_control("holdout-2026", env.keys[d], 0.1)}
    assert 10 <= len(want) <= 30  # about 10 % of 200
    for k, at in enumerate((t0, t0 + timedelta(days=1), t0 + timedelta(days=8))):
        drive.enter(promo, dids, at)
        drive.enter(receipt, dids, at)
        drive.deliver(at)
        promo_rows = [r for r in rows(env, promo) if r.occurrence == k + 1]
        assert {r.person for r in promo_rows if r.status == "suppressed"} == want
        others = [(r.person, r.status, r.error) for r in promo_rows if r.status not in ("sent", "suppressed")]
        assert {r.person for r in promo_rows if r.status == "sent"} == {env.keys[d] for d in dids} - want, others
        assert {r.status for r in rows(env, receipt) if r.occurrence == k + 1} == {"sent"}
    counts = env.mail_to()
    control_dids = {d for d in dids if env.keys[d] in want}
    assert counts == {f"{d}@example.com": 3 if d in control_dids else 6 for d in dids}
    report(env.meta, env.info, env.store)
    skipped = env.sql("SELECT DISTINCT distinct_id, reason FROM {events} WHERE event = '$message_skipped'")
    assert sorted(skipped) == sorted((d, "global_control") for d in control_dids)


# subscriptions ----------------------------------------------------------------------------------------------------
def test_an_opted_out_person_gets_no_marketing_but_still_gets_transactional_messages(env: Env) -> None:
    env.add_people([Person("out"), Person("in"), Person("all_out")])
    env.rules(caps=[], quiet_hours=None)
    at = datetime(2026, 6, 1, 2, 0)
    with env.meta.session.begin() as s:
        s.add(SubscriptionRow(project_id=env.info.id, person=env.keys["out"], topic="email", subscribed=False, at=at))
        s.add(SubscriptionRow(project_id=env.info.id, person=env.keys["all_out"], topic="*", subscribed=False, at=at))
        s.add(SubscriptionRow(project_id=env.info.id, person=env.keys["in"], topic="email", subscribed=True, at=at))
    promo = one_send(env, "promo", at)
    receipt = one_send(env, "receipt", at, category="transactional")
    drive = Driver(env)
    drive.enter(promo, ["out", "in", "all_out"], at)
    drive.enter(receipt, ["out", "all_out"], at)
    drive.deliver(at)
    assert {r.person: r.status for r in rows(env, promo)} == {
        env.keys["out"]: "unsubscribed",
        env.keys["all_out"]: "unsubscribed",
        env.keys["in"]: "sent",
    }
    assert {r.status for r in rows(env, receipt)} == {"sent"}
    assert env.mail_to() == {"in@example.com": 1, "out@example.com": 1, "all_out@example.com": 1}
    subjects = {m.rcpt_to[0]: m for m in env.mail()}
    assert subjects["in@example.com"].headers.get("List-Unsubscribe")  # marketing mail carries the link


# reachability -----------------------------------------------------------------------------------------------------
def test_push_disabled_falls_back_to_email_and_nobody_reachable_is_unreachable(env: Env) -> None:
    fake = JPushFake("k" * 24, "s" * 24)
    try:
        save_channel(env.meta, env.info.id, "app", "push", "jpush",
                     {"app_key": "k" * 24, "master_secret": "s" * 24, "endpoint": fake.url,
                      "report_endpoint": fake.url}, env.box)  # fmt: skip
        env.add_people([
            Person("on", push_enabled=True),
            Person("off", push_enabled=False),
            Person("nothing", push_enabled=False, email=""),
        ])  # fmt: skip
        env.rules(caps=[], quiet_hours=None)
        at = datetime(2026, 6, 1, 2, 0)
        jid = one_send(env, "nudge", at, channel="app", fallback=["mail"])
        drive = Driver(env)
        drive.enter(jid, ["on", "off", "nothing"], at)
        tally = drive.deliver(at)
        assert tally.by_status == {"sent": 2, "unreachable": 1}
        got = {r.person: (r.status, r.channel) for r in rows(env, jid)}
        assert got == {
            env.keys["on"]: ("sent", "app"),
            env.keys["off"]: ("sent", "mail"),
            env.keys["nothing"]: ("unreachable", "app"),
        }
        assert [d["registration_id"] for d in fake.deliveries] == ["token-on"]
        assert env.mail_to() == {"off@example.com": 1}
    finally:
        env.book.close()
        fake.stop()


@pytest.mark.parametrize(
    ("end", "at", "want"),
    [
        # 02:30 does not exist in New York on 2026-03-08 (02:00 EST → 03:00 EDT at 07:00 UTC): the gap's end
        (time(2, 30), datetime(2026, 3, 8, 5, 0), datetime(2026, 3, 8, 7, 0)),
        # 01:30 happens twice on 2026-11-01 (EDT, then EST): the first
        (time(1, 30), datetime(2026, 11, 1, 4, 0), datetime(2026, 11, 1, 5, 30)),
    ],
    ids=["gap", "fold"],
)
def test_quiet_hours_ending_in_a_dst_gap_or_fold(env: Env, end: time, at: datetime, want: datetime) -> None:
    zone = "America/New_York"
    env.add_people([Person("ny", zone=zone)])
    env.rules(caps=[], quiet_hours=QuietHours(start=time(22, 0), end=end))
    assert local_of(at, zone).time() >= time(22, 0) or local_of(at, zone).time() < end
    assert local_of(want, zone).replace(fold=0) in (datetime.combine(want.date(), end), datetime(2026, 3, 8, 3, 0))
    jid = one_send(env, "dst quiet", at - timedelta(hours=1))
    drive = Driver(env)
    drive.enter(jid, ["ny"], at)
    assert drive.deliver(at).deferred == 1
    assert [(r.status, r.due_at) for r in rows(env, jid)] == [("pending", want)]
    assert drive.deliver(want - timedelta(microseconds=1)).handled == 0
    assert drive.deliver(want).by_status == {"sent": 1}


# benefits ---------------------------------------------------------------------------------------------------------
def test_a_benefit_out_of_stock_fails_the_send_and_grants_no_more_than_the_stock(env: Env) -> None:
    from userloop.engage.assets import create_benefit, get_benefit

    create_benefit(env.meta, env.info, "scarce", amount=5, stock=2)
    env.add_people([Person(f"s{i}") for i in range(3)])
    send = {"id": "m", "kind": "send", "channel": "mail", "material": "welcome", "benefit": "scarce"}
    doc = {"name": "scarce", "entry": {"kind": "event", "event": "never_loaded"}, "start": "m", "nodes": [send]}
    at = datetime(2026, 6, 1, 2)
    jid = env.start(doc, at)
    drive = Driver(env)
    drive.enter(jid, ["s0", "s1", "s2"], at)
    assert drive.deliver(at).by_status == {"sent": 2, "failed": 1}
    got = {r.person: (r.status, r.error) for r in rows(env, jid)}
    assert [got[env.keys[d]][0] for d in ("s0", "s1", "s2")] == ["sent", "sent", "failed"]
    assert (got[env.keys["s2"]][1] or "").startswith("benefit_exhausted")
    assert get_benefit(env.meta, env.info, "scarce").granted == 2
    assert env.mail_to() == {"s0@example.com": 1, "s1@example.com": 1}
    # a later pass grants nothing more
    assert drive.deliver(at + timedelta(hours=1)).handled == 0
    report(env.meta, env.info, env.store)
    failed = env.sql("SELECT distinct_id, reason FROM {events} WHERE event = '$message_failed'")
    assert [(d, r.split(":")[0]) for d, r in failed] == [("s2", "benefit_exhausted")]
