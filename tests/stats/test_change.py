"""The drill-down tests of :mod:`userloop.stats.change`, checked by simulation (independent of their formulas):
under the null they reject about as often as their level says, and they find what is planted."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from userloop.stats.change import change_test, dispersion, periods_test, rate_ratio_z, two_sided_p

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


def drilldown_levels(rng: np.random.Generator, kind: str, periods: int = 10) -> np.ndarray:
    """Period totals laid out as drill-down reads them: current, baseline, then the earlier periods newest first,
    all consecutive. ``stationary``: Poisson counts around 1000; ``small``: around 5; ``walk``: a level growing
    30 per period as a random walk (steps of sd 28) with Poisson counts on top."""
    if kind == "walk":
        level = 1000 + np.cumsum(30 + rng.normal(0, 28, periods))
    else:
        level = np.full(periods, 1000.0 if kind == "stationary" else 5.0)
    return rng.poisson(level)[::-1].astype(float)  # oldest drawn first; newest first as drill-down lists them


@pytest.mark.parametrize(("kind", "seed"), [("stationary", 4), ("walk", 5), ("small", 6)])
def test_the_total_test_has_its_level_on_drilldowns_layout(kind: str, seed: int) -> None:
    """Without a planted change, the total's test rejects about 5% of the time at the 5% level. The layout is
    drill-down's (the baseline is the period just before the current one, and the earlier periods continue
    before it), where the change shares the baseline with the change before it: built with that change, and
    with the counting test required too, the test rejected 1.8% (stationary) and 3.0% (walk)."""
    rng = np.random.default_rng(seed)
    p = [periods_test(list(s), list(s)).p_value for s in (drilldown_levels(rng, kind) for _ in range(RUNS))]
    assert 0.03 <= np.mean(np.array(p) < 0.05) <= 0.07, kind


@pytest.mark.parametrize(("kind", "drop"), [("stationary", 250.0), ("walk", 300.0)])
def test_the_total_test_finds_a_planted_change(kind: str, drop: float) -> None:
    """A drop of about 5.5 standard deviations of a usual change (≈ 45 stationary, ≈ 55 walk) is found, as a
    drop, more than 90% of the time."""
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(1000):
        s = drilldown_levels(rng, kind)
        s[0] -= drop
        t = periods_test(list(s), list(s))
        found += t.p_value < 0.05 and t.statistic < 0
    assert found / 1000 > 0.9


def test_the_total_test_reads_no_change_that_shares_the_baseline() -> None:
    """The earlier changes start two periods back: the baseline's own change (from the period before it) is not
    in the yardstick (4 changes from 5 earlier periods, not 5 from the baseline and them)."""
    s = [80.0, 120.0, 100.0, 103.0, 98.0, 101.0, 99.0]
    t = periods_test(s, s)
    assert t.method == "history" and t.history == 4
    quiet = change_test(-40.0, 200.0, [a - b for a, b in itertools.pairwise(s[2:])])
    assert (t.statistic, t.p_value) == (quiet.statistic, quiet.p_value)


def test_change_test_falls_back_to_counting_noise() -> None:
    t = change_test(60.0, 200.0, [1.0, 2.0])
    assert t.method == "poisson" and t.statistic == pytest.approx(60 / math.sqrt(200))
    assert t.p_value == pytest.approx(two_sided_p(60 / math.sqrt(200)))
    # history that barely varies does not make a change smaller than counting noise significant
    assert change_test(10.0, 400.0, [0.0, 1.0, -1.0, 0.0]).method == "poisson"
