"""The rehearsal as the operator sees it: ``userloop experiments rehearse`` plays a journey written for the real
channels on a small simulated business (a scratch workspace under the workspace's ``tmp``, removed afterwards) and
shows per arm the measured effect beside the simulator's truth; ``experiments plan --rehearse`` takes that
rehearsal's relative conversion lift as its expected effect and says so. One tiny rehearsal each (400 people, 5
days)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.engage.conftest import Env, env
from tests.experiment.test_plan import AT, _setup
from userloop.cli.main import app
from userloop.core.errors import UserloopError, ValidationError
from userloop.experiment.rehearsal_run import sim_config, simulated
from userloop.experiment.rehearsal_types import RehearsalInput
from userloop.ops import find
from userloop.ops.base import Access, OpContext

__all__ = ["env"]  # the engage fixture, used here

#: A coupon campaign as an operator writes it: its own SMS channel, material and benefit, a 50/50 split.
JOURNEY: dict[str, Any] = {
    "name": "coupon-test",
    "entry": {"kind": "schedule", "once_at": "2026-12-20T09:00:00"},
    "start": "split",
    "goal": {"event": "order_paid", "within_seconds": 2 * 86_400, "exit": True},
    "nodes": [
        {"kind": "split", "id": "split", "branches": [{"name": "coupon", "percent": 50, "next": "send"},
                                                      {"name": "control", "percent": 50, "control": True}]},
        {"kind": "send", "id": "send", "channel": "sms", "material": "promo", "benefit": "ten_off"},
    ],
}  # fmt: skip
SIZE = ["--users", "400", "--days", "5"]


def _run(*args: str) -> Any:
    shown = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def test_a_rehearsal_and_the_plan_that_takes_its_effect(env: Env, tmp_path: Path) -> None:
    _setup(env)
    env.ws.close()
    path = tmp_path / "journey.json"
    path.write_text(json.dumps(JOURNEY))
    ws = str(env.ws.path)
    r = _run("experiments", "rehearse", str(path), *SIZE, "-w", ws, "--json")
    assert (r["users"], r["days"], r["entry_day"], r["control"]) == (400, 5, "2026-12-20", "control")
    arms = {a["arm"]: a for a in r["arms"]}
    assert set(arms) == {"coupon", "control"} and arms["control"]["reached"] == 0
    assert 0 < arms["coupon"]["reached"] <= arms["coupon"]["people"]  # the coupon by SMS reaches the registered
    assert r["srm"]["counts"] == [arms["coupon"]["people"], arms["control"]["people"]]
    conv = next(e for e in r["effects"] if e["metric"] == "conversion")
    rates = arms["coupon"]["conversion_rate"], arms["control"]["conversion_rate"]
    assert conv["estimate"] == pytest.approx(rates[0] - rates[1])
    assert conv["relative"] == pytest.approx(conv["estimate"] / rates[1])
    assert conv["sequential_low"] < conv["low"] < conv["high"] < conv["sequential_high"]  # the always-valid is wider
    assert conv["covered"] == (conv["low"] <= conv["true_effect"] <= conv["high"]) and conv["true_effect"] > 0
    assert r["sentences"][0]["zh"].startswith("这是在模拟业务上的预演：400 个模拟用户、5 天")
    assert "not from real customers" in r["sentences"][0]["en"]
    assert list((env.ws.path / "tmp").iterdir()) == []  # the scratch workspace is gone

    plan = ["experiments", "plan", "--goal", "order_paid", "--channel", "mail", "-w", ws, "--as-of", AT.isoformat()]
    rehearsed = _run(*plan, "--rehearse", str(path), "--rehearse-users", "400", "--rehearse-days", "5", "--json")
    assert rehearsed["power"]["expected_effect"] == pytest.approx(conv["relative"])  # the same rehearsal, same seed
    source = rehearsed["sentences"][0]
    assert source["zh"].startswith("预期效果来自预演：在模拟业务（400 人、5 天、种子 1）上，coupon 组")
    assert source["en"].startswith("The expected effect comes from a rehearsal on a simulated")
    given = _run(*plan, "--expected-effect", repr(rehearsed["power"]["expected_effect"]), "--json")
    assert given["power"] == rehearsed["power"] and given["sentences"] == rehearsed["sentences"][1:]


def test_a_plan_rehearses_only_with_the_operate_right_and_without_a_given_effect(env: Env) -> None:
    op = find("experiments.plan")
    req = op.request.model_validate({"goal": "order_paid", "as_of": AT, "rehearse": {"journey": JOURNEY}})
    reader = OpContext(env.ws, access=Access(frozenset({"read", "write"})), project=env.info)
    with pytest.raises(UserloopError, match="needs the operate right") as caught:
        op.fn(reader, req)
    assert caught.value.code == "forbidden"
    both = req.model_copy(update={"expected_effect": 0.1})
    with pytest.raises(ValidationError, match="not both"):
        op.fn(OpContext(env.ws, project=env.info), both)


def test_the_simulated_journey_and_calendar() -> None:
    doc = simulated(JOURNEY)
    assert doc["nodes"][1] == {"kind": "send", "id": "send", "channel": "sim_sms", "material": "sim_coupon",
                               "benefit": "sim_coupon10"}  # fmt: skip
    nudge = simulated({**JOURNEY, "nodes": [JOURNEY["nodes"][0], {"kind": "send", "id": "send", "channel": "app",
                                                                   "material": "hello"}]})  # fmt: skip
    assert nudge["nodes"][1] == {"kind": "send", "id": "send", "channel": "sim_push", "material": "sim_nudge"}
    config, day = sim_config(RehearsalInput(journey=JOURNEY, users=400, days=5), doc, AT.date())
    assert day is not None and config.end_date == day + timedelta(days=3) and config.days == 5
    with pytest.raises(ValidationError, match="at least 4 simulated days"):
        sim_config(RehearsalInput(journey=JOURNEY, users=400, days=3), doc, AT.date())
