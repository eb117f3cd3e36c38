"""The drill-down tests of :mod:`userloop.stats.change`, checked by simulation (independent of their formulas):
under the null they reject about as often as their level says, and they find what is planted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson

from userloop.stats.change import change_test, dispersion, rate_ratio_z, two_sided_p

RUNS = 4000


def test_rate_ratio_z_rejects_at_its_level_under_the_null() -> None:
    """Poisson counts with a common ratio: about 5% of |z| > 1.96, whatever the sizes (Haldane ½ keeps zeros)."""
    rng = np.random.default_rng(1)
    for part, rest, ratio in ((30.0, 200.0, 1.0), (8.0, 50.0, 1.5), (400.0, 900.0, 0.7)):
        pb, rb = rng.poisson(part, RUNS), rng.poisson(rest, RUNS)
        pc, rc = rng.poisson(part * ratio, RUNS), rng.poisson(rest * ratio, RUNS)
        z = [rate_ratio_z(((c, c), (b, b)), ((d, d), (e, e))) for c, b, d, e in zip(pc, pb, rc, rb, strict=True)]
        share = np.mean([abs(v) > 1.96 for v in z if v is not None])
        assert 0.025 < share < 0.075, (part, rest, ratio, share)


def test_rate_ratio_z_finds_a_part_that_moved_alone() -> None:
    rng = np.random.default_rng(2)
    z = [
        rate_ratio_z(((c, c), (b, b)), ((d, d), (e, e)))
        for c, b, d, e in zip(
            rng.poisson(50, 500), rng.poisson(100, 500), rng.poisson(300, 500), rng.poisson(300, 500), strict=True
        )
    ]
    assert np.mean([v is not None and v < -1.96 for v in z]) > 0.9  # z ≈ −3.6 on average: power ≈ 0.94


def test_sums_use_the_effective_count() -> None:
    """A sum of values all equal to w has the z of the count: scale does not make a change more significant."""
    z1 = rate_ratio_z(((30.0, 30.0), (100.0, 100.0)), ((100.0, 100.0), (100.0, 100.0)))
    w = 25.0
    zw = rate_ratio_z(((30 * w, 30 * w * w), (100 * w, 100 * w * w)), ((100 * w, 100 * w * w), (100 * w, 100 * w * w)))
    assert z1 is not None and zw == pytest.approx(z1)
    assert rate_ratio_z(((5.0, 5.0), (0.0, 0.0)), ((0.0, 0.0), (0.0, 0.0))) is None  # no rest: nothing to compare


def test_dispersion_recovers_extra_variation() -> None:
    """Negative-binomial counts with variance 3× the mean give a dispersion near 3; Poisson ones, 1."""
    rng = np.random.default_rng(3)
    mean, phi = 200.0, 3.0
    p = 1 / phi
    n = mean * p / (1 - p)

    def draws(overdispersed: bool) -> list[float]:
        cells = rng.negative_binomial(n, p, (RUNS, 4)) if overdispersed else rng.poisson(mean, (RUNS, 4))
        out = []
        for a, b, c, d in cells.astype(float):
            z = rate_ratio_z(((a, a), (b, b)), ((c, c), (d, d)))
            if z is not None:
                out.append(z)
        return out

    assert dispersion(draws(True)) == pytest.approx(phi, rel=0.15)
    assert dispersion(draws(False)) == pytest.approx(1.0, abs=0.1)
    assert dispersion([5.0, 5.0]) == 1.0  # too few statistics to say


def test_change_test_is_calibrated_on_a_trending_metric() -> None:
    """A metric growing 30 per period as a random walk on top of Poisson counts (changes of sd ≈ 55): a new
    change drawn the same way is rejected about 5% of the time; one 300 lower nearly always."""
    rng = np.random.default_rng(4)
    rejected, found = 0, 0
    for _ in range(1000):
        level = 1000 + np.cumsum(30 + rng.normal(0, 28, 11))
        values = [float(poisson.rvs(v, random_state=rng)) for v in level]
        earlier = [values[i + 1] - values[i] for i in range(8)]
        delta = values[10] - values[9]
        rejected += change_test(delta, values[10] + values[9], earlier).p_value < 0.05
        found += change_test(delta - 300, values[10] + values[9], earlier).p_value < 0.05
    assert 0.02 < rejected / 1000 < 0.08
    assert found / 1000 > 0.9


def test_change_test_falls_back_to_counting_noise() -> None:
    t = change_test(60.0, 200.0, [1.0, 2.0])
    assert t.method == "poisson" and t.statistic == pytest.approx(60 / math.sqrt(200))
    assert t.p_value == pytest.approx(two_sided_p(60 / math.sqrt(200)))
    # history that barely varies does not make a change smaller than counting noise significant
    assert change_test(10.0, 400.0, [0.0, 1.0, -1.0, 0.0]).method == "poisson"
