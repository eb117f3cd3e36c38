"""``journeys.preview``: one person's first step as the runtime would take it, with each message rendered as they
would read it, and nothing written or sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from tests.engage.conftest import Env, Person
from userloop.benefits import GrantRow
from userloop.engage.tables import OutboxRow, RunRow
from userloop.ops.base import OpContext
from userloop.ops.journeys import PreviewJourney, preview_journey


def test_preview_shows_the_path_and_the_rendered_message_and_writes_nothing(env: Env) -> None:
    env.add_people([Person("p1", language="en"), Person("p2")])
    at = datetime(2026, 6, 1, 2, 0)
    jid = env.start(
        {"name": "welcome", "entry": {"kind": "event", "event": "register"}, "start": "hello",
         "nodes": [
             {"kind": "send", "id": "hello", "channel": "mail", "material": "welcome", "benefit": "welcome10",
              "next": "wait"},
             {"kind": "wait_event", "id": "wait", "event": "order_paid", "timeout_seconds": 86400},
         ]},
        at,
    )  # fmt: skip
    ctx = OpContext(env.ws, project=env.info)
    shown = preview_journey(ctx, PreviewJourney(journey="welcome", person=env.keys["p1"], at=at))
    assert shown.refused is None
    assert [(s.node, s.outcome) for s in shown.steps] == [
        ("hello", "entered"), ("hello", "moved"), ("wait", "entered"), ("wait", "waiting")
    ]  # fmt: skip
    assert shown.waiting_at == "wait" and shown.waits_for == "order_paid"
    assert shown.wake_at == datetime(2026, 6, 2, 2, 0)
    (effect,) = shown.effects
    assert effect.node == "hello" and effect.channel == "mail" and effect.rendered is not None
    assert effect.rendered["text"] == "Welcome! Coupon PREVIEW0000 takes 10.0 off."  # English: the person's language
    other = preview_journey(ctx, PreviewJourney(journey=str(jid), person=env.keys["p2"], at=at))
    assert other.effects[0].rendered is not None and other.effects[0].rendered["locale"] == "zh-CN"
    with env.meta.session() as s:
        assert s.scalar(select(func.count()).select_from(RunRow)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 0
        assert s.scalar(select(func.count()).select_from(GrantRow)) == 0
    assert env.mail() == []
