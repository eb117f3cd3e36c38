"""The rehearsal (the simulator in the loop): a campaign run by the journeys engine on a loaded workspace measures per
arm exactly what a brute-force recount of the simulator's records gives, the fast path gives the same numbers, the
truth's effect lies inside the measured interval, and A/A rehearsals stay quiet."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from userloop.core.errors import ValidationError
from userloop.experiment.rehearsal import Arm, ArmStats, campaign, rehearse
from userloop.sim import MembershipConfig, SimConfig
from userloop.store import sqlbuild as sb

SMALL = SimConfig(users=500, days=10, seed=7, end_date=date(2026, 3, 29))


def _at(config: SimConfig, day: int, hour: int = 10) -> datetime:
    return datetime.combine(config.start_date + timedelta(days=day), datetime.min.time()).replace(hour=hour)


def _same(a: dict[str, ArmStats], b: dict[str, ArmStats]) -> None:
    assert set(a) == set(b)
    for name, mine in a.items():
        theirs = b[name]
        assert mine.conversion == theirs.conversion
        assert mine.revenue.n == theirs.revenue.n
        assert math.isclose(mine.revenue.total, theirs.revenue.total, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(mine.revenue.total_sq, theirs.revenue.total_sq, rel_tol=1e-9, abs_tol=1e-9)


def test_a_loaded_rehearsal_measures_what_the_records_hold_and_the_fast_path_agrees(tmp_path: Path) -> None:
    doc = campaign([Arm("coupon", 50, "coupon"), Arm("push", 25, "push"), Arm("control", 25)], _at(SMALL, 6))
    r = rehearse(SMALL, doc, path=tmp_path)
    assert r.workspace is not None
    try:
        assert r.control == "control"
        assert sum(a.conversion.n for a in r.arms.values()) == len(r.enrolled.key) > 200
        for k in range(len(r.looks)):  # every daily look, cumulative, equals the brute-force recount
            _same(r.looks[k][0], r.recount(k))
        # the sends the engine reported are the deliveries the simulated people received
        store = r.workspace.project()
        sent = store.fetchall(
            sb.sql("SELECT node, count(*) FROM $e WHERE event = '$message_sent' GROUP BY node", e=store.ref("events"))
        )
        assert dict(sent) == {"send_coupon": r.truth["coupon"].treated, "send_push": r.truth["push"].treated}
        assert 0 < r.truth["push"].treated < r.truth["push"].people  # push switched off or uninstalled: not reached
        assert r.truth["control"].conversion == r.truth["control"].enrolled_conversion == 0.0
        assert r.truth["coupon"].enrolled_conversion > 0 and r.truth["push"].enrolled_conversion > 0
        keys = dict(zip(r.enrolled.person.tolist(), r.enrolled.key.tolist(), strict=True))
        fast = rehearse(SMALL, doc, fast=True, keys=keys)
        for k in range(len(r.looks)):
            _same(fast.looks[k][0], r.looks[k][0])
            for arm, truth in fast.looks[k][1].items():
                other = r.looks[k][1][arm]
                assert (truth.people, truth.treated) == (other.people, other.treated)
                assert math.isclose(truth.conversion, other.conversion, rel_tol=1e-12, abs_tol=1e-15)
                assert math.isclose(truth.revenue, other.revenue, rel_tol=1e-12, abs_tol=1e-15)
                assert math.isclose(truth.enrolled_conversion, other.enrolled_conversion, rel_tol=1e-12, abs_tol=1e-15)
    finally:
        r.workspace.close()


def test_the_true_effect_lies_inside_the_measured_interval_on_a_fixed_seed() -> None:
    config = SimConfig(users=4_000, days=24, seed=11, end_date=date(2026, 3, 29))
    r = rehearse(config, campaign([Arm("coupon", 50, "coupon"), Arm("control", 50)], _at(config, 14)), fast=True)
    truth = r.true_effect("coupon")
    assert truth > 0.01
    assert abs(r.true_effect("coupon", among="arm") - truth) < 0.2 * truth  # the arm is a random half of everyone
    for metric in ("conversion", "revenue"):
        interval = r.effect("coupon", metric)  # type: ignore[arg-type]
        assert interval.low <= r.true_effect("coupon", metric) <= interval.high  # type: ignore[arg-type]
    assert r.effect("coupon", sequential=True).low <= truth <= r.effect("coupon", sequential=True).high


def test_a_over_a_rehearsals_find_no_effect_and_no_ratio_mismatch() -> None:
    config = SimConfig(users=1_000, days=18, end_date=date(2026, 3, 29))
    doc = campaign([Arm("a", 50, "coupon"), Arm("b", 50, "coupon")], _at(config, 10))
    p_values, alerts = [], 0
    for seed in range(6):
        r = rehearse(config.model_copy(update={"seed": seed}), doc, fast=True)
        p_values.append(r.effect("b").p_value)
        alerts += r.srm().alert
    assert sum(p < 0.05 for p in p_values) <= 1
    assert alerts == 0


def test_a_journey_without_a_split_cannot_be_rehearsed() -> None:
    doc = campaign([Arm("coupon", 50, "coupon"), Arm("control", 50)], _at(SMALL, 6))
    doc["nodes"] = doc["nodes"][1:]
    doc["start"] = "send_coupon"
    with pytest.raises(ValidationError, match="one random split"):
        rehearse(SMALL, doc, fast=True)


def test_a_business_with_a_membership_programme_cannot_be_rehearsed() -> None:
    doc = campaign([Arm("coupon", 50, "coupon"), Arm("control", 50)], _at(SMALL, 6))
    config = SMALL.model_copy(update={"membership": MembershipConfig(launch_day=1, campaign_day=2, campaign_days=1)})
    with pytest.raises(ValidationError, match="membership"):
        rehearse(config, doc, fast=True)
