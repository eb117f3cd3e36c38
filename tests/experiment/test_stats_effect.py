"""Effects and their fixed-horizon tests against published values, GrowthBook's engine run side by side, scipy,
and brute-force computations on raw values.

References (control first):

- ISSUE: the values quoted in issue 15, from GrowthBook's engine.
- GB-TESTS: GrowthBook's own tests, ``packages/stats/tests/frequentist/test_tests.py`` (5 decimals published; the
  full-precision values here come from the same engine run).
- GB-RUN: gbstats 0.8.0 (growthbook/growthbook at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469) run side by
  side on the sums written below (``TwoSidedTTest`` with ``ProportionStatistic``, ``SampleMeanStatistic``,
  ``RatioStatistic``, ``RegressionAdjustedStatistic``); the sums themselves are of seeded simulated people
  (a CUPED metric ``0.8 × pre + noise``; revenue over orders per person).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from tests.conftest import examples
from userloop.core.errors import ValidationError
from userloop.experiment.stats import Arm, Cuped, Proportion, Ratio, Scale, lift, pooled_theta, t_test
from userloop.stats import Moments
from userloop.stats.messages import DEGENERATE

TOL = 1e-6

GB_A = Moments(3407, 1396.87, 52377.9767)
GB_B = Moments(3461, 2422.7, 134698.29)
GB_RA_A = Cuped(Moments(3000, 1396.87, 52377.9767), Moments(3000, 16.87, 527.9767), 1.0)
GB_RA_B = Cuped(Moments(3461, 2422.7, 134698.29), Moments(3461, 22.7, 1348.29), 1.0)
OWN_CUPED = (
    Cuped.from_sums(
        2000, 16106.944842687937, 221856.16241578187, 19873.537671515216, 291620.41267328244, 236364.1664683179
    ),
    Cuped.from_sums(
        2100, 17840.570475881268, 256511.51332888767, 20368.46469813097, 305417.5814365294, 260716.38202260563
    ),
)
OWN_RATIO = (
    Ratio.from_sums(1500, 44966.62357854956, 2416669.7760796677, 2209.0, 5545.0, 112247.28219640155),
    Ratio.from_sums(1450, 46385.91864500051, 2607409.466172465, 2162.0, 5406.0, 115835.38570870695),
)

# name: (control, treatment, scale, (estimate, low, high, p))
REFERENCES: dict[str, tuple[Arm, Arm, Scale, tuple[float, float, float, float]]] = {
    # ISSUE
    "issue proportions, relative": (
        Proportion(1000, 100),
        Proportion(1000, 120),
        "relative",
        (0.2, -0.100768, 0.500768, 0.19235),
    ),
    "issue proportions, absolute": (
        Proportion(1000, 100),
        Proportion(1000, 120),
        "absolute",
        (0.02, -0.007428, 0.047428, 0.152865),
    ),
    "issue means, relative": (
        Moments.from_mean_var(1000, 10.0, 25.0),
        Moments.from_mean_var(1000, 10.5, 25.0),
        "relative",
        (0.05, 0.005038, 0.094962, 0.029308),
    ),
    # GB-TESTS (full precision from GB-RUN)
    "gbstats means, relative": (
        GB_A,
        GB_B,
        "relative",
        (0.7073170731707317, -0.03526008906611777, 1.449894235407581, 0.06191182745618362),
    ),
    "gbstats means, absolute": (
        GB_A,
        GB_B,
        "absolute",
        (0.29, 0.04537789255929012, 0.5346221074407098, 0.020158402643587037),
    ),
    "gbstats binomial, relative": (
        Proportion(28, 14),
        Proportion(30, 16),
        "relative",
        (0.06666666666666665, -0.4776740282706786, 0.6110073616040119, 0.8070716832021887),
    ),
    # GB-RUN
    "issue means, absolute": (
        Moments.from_mean_var(1000, 10.0, 25.0),
        Moments.from_mean_var(1000, 10.5, 25.0),
        "absolute",
        (0.5, 0.06147307806144503, 0.938526921938555, 0.025457331632895652),
    ),
    "gbstats binomial, absolute": (
        Proportion(28, 14),
        Proportion(30, 16),
        "absolute",
        (0.033333333333333326, -0.2296095491043773, 0.29627621577104396, 0.8004455444388894),
    ),
    "gbstats CUPED, relative": (
        GB_RA_A,
        GB_RA_B,
        "relative",
        (0.503383995601997, -0.15022145744574444, 1.1569894486497385, 0.13114746054543458),
    ),
    "gbstats CUPED, absolute": (
        GB_RA_A,
        GB_RA_B,
        "absolute",
        (0.2343873339788538, -0.020126810876695933, 0.48890147883440355, 0.07107240110004032),
    ),
    "CUPED, relative": (
        *OWN_CUPED,
        "relative",
        (0.07880633350161384, 0.04790429496300261, 0.10970837204022507, 5.979827695234974e-07),
    ),
    "CUPED, absolute": (
        *OWN_CUPED,
        "absolute",
        (0.6346646334824824, 0.3928449463411856, 0.8764843206237791, 2.792793316608311e-07),
    ),
    "CUPED's metric unadjusted, relative": (
        OWN_CUPED[0].metric,
        OWN_CUPED[1].metric,
        "relative",
        (0.05488779323365656, 0.0007505494921555833, 0.10902503697515753, 0.046908702624241405),
    ),
    "ratio, relative": (
        *OWN_RATIO,
        "relative",
        (0.05398858995875118, 0.03044012389903885, 0.0775370560184635, 7.212761938379941e-06),
    ),
    "ratio, absolute": (
        *OWN_RATIO,
        "absolute",
        (1.0989971037627093, 0.6330080150320159, 1.5649861924934028, 3.920338378593513e-06),
    ),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_t_test_equals_the_reference(name: str) -> None:
    control, treatment, scale, (estimate, low, high, p) = REFERENCES[name]
    got = t_test(lift(control, treatment, scale))
    assert got.code is None
    assert (got.estimate, got.low, got.high, got.p_value) == pytest.approx((estimate, low, high, p), abs=TOL)


def test_cuped_narrows_the_interval_of_its_metric() -> None:
    adjusted = t_test(lift(*OWN_CUPED, "absolute"))
    plain = t_test(lift(OWN_CUPED[0].metric, OWN_CUPED[1].metric, "absolute"))
    assert adjusted.se < 0.6 * plain.se  # the pre-period explains most of the variance of this metric


def test_absolute_means_equal_scipy_welch() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.gamma(2.0, 3.0, 400), rng.gamma(2.2, 3.0, 350)
    got = t_test(lift(Moments.of(a.tolist()), Moments.of(b.tolist()), "absolute"), alpha=0.1)
    want = sp.ttest_ind(b, a, equal_var=False)
    ci = want.confidence_interval(0.9)
    assert (got.estimate, got.p_value) == pytest.approx((b.mean() - a.mean(), want.pvalue), abs=1e-12)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_cuped_equals_welch_on_the_adjusted_values_per_person() -> None:
    """Brute force: adjust each person's value by the pooled θ, then Welch's t on the adjusted values."""
    rng = np.random.default_rng(11)
    pre_c, pre_t = rng.gamma(2.0, 5.0, 300), rng.gamma(2.0, 5.0, 320)
    post_c, post_t = 0.7 * pre_c + rng.normal(0, 3, 300), 0.7 * pre_t + rng.normal(0.5, 3, 320)
    control = Cuped.of(zip(post_c.tolist(), pre_c.tolist(), strict=True))
    treatment = Cuped.of(zip(post_t.tolist(), pre_t.tolist(), strict=True))
    post, pre = np.concatenate([post_c, post_t]), np.concatenate([pre_c, pre_t])
    theta = np.cov(post, pre, ddof=1)[0, 1] / np.var(pre, ddof=1)
    assert pooled_theta(control, treatment) == pytest.approx(theta, rel=1e-9)
    want = sp.ttest_ind(post_t - theta * pre_t, post_c - theta * pre_c, equal_var=False)
    got = t_test(lift(control, treatment, "absolute"))
    assert got.estimate == pytest.approx(float(np.mean(post_t - theta * pre_t) - np.mean(post_c - theta * pre_c)))
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)


def test_relative_lift_interval_covers_the_true_lift_at_its_level() -> None:
    """The delta method's relative interval over 2,000 simulated experiments (p 0.10 → 0.11, 3,000 a side)."""
    rng = np.random.default_rng(2026)
    x_c, x_t = rng.binomial(3000, 0.10, 2000), rng.binomial(3000, 0.11, 2000)
    covered = sum(
        r.low <= 0.1 <= r.high
        for r in (
            t_test(lift(Proportion(3000, int(c)), Proportion(3000, int(t)))) for c, t in zip(x_c, x_t, strict=True)
        )
    )
    assert 0.935 <= covered / 2000 <= 0.965


@settings(max_examples=examples(100))
@given(
    parts=st.lists(
        st.tuples(st.integers(0, 50), st.floats(0, 100), st.floats(0, 100), st.floats(0, 10)), min_size=1, max_size=5
    )
)
def test_arms_add_up_like_their_sums(parts: list[tuple[int, float, float, float]]) -> None:
    ratios = [Ratio.from_sums(n, s, s * s, d, d * d, s * d) for n, s, d, _ in parts]
    total = ratios[0]
    for r in ratios[1:]:
        total = total + r
    assert isinstance(total, Ratio)
    assert total.n == sum(p[0] for p in parts)
    assert total.x.total == pytest.approx(sum(p[1] for p in parts))
    props = [Proportion(n, min(n, c)) for n, _, _, c in parts]
    summed = props[0]
    for p in props[1:]:
        summed = summed + p
    assert summed.conversions == pytest.approx(sum(p.conversions for p in props))


DEGENERATE_CASES: dict[str, tuple[Arm, Arm, Scale, str]] = {
    "empty control": (Proportion(0, 0), Proportion(100, 10), "relative", "empty_arm"),
    "empty treatment": (Moments(), Moments.of([1.0, 2.0]), "absolute", "empty_arm"),
    "one person": (Moments.of([1.0]), Moments.of([1.0, 2.0]), "absolute", "too_few"),
    "no variance anywhere": (Moments.of([3.0] * 5), Moments.of([3.0] * 7), "absolute", "zero_variance"),
    "nobody converts": (Proportion(500, 0), Proportion(500, 0), "relative", "zero_variance"),
    "control at zero": (Proportion(500, 0), Proportion(500, 7), "relative", "zero_baseline"),
    "ratio without denominator": (
        Ratio.from_sums(10, 0.0, 0.0, 0.0, 0.0, 0.0),
        Ratio.from_sums(10, 5.0, 9.0, 3.0, 3.0, 5.0),
        "relative",
        "zero_denominator",
    ),
    "CUPED without variance": (
        Cuped.of([(2.0, 1.0)] * 4),
        Cuped.of([(2.0, 3.0)] * 4),
        "relative",
        "zero_variance",
    ),
}


@pytest.mark.parametrize("name", list(DEGENERATE_CASES))
def test_degenerate_data_gives_a_neutral_result_with_a_stable_code(name: str) -> None:
    control, treatment, scale, code = DEGENERATE_CASES[name]
    got = t_test(lift(control, treatment, scale))
    assert (got.estimate, got.low, got.high, got.p_value, got.code) == (0.0, 0.0, 0.0, 1.0, code)
    assert code in DEGENERATE


def test_cuped_with_a_constant_covariate_is_the_plain_comparison() -> None:
    control = Cuped.of([(v, 1.0) for v in (1.0, 4.0, 2.0, 8.0)])
    treatment = Cuped.of([(v, 1.0) for v in (3.0, 5.0, 9.0)])
    assert pooled_theta(control, treatment) == 0.0
    assert lift(control, treatment) == lift(control.metric, treatment.metric)


def test_arms_of_different_kinds_are_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="one kind"):
        lift(Proportion(10, 2), Moments.of([1.0, 2.0]))
