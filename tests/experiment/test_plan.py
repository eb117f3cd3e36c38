"""The plan before launch on a real workspace (the engage fixture): reach per channel after the global control
group, addresses and reachability, opt-outs, frequency caps and quiet hours, each person counted at the first rule
that stops them, against a recount by those rules; the baseline against the events; power and the minimum
detectable effect against :mod:`userloop.experiment.stats` called by hand; the sentences in both languages; the
operation and the command.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest
from typer.testing import CliRunner

from tests.engage.conftest import Env, Person, env
from userloop.cli.main import app
from userloop.engage.rules import CapRule, QuietHours
from userloop.engage.tables import OutboxRow, SubscriptionRow
from userloop.experiment.assignment import in_global_control
from userloop.experiment.plan import PlanInput, plan
from userloop.experiment.stats import Baseline, Design, Proportion, minimum_detectable_effect, sample_size
from userloop.ops import find
from userloop.ops.base import OpContext

#: 23:00 in Shanghai (quiet), 15:00 in London.
AT = datetime(2026, 3, 2, 15, 0)

__all__ = ["env"]  # the engage fixture, used here


def _people() -> list[Person]:
    return [
        Person(f"p{i:02d}", zone="Europe/London" if i % 2 == 0 else "Asia/Shanghai", push_enabled=i % 10 != 0,
               email="" if i % 7 == 0 else None)
        for i in range(60)
    ]  # fmt: skip


def _setup(env: Env) -> None:
    people = _people()
    env.add_people(people)
    settings = env.rules(caps=[CapRule(channel="*", per_day=1)], control_share=0.2,
                         quiet_hours=QuietHours(start=time(22, 0), end=time(8, 0)))  # fmt: skip
    assert settings.control_share == 0.2
    with env.meta.session.begin() as s:
        for i in range(0, 60, 9):
            s.add(
                SubscriptionRow(project_id=env.info.id, person=env.keys[f"p{i:02d}"], topic="email", subscribed=False)
            )
        for i in range(3, 60, 8):  # a marketing message sent an hour ago: the daily cap of 1 is used up
            s.add(OutboxRow(journey_id=1, version=1, node="n", person=env.keys[f"p{i:02d}"], occurrence=1,
                            project_id=env.info.id, kind="send", channel="mail", category="marketing",
                            status="sent", due_at=AT - timedelta(hours=1),
                            done_at=AT - timedelta(hours=1)))  # fmt: skip
    buyers = [(f"p{i:02d}", "order_paid", AT - timedelta(days=2)) for i in range(60) if i % 4 == 0]
    env.track(buyers, loaded_at=AT - timedelta(days=1), order_amount=50.0)
    env.track([("p01", "order_paid", AT - timedelta(days=9))], loaded_at=AT - timedelta(days=1), order_amount=10.0)


def _recount(env: Env, channel: str) -> dict[str, int]:
    """The first rule that stops each person on ``channel``, in the delivery rules' order."""
    from userloop.engage.settings import load

    settings = load(env.meta, env.info.id)
    out = dict.fromkeys(("global_control", "no_address", "unreachable", "unsubscribed", "capped", "quiet_deferred",
                         "reachable"), 0)  # fmt: skip
    for i, p in enumerate(_people()):
        if in_global_control(settings, env.keys[p.did]):
            out["global_control"] += 1
        elif channel == "mail" and i % 7 == 0:
            out["no_address"] += 1
        elif channel == "app" and i % 10 == 0:
            out["unreachable"] += 1
        elif channel == "mail" and i % 9 == 0:
            out["unsubscribed"] += 1
        elif i % 8 == 3:
            out["capped"] += 1
        else:
            out["quiet_deferred"] += p.zone == "Asia/Shanghai"
            out["reachable"] += 1
    return out


def test_reach_baseline_and_power(env: Env) -> None:
    _setup(env)
    spec = PlanInput(goal="order_paid", channels=["mail", "app"], window_days=7, treatment_share=0.8,
                     control_share=0.2, expected_effect=0.5)  # fmt: skip
    found = plan(env.meta, env.info, env.store, spec, AT)
    assert found.audience == 60
    for reach in found.reach:
        want = _recount(env, reach.channel)
        got = {k: getattr(reach, k) for k in want}
        assert got == want, reach.channel
        assert reach.quiet_dropped == 0 and sum(want.values()) - want["quiet_deferred"] == 60
    assert (found.baseline.people, found.baseline.converters) == (60, 15)
    assert found.baseline.revenue_per_person == pytest.approx(15 * 50.0 / 60)
    reachable = min(r.reachable for r in found.reach)
    design = Design(control_share=0.2, treatment_share=0.8, scale="absolute")
    base = Baseline.of(Proportion(60, 15))
    assert found.power.people == reachable
    mde = minimum_detectable_effect(base, reachable, design)
    assert found.power.minimum_detectable_points == pytest.approx(mde * 100)
    assert found.power.minimum_detectable_effect == pytest.approx(mde / 0.25)
    assert found.power.required_people == sample_size(base, 0.5 * 0.25, design)
    zh, en = found.sentences[0].zh, found.sentences[0].en
    assert zh.startswith(f"渠道 mail：受众 60 人中可触达 {found.reach[0].reachable} 人")
    assert en.startswith(f"Channel mail: {found.reach[0].reachable} of 60 people reachable")
    assert any(s.zh.startswith("基线：过去 7 天受众 60 人中 15 人完成 order_paid") for s in found.sentences)
    assert any(s.en.startswith("With a 80%/20% split") for s in found.sentences)
    # the operation and the command answer the same
    op = find("experiments.plan")
    req = op.request.model_validate({**spec.model_dump(), "as_of": AT})
    assert op.fn(OpContext(env.ws, project=env.info), req) == found
    with pytest.raises(Exception, match="no channel 'fax'"):
        plan(env.meta, env.info, env.store, spec.model_copy(update={"channels": ["fax"]}), AT)


def test_the_command_prints_the_plan(env: Env) -> None:
    _setup(env)
    env.ws.close()
    args = ["experiments", "plan", "--goal", "order_paid", "--channel", "mail", "-w", str(env.ws.path), "--as-of",
            AT.isoformat(), "--expected-effect", "0.5"]  # fmt: skip
    shown = CliRunner().invoke(app, args, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "Reach / 触达" in shown.output and "• 渠道 mail" in shown.output
    doc = json.loads(CliRunner().invoke(app, [*args, "--json"], catch_exceptions=False).output)
    assert doc["audience"] == 60 and doc["reach"][0]["channel"] == "mail"
