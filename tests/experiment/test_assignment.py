"""Assignment: one hashing for the journeys' random splits and the experiments (the draw the interpreter makes is
the arm :func:`assign` gives), sticky and in proportion to the weights, the global control group as the project's
settings define it, and the exposure records of a journey run."""

from __future__ import annotations

from datetime import datetime

import pytest

from userloop.core.errors import ValidationError
from userloop.engage import interpreter, rules
from userloop.engage.journey import Journey
from userloop.engage.settings import EngageSettings
from userloop.experiment.assignment import (
    ENTERED,
    Arm,
    Run,
    Standalone,
    assign,
    exposures_of,
    in_global_control,
    journey_arms,
    journey_experiment,
)

JOURNEY = Journey.model_validate({
    "name": "j",
    "entry": {"kind": "event", "event": "signup"},
    "start": "wait_pay",
    "nodes": [
        {"kind": "wait_event", "id": "wait_pay", "event": "order_paid", "timeout_seconds": 60, "timeout_next": "ab"},
        {"kind": "split", "id": "ab", "branches": [
            {"name": "a", "percent": 45, "next": "seg"}, {"name": "b", "percent": 45, "next": "seg"},
            {"name": "hold", "percent": 10, "control": True}]},
        {"kind": "strategy", "id": "seg", "strategies": [{"name": "all", "next": "x"}]},
        {"kind": "exit", "id": "x"},
    ],
})  # fmt: skip


def test_the_experiments_draw_what_the_journeys_runtime_draws() -> None:
    seed, arms = journey_arms(7, JOURNEY)["ab"]
    assert seed == rules.split_seed(rules.journey_seed(7), "ab") == "journey:7:ab"
    for person in range(2000):
        picked = interpreter.pick(seed, person, [a.weight for a in arms])
        assert assign(seed, person, arms) == arms[picked]
        assert rules.split(seed, person, [(a.name, a.weight) for a in arms]) == arms[picked].name


def test_arms_are_sticky_and_in_proportion() -> None:
    arms = [Arm("control", 20, control=True), Arm("sms", 30), Arm("push", 50)]
    people = range(30_000)
    first = [assign("exp-1", p, arms).name for p in people]
    assert first == [assign("exp-1", p, arms).name for p in people]
    for arm in arms:
        share = first.count(arm.name) / len(first)
        assert abs(share - arm.weight / 100) < 0.012, (arm, share)  # 4 standard errors at 30 000
    other = [assign("exp-2", p, arms).name for p in people]
    same = sum(a == b for a, b in zip(first, other, strict=True)) / len(first)
    assert abs(same - (0.2**2 + 0.3**2 + 0.5**2)) < 0.015  # independent seeds
    with pytest.raises(ValidationError, match="add up to"):
        assign("exp-1", 1, [Arm("a", 60), Arm("b", 60)])


def test_the_global_control_group_follows_the_project_settings() -> None:
    off = EngageSettings()
    assert not any(in_global_control(off, p) for p in range(1000))
    on = EngageSettings(control_share=0.1, control_salt="salt-1")
    held = [p for p in range(20_000) if in_global_control(on, p)]
    assert held == [p for p in range(20_000) if rules.in_global_control("salt-1", p, 0.1)]
    assert abs(len(held) / 20_000 - 0.1) < 0.01


def test_a_run_is_exposed_at_entry_and_at_each_split_and_strategy_set_it_passed() -> None:
    run = Run(3, 2, 41, 1, datetime(2026, 3, 1, 8), "wait_pay:timeout|ab:hold")
    records = exposures_of(run, JOURNEY, global_control=True)
    assert [(r["experiment"], r["variant"], r["control"], r["node"]) for r in records] == [
        (journey_experiment(3), ENTERED, False, None),
        ("journey:3:ab", "hold", True, "ab"),
    ]
    assert all(r["global_control"] and r["time"] == run.entered_at for r in records)
    assert [r["event_id"] for r in records] == ["exposure:3.2.41.1:$entry", "exposure:3.2.41.1:ab"]
    passed = exposures_of(Run(3, 2, 42, 1, run.entered_at, "wait_pay:timeout|ab:a|seg:all"), JOURNEY, False)
    assert [(r["experiment"], r["variant"], r["control"]) for r in passed][1:] == [
        ("journey:3:ab", "a", False), ("journey:3:seg", "all", False)]  # fmt: skip


def test_a_standalone_experiment_names_its_exposures() -> None:
    found = Standalone(name="checkout", weights={"control": 50, "green": 50})
    assert (found.exposure_event, found.experiment_property, found.variant_property) == (
        "$experiment_exposure", "experiment", "variant")  # fmt: skip
    with pytest.raises(ValueError, match="greater than 0"):
        Standalone(name="checkout", weights={"control": 0})
