"""Confidence sequences against GrowthBook's engine, and their coverage under daily peeking by simulation.

References: GB-TESTS are GrowthBook's ``packages/stats/tests/frequentist/test_tests.py`` (``TestSequentialTTest``,
5 decimals published); GB-RUN is gbstats 0.8.0 (growthbook/growthbook at commit
8f1db4456915a8e7b7faf23d5632ca7219d2f469, ``SequentialTwoSidedTTest``) run side by side for full precision.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.experiment.test_stats_effect import GB_RA_B, GB_RAR, OWN_CUPED, OWN_RATIO
from userloop.experiment.stats import Arm, Cuped, Proportion, Scale, confidence_sequence, lift, t_test
from userloop.stats import Moments

A3 = Moments(3000, 1396.87, 52377.9767)
B3 = Moments(3461, 2422.7, 134698.29)
RA_A3 = Cuped(A3, Moments(3000, 16.87, 527.9767), 1.0)

# name: (control, treatment, scale, alpha, N*, (estimate, low, high, p))
REFERENCES: dict[str, tuple[Arm, Arm, Scale, float, float, tuple[float, float, float, float]]] = {
    "gbstats means, N* 1000": (  # GB-TESTS
        A3,
        B3,
        "relative",
        0.05,
        1000,
        (0.5033610858562358, -0.5584405051077315, 1.5651626768202032, 1.0),
    ),
    "gbstats proportions": (  # GB-TESTS
        Proportion(3000, 1396),
        Proportion(3461, 2422),
        "relative",
        0.05,
        5000,
        (0.5038633516821496, 0.4009784966859415, 0.6067482066783576, 5.174716682839778e-44),
    ),
    "gbstats CUPED": (  # GB-TESTS
        RA_A3,
        GB_RA_B,
        "relative",
        0.05,
        5000,
        (0.503383995601997, -0.509694174070741, 1.516462165274735, 1.0),
    ),
    "gbstats means, absolute": (  # GB-RUN
        A3,
        B3,
        "absolute",
        0.05,
        5000,
        (0.23437666666666668, -0.16011652842982782, 0.6288698617631612, 0.7601250075467714),
    ),
    "issue proportions": (  # GB-RUN
        Proportion(1000, 100),
        Proportion(1000, 120),
        "relative",
        0.05,
        5000,
        (0.2, -0.2790699964885094, 0.6790699964885092, 1.0),
    ),
    "issue proportions, absolute, alpha 0.1, N* 2000": (  # GB-RUN
        Proportion(1000, 100),
        Proportion(1000, 120),
        "absolute",
        0.1,
        2000,
        (0.02, -0.018655635013292107, 0.05865563501329209, 1.0),
    ),
    "CUPED": (  # GB-RUN
        *OWN_CUPED,
        "relative",
        0.05,
        5000,
        (0.07880633350161384, 0.030899658795515664, 0.12671300820771203, 5.4023420062944695e-05),
    ),
    "gbstats CUPED ratio": (  # GB-TESTS
        *GB_RAR,
        "relative",
        0.05,
        5000,
        (-0.0007014833343349333, -0.02062898572575184, 0.01922601905708197, 1.0),
    ),
    "ratio, absolute": (  # GB-RUN
        *OWN_RATIO,
        "absolute",
        0.05,
        5000,
        (1.0989971037627093, 0.37115345099605423, 1.8268407565293643, 0.0003555598929131712),
    ),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_confidence_sequence_equals_the_reference(name: str) -> None:
    control, treatment, scale, alpha, tuning, want = REFERENCES[name]
    got = confidence_sequence(lift(control, treatment, scale), alpha, tuning)
    assert (got.estimate, got.low, got.high, got.p_value) == pytest.approx(want, abs=1e-6)


def test_a_sequence_is_wider_than_the_fixed_horizon_interval_and_neutral_on_degenerate_data() -> None:
    effect = lift(Proportion(1000, 100), Proportion(1000, 120))
    assert confidence_sequence(effect).high - confidence_sequence(effect).low > t_test(effect).high - t_test(effect).low
    neutral = confidence_sequence(lift(Proportion(0, 0), Proportion(5, 1)))
    assert (neutral.low, neutral.high, neutral.p_value, neutral.code) == (0.0, 0.0, 1.0, "empty_arm")


def test_coverage_holds_under_daily_peeking_where_the_fixed_interval_fails() -> None:
    """1,000 simulated experiments, 30 daily reads each (100 people a side a day, true lift +0.3 on a mean of
    5, sd 2): the sequence excludes the true effect at some read in at most 5% of them; the fixed-horizon
    interval read the same way does in far more (the reason sequences exist)."""
    rng = np.random.default_rng(15)
    runs, days, daily, truth = 1000, 30, 100, 0.3
    sums, squares = [], []
    for mean in (5.0, 5.0 + truth):
        values = rng.normal(mean, 2.0, (runs, days, daily))
        sums.append(values.sum(axis=2).cumsum(axis=1))
        squares.append((values * values).sum(axis=2).cumsum(axis=1))
    sequence_missed, fixed_missed = 0, 0
    for run in range(runs):
        seq_miss = fixed_miss = False
        for day in range(days):
            n = daily * (day + 1)
            c = Moments(n, float(sums[0][run, day]), float(squares[0][run, day]))
            t = Moments(n, float(sums[1][run, day]), float(squares[1][run, day]))
            effect = lift(c, t, "absolute")
            cs = confidence_sequence(effect, tuning=3000)
            seq_miss = seq_miss or not cs.low <= truth <= cs.high
            fixed_miss = fixed_miss or abs(effect.estimate - truth) > 1.959964 * effect.se
        sequence_missed += seq_miss
        fixed_missed += fixed_miss
    print(f"peeking: sequence missed {sequence_missed / runs:.3f}, fixed interval {fixed_missed / runs:.3f}")
    assert sequence_missed / runs <= 0.05
    assert fixed_missed / runs >= 0.15
