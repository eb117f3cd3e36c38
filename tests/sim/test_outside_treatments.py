"""Treatments from outside (the rehearsal's hook): off or unused, the records are the simulator's own; used, the
treated people's purchase probability rises by their true uplift for seven days, and nobody else's."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tests.sim.test_membership import _digest
from userloop.sim import SimConfig, simulate
from userloop.sim.generator import simulate_days
from userloop.sim.timeline import UPLIFT_DAYS, Timeline
from userloop.sim.world import World

TINY = SimConfig(users=400, days=12, end_date=date(2024, 6, 30), chunk_days=1)


def test_day_by_day_without_treatments_yields_the_simulators_records() -> None:
    world = World.build(TINY)
    by_day = [t for _, tables in simulate_days(world, Timeline(world, external=True)) for t in tables]
    assert _digest(by_day) == _digest(list(simulate(TINY, workers=0)))


def test_an_outside_coupon_adds_the_persons_uplift_for_seven_days_only() -> None:
    config = SimConfig(users=3_000, days=20, end_date=date(2024, 6, 30), coupon_share=0.0, push_share=0.0)
    world = World.build(config)
    plain, treated = Timeline(world, external=True), Timeline(world, external=True)
    installed = int(np.searchsorted(world.people.install_day, 5, side="right"))
    everyone = np.arange(installed)
    counts = []
    for day in range(20):
        a, b = plain.advance(), treated.advance()
        if day == 5:
            treated.treat(everyone, "coupon", day)
        counts.append((len(a.buy_person), len(b.buy_person)))
    assert all(x == y for x, y in counts[:6])  # the same draws until the uplift starts
    assert sum(y for _, y in counts[6 : 6 + UPLIFT_DAYS]) > sum(x for x, _ in counts[6 : 6 + UPLIFT_DAYS])


def test_a_timeline_without_the_flag_refuses_outside_treatments() -> None:
    world = World.build(TINY)
    with pytest.raises(ValueError, match="external=True"):
        Timeline(world).treat(np.arange(3), "coupon", 0)
