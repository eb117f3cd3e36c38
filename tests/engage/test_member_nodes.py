"""Journeys and the member system: a condition on a person's membership (level, points) and a node that grants
points through the ledger, exactly once, on a real workspace with the engine's passes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from tests.engage.conftest import Env, Person
from userloop.engage.assets import journey_references
from userloop.engage.journey import Journey
from userloop.engage.tables import OutboxRow
from userloop.membership.accounts import ledger_of
from userloop.membership.members import MemberRow, Programmes, SavedProgramme, get_member, join

T0 = datetime(2026, 3, 2, 2, 0)

CLUB = {
    "name": "club",
    "title": {"zh": "会员俱乐部", "en": "Club"},
    "levels": [
        {"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
        {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 100},
    ],
}

THANKS = {
    "name": "thank buyers",
    "entry": {"kind": "event", "event": "order_paid"},
    "start": "tier",
    "nodes": [
        {
            "id": "tier",
            "kind": "condition",
            "branches": [
                {
                    "name": "gold",
                    "when": {
                        "all": [{"kind": "member", "programme": "club", "field": "level", "op": "gte", "value": 1}]
                    },
                    "next": "gold_bonus",
                },
                {
                    "name": "rich",
                    "when": {
                        "all": [{"kind": "member", "programme": "club", "field": "points", "op": "gte", "value": 500}]
                    },
                    "next": "rich_bonus",
                },
            ],
            "otherwise": "welcome",
        },
        {"id": "gold_bonus", "kind": "points", "programme": "club", "amount": 50, "reason": "gold thanks"},
        {"id": "rich_bonus", "kind": "points", "programme": "club", "amount": 5},
        {"id": "welcome", "kind": "points", "programme": "club", "amount": 10, "join": True},
    ],
}


def _club(env: Env) -> SavedProgramme:
    return Programmes(env.meta, env.info).create(CLUB)


def _balance(env: Env, club: SavedProgramme, person: int) -> int:
    return ledger_of(env.meta, club).balance(person, "points", T0 + timedelta(days=1)).spendable


def test_membership_conditions_route_and_points_nodes_book_once(env: Env) -> None:
    people = [Person("gold"), Person("rich"), Person("base"), Person("stranger")]
    env.add_people(people)
    club = _club(env)
    gold, rich, base, stranger = (env.keys[p.did] for p in people)
    for person in (gold, rich, base):
        join(env.meta, club, person, T0 - timedelta(days=30))
    with env.meta.session.begin() as s:
        s.execute(update(MemberRow).where(MemberRow.person == gold).values(level=1))
    ledger_of(env.meta, club).post({"op": "earn", "person": rich, "amount": 600, "request_id": "seed"}, T0)
    jid = env.start(THANKS, T0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(T0)
    env.track([(p.did, "order_paid", T0 + timedelta(minutes=1)) for p in people], loaded_at=T0 + timedelta(minutes=2))
    engine.step(T0 + timedelta(minutes=3))
    engine.step(T0 + timedelta(minutes=4))  # a second pass finds nothing more to book

    assert _balance(env, club, gold) == 50
    assert _balance(env, club, rich) == 605
    assert _balance(env, club, base) == 10
    assert _balance(env, club, stranger) == 10  # joined by the node, then credited
    assert get_member(env.meta, club, stranger).status == "active"
    with env.meta.session() as s:
        rows = s.scalars(select(OutboxRow).where(OutboxRow.journey_id == jid)).all()
    assert sorted((r.node, r.status) for r in rows) == [
        ("gold_bonus", "done"), ("rich_bonus", "done"), ("welcome", "done"), ("welcome", "done")
    ]  # fmt: skip
    # the ledger's request id is the outbox key: delivering a row again (a crash before it was marked) books nothing
    with env.meta.session.begin() as s:
        s.execute(update(OutboxRow).where(OutboxRow.journey_id == jid).values(status="pending", due_at=T0))
    env.deliverer().run_once(T0 + timedelta(minutes=5))
    assert [_balance(env, club, p) for p in (gold, rich, base, stranger)] == [50, 605, 10, 10]


def test_points_for_a_non_member_fail_the_row_and_book_nothing(env: Env) -> None:
    people = [Person("outsider")]
    env.add_people(people)
    club = _club(env)
    doc = {"name": "points only", "entry": {"kind": "event", "event": "order_paid"}, "start": "p",
           "nodes": [{"id": "p", "kind": "points", "programme": "club", "amount": 7}]}  # fmt: skip
    jid = env.start(doc, T0 - timedelta(minutes=1))
    engine = env.engine()
    engine.step(T0)
    env.track([("outsider", "order_paid", T0 + timedelta(minutes=1))], loaded_at=T0 + timedelta(minutes=2))
    engine.step(T0 + timedelta(minutes=3))
    with env.meta.session() as s:
        row = s.scalars(select(OutboxRow).where(OutboxRow.journey_id == jid)).one()
    assert (row.status, row.error) == ("failed", "not_member")
    assert _balance(env, club, env.keys["outsider"]) == 0


def test_a_journey_naming_a_missing_programme_or_wallet_is_refused_at_start(env: Env) -> None:
    """``journeys.start`` refuses a journey with these problems (the check the operation runs)."""
    _club(env)
    doc = {
        "name": "bad refs",
        "entry": {"kind": "event", "event": "order_paid"},
        "start": "c",
        "nodes": [
            {"id": "c", "kind": "condition", "otherwise": "p",
             "branches": [{"name": "x", "next": "p",
                           "when": {"all": [{"kind": "member", "programme": "nope", "field": "level", "value": 1}]}}]},
            {"id": "p", "kind": "points", "programme": "club", "wallet": "coins", "amount": 1},
        ],
    }  # fmt: skip
    problems = journey_references(env.meta, env.info, Journey.model_validate(doc))
    assert problems == [
        {"node": "c", "field": "branches.0.when.all.0.programme", "message": "no member programme 'nope'"},
        {"node": "p", "field": "wallet", "message": "programme 'club' has no wallet 'coins'"},
    ]


def test_a_broadcast_tells_members_apart_by_level_and_points(env: Env) -> None:
    """A scheduled entry steps people in batches that share a first step by what the journey reads of them: the
    membership facts are part of that, so a gold member and a base member do not share one."""
    people = [Person("gold"), Person("rich"), Person("base"), Person("stranger")]
    env.add_people(people)
    club = _club(env)
    gold, rich, base, stranger = (env.keys[p.did] for p in people)
    for person in (gold, rich, base):
        join(env.meta, club, person, T0 - timedelta(days=30))
    with env.meta.session.begin() as s:
        s.execute(update(MemberRow).where(MemberRow.person == gold).values(level=1))
    ledger = ledger_of(env.meta, club)
    ledger.post({"op": "earn", "person": rich, "amount": 600, "request_id": "seed"}, T0)
    # points that lapse before the broadcast do not count: base's 900 are gone by then
    lapsing = {"op": "earn", "person": base, "amount": 900, "request_id": "old", "expires_at": T0 + timedelta(hours=1)}
    ledger.post(lapsing, T0)
    doc = {**THANKS, "name": "broadcast", "entry": {"kind": "schedule", "once_at": "2026-03-02T12:00:00"}}
    env.start(doc, T0 - timedelta(minutes=1))
    env.engine().step(T0 + timedelta(hours=3))  # 11:00 UTC = 19:00 in Shanghai, after the 12:00 broadcast
    later = T0 + timedelta(days=1)
    assert [ledger.balance(p, "points", later).spendable for p in (gold, rich, base, stranger)] == [50, 605, 10, 10]
