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
from userloop.experiment.stats import (
    Arm,
    Cuped,
    CupedRatio,
    GaussianPrior,
    Proportion,
    Ratio,
    Scale,
    confidence_sequence,
    lift,
    pooled_theta,
    posterior,
    ratio_theta,
    t_test,
)
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


def cuped_ratio(n: int, sums: tuple[float, ...]) -> CupedRatio:
    """From 14 sums: numerator, its square, denominator, its square, their product (during), the same five
    before, then Σ m m', Σ m d', Σ d m', Σ d d' across the periods."""
    post, pre = Ratio.from_sums(n, *sums[0:5]), Ratio.from_sums(n, *sums[5:10])
    return CupedRatio(post, pre, *sums[10:])


# gbstats' test_two_sided_ttest_test_runs_ratio_ra (GB-TESTS) in this layout
GB_RAR = (
    cuped_ratio(100, (485.112236689623, 2715.484666118136, 679.9093275844917, 4939.424001640236, 3602.146836776702,
                      192.59138069991536, 460.076026390857, 290.1398399750233, 920.9461385038898, 634.239482353647,
                      1113.6215759318352, 1559.2878434944676, 1460.3181079276983, 2130.9404074446747)),
    cuped_ratio(100, (514.7757826608777, 2994.897482705013, 705.4090874383759, 5291.36604146392, 3918.1561431600717,
                      206.94157227402536, 514.2903702246757, 302.54389139107326, 994.4506208125663, 698.4173425817908,
                      1237.0953021125997, 1701.0287270040265, 1604.0759503266522, 2292.081739775257)),
)  # fmt: skip
# seeded simulated revenue over orders, this period and the one before; then the same with the revenue negated
OWN_RAR = (
    cuped_ratio(1200, (73126.50518239668, 6698528.931944009, 3696.0, 14150.0, 280547.8735049175, 70928.68585376948,
                       6089983.746040531, 3588.0, 12958.0, 256914.9103429549, 5949749.254094629, 261512.06341459355,
                       261546.12417880425, 13187.0)),
    cuped_ratio(1300, (80063.41929622808, 7294603.831396339, 3894.0, 14708.0, 301758.12037007965, 75057.05175706658,
                       6339530.901137179, 3858.0, 13978.0, 269583.4874704633, 6311711.735475591, 284874.8355007494,
                       269567.7139597214, 13942.0)),
)  # fmt: skip
OWN_RAR_NEGATIVE = (
    cuped_ratio(1200, (-72875.74619997374, 6789974.035720444, 3647.0, 14013.0, -281207.8643564976, -70575.98241336159,
                       6108874.18379047, 3581.0, 13127.0, -259278.38814646777, 5985966.738207674, -264361.0625780095,
                       -261441.17601917582, 13200.0)),
    cuped_ratio(1300, (-82780.45423832547, 7926153.228466872, 3922.0, 15036.0, -319281.3304815109, -79104.07487146015,
                       7202532.104463604, 3905.0, 14281.0, -291392.18175066204, 7054535.635626496, -303114.18973002175,
                       -291341.47514182044, 14267.0)),
)  # fmt: skip

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
    "gbstats CUPED ratio, relative": (  # GB-TESTS
        *GB_RAR,
        "relative",
        (-0.0007014833343349333, -0.0084077861436321, 0.007004819474962233, 0.8577104052724964),
    ),
    "gbstats CUPED ratio, absolute": (
        *GB_RAR,
        "absolute",
        (-0.0005005051931390447, -0.005999585798668331, 0.004998575412390242, 0.8577275125565893),
    ),
    "CUPED ratio, relative": (
        *OWN_RAR,
        "relative",
        (0.05059708011660163, 0.022496315644996014, 0.07869784458820724, 0.0004219483319081174),
    ),
    "CUPED ratio, absolute": (
        *OWN_RAR,
        "absolute",
        (1.0010789072945911, 0.46067044828582204, 1.5414873663033601, 0.0002863907862964421),
    ),
    "CUPED ratio, negative baseline, relative": (
        *OWN_RAR_NEGATIVE,
        "relative",
        (-0.036684615776448305, -0.0649402075476068, -0.0084290240052898, 0.010960199352099353),
    ),
    "CUPED ratio, negative baseline, absolute": (
        *OWN_RAR_NEGATIVE,
        "absolute",
        (-0.7330459963718123, -1.2858199684813862, -0.18027202426223832, 0.009366447289795188),
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


def test_cuped_ratio_sums_and_variance_equal_numpy_and_a_finite_difference_delta_method() -> None:
    """Brute force on per-person rows: the covariance matrix is numpy's, and the relative lift's standard error is
    the delta method with a numerically differentiated gradient (θ held at its pooled value)."""
    rng = np.random.default_rng(5)
    arms = []
    for n, shift in ((150, 0.0), (170, 0.4)):
        d_pre = rng.poisson(2.0, n) + 1.0
        m_pre = -d_pre * rng.gamma(4.0, 3.0, n)  # a negative baseline exercises the signs
        d = np.maximum(d_pre + rng.integers(-1, 2, n), 1.0)
        m = 0.6 * m_pre / d_pre * d - d * rng.normal(4 + shift, 3, n)
        arms.append(np.column_stack([m, d, m_pre, d_pre]))
    control, treatment = (CupedRatio.of(map(tuple, a.tolist())) for a in arms)
    assert np.allclose(control.covariances, np.cov(arms[0], rowvar=False, ddof=1), rtol=1e-9)
    theta = ratio_theta(control, treatment)

    def relative(mc: np.ndarray, mt: np.ndarray) -> float:
        adjusted_c, adjusted_t = mc[0] / mc[1] - theta * mc[2] / mc[3], mt[0] / mt[1] - theta * mt[2] / mt[3]
        return float((adjusted_t - adjusted_c) / abs(mc[0] / mc[1]))

    means = [a.mean(axis=0) for a in arms]
    var = 0.0
    for k, arm in enumerate(arms):
        grad = np.zeros(4)
        for i in range(4):
            step = np.zeros(4)
            step[i] = 1e-6 * abs(means[k][i])
            up = [means[0] + step * (k == 0), means[1] + step * (k == 1)]
            down = [means[0] - step * (k == 0), means[1] - step * (k == 1)]
            grad[i] = (relative(*up) - relative(*down)) / (2 * step[i])
        var += grad @ np.cov(arm, rowvar=False, ddof=1) @ grad / len(arm)
    got = lift(control, treatment)
    assert got.estimate == pytest.approx(relative(*means), rel=1e-12)
    assert got.se == pytest.approx(float(np.sqrt(var)), rel=1e-6)


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
    "CUPED ratio without denominator": (
        CupedRatio.of([(1.0, 0.0, 1.0, 1.0)] * 3),
        CupedRatio.of([(1.0, 1.0, 1.0, 1.0)] * 3),
        "absolute",
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


def test_cuped_ratio_with_a_constant_covariate_is_the_plain_ratio_comparison() -> None:
    rows_c = [(3.0, 1.0), (5.0, 2.0), (9.0, 2.0), (2.0, 1.0)]
    rows_t = [(4.0, 1.0), (8.0, 3.0), (7.0, 2.0)]
    control = CupedRatio.of((m, d, 2.0, 1.0) for m, d in rows_c)
    treatment = CupedRatio.of((m, d, 2.0, 1.0) for m, d in rows_t)
    assert ratio_theta(control, treatment) == 0.0
    assert lift(control, treatment) == lift(Ratio.of(rows_c), Ratio.of(rows_t))


def test_arms_of_different_kinds_are_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="one kind"):
        lift(Proportion(10, 2), Moments.of([1.0, 2.0]))
    with pytest.raises(ValidationError, match="between 0 and the people"):
        Proportion(10, 11)


# POSTHOG: PostHog's experiment engine tests (PostHog/posthog, products/experiments/stats/tests/test_frequentist.py
# at 03f2add8 and test_bayesian.py at 02d3426a; their arm "a" is the treatment). Published with 4 to 7 decimals,
# some truncated rather than rounded, so each is held to one unit of its last published digit.
POSTHOG_MEANS = (Moments(2507, 1196.87, 37377.9767), Moments(2461, 1922.7, 94698.29))
POSTHOG_RATIO = (
    Ratio.from_sums(1966, 94605.79858780127, 10463129.505392816, 936.0, 936.0, 94605.79858780127),
    Ratio.from_sums(2034, 99673.9364269569, 11298745.182728939, 947.0, 947.0, 99673.9364269569),
)
POSTHOG: dict[str, tuple[Arm, Arm, tuple[str, str, str, str]]] = {
    "means": (*POSTHOG_MEANS, ("0.63646", "-0.0875", "1.36048", "0.08487")),
    "proportions": (Proportion(1529, 87), Proportion(1471, 62), ("-0.25925", "-0.49475", "-0.02376", "0.030960")),
    "ratio": (*POSTHOG_RATIO, ("0.041333", "0.01378609", "0.0689", "0.0032826")),
}


def _published(value: str) -> object:
    """``value`` within one unit of its last digit."""
    return pytest.approx(float(value), abs=10.0 ** -len(value.split(".")[1]))


@pytest.mark.parametrize("name", list(POSTHOG))
def test_t_test_equals_posthog(name: str) -> None:
    control, treatment, want = POSTHOG[name]
    got = t_test(lift(control, treatment))
    assert (got.estimate, got.low, got.high, got.p_value) == tuple(_published(v) for v in want)


def test_levels_and_priors_that_cannot_be_used_are_clear_errors() -> None:
    effect = lift(Proportion(1000, 100), Proportion(1000, 120))
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ValidationError, match="alpha"):
            t_test(effect, alpha)
        with pytest.raises(ValidationError, match="alpha"):
            confidence_sequence(effect, alpha)
        with pytest.raises(ValidationError, match="alpha"):
            posterior(effect, alpha=alpha)
    with pytest.raises(ValidationError, match="N\\*"):
        confidence_sequence(effect, tuning=0)
    with pytest.raises(ValidationError, match="variance"):
        GaussianPrior(0.0, 0.0, proper=True)
