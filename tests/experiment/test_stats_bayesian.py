"""The Gaussian posterior, chance to win and expected loss against GrowthBook's engine and brute force.

References: GB-TESTS are GrowthBook's ``packages/stats/tests/bayesian/test_tests.py`` (``TestBinom``, ``TestNorm``,
``TestGetRiskNumericalStability``; 5 to 10 decimals published); GB-RUN is gbstats 0.8.0 (growthbook/growthbook at
commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469, ``EffectBayesianABTest``) run side by side for full precision.
"""

from __future__ import annotations

import pytest
from scipy import integrate
from scipy.stats import norm

from tests.experiment.test_stats_effect import OWN_CUPED, OWN_RATIO
from userloop.experiment.stats import (
    FLAT,
    Arm,
    GaussianPrior,
    Proportion,
    Scale,
    expected_losses,
    lift,
    posterior,
)
from userloop.stats import Moments

NORM_A, NORM_B = Moments(10, 100.0, 1002.25), Moments(10, 105.0, 1111.5)
ISSUE = (Proportion(1000, 100), Proportion(1000, 120))

# name: (control, treatment, scale, prior, (expected, low, high, chance to win, loss of control, of treatment))
REFERENCES: dict[str, tuple[Arm, Arm, Scale, GaussianPrior, tuple[float, ...]]] = {
    "gbstats binomial": (  # GB-TESTS
        Proportion(100, 49),
        Proportion(100, 51),
        "relative",
        FLAT,
        (
            0.04081632653061228,
            -0.24779335974122607,
            0.3294260128024506,
            0.6091813095808981,
            0.0813958491551631,
            0.04057952262455081,
        ),
    ),
    "gbstats normal": (  # GB-TESTS
        NORM_A,
        NORM_B,
        "relative",
        FLAT,
        (
            0.05,
            -0.020001863604820883,
            0.12000186360482087,
            0.9192339081566245,
            0.05130981716392653,
            0.001309817163926532,
        ),
    ),
    "gbstats normal, informative prior": (  # GB-TESTS
        NORM_A,
        NORM_B,
        "relative",
        GaussianPrior(0.1, 0.1, proper=True),
        (
            0.05062977888312217,
            -0.018929830742817608,
            0.12018938850906194,
            0.9231499085772956,
            0.05185680642943358,
            0.001227027546311408,
        ),
    ),
    "issue proportions": (  # GB-RUN
        *ISSUE,
        "relative",
        FLAT,
        (0.2, -0.1005846161444825, 0.5005846161444822, 0.9039004818067533, 0.20692160791267783, 0.006921607912677944),
    ),
    "issue proportions, absolute with a relative prior": (  # GB-RUN (prior_type="relative")
        *ISSUE,
        "absolute",
        GaussianPrior(0.05, 0.04, proper=True, scale="relative"),
        (
            0.015073875083948954,
            -0.00739002544444275,
            0.03753777561234065,
            0.9057766354283621,
            0.015579063018372297,
            0.0005051879344233444,
        ),
    ),
    "CUPED, absolute": (  # GB-RUN
        *OWN_CUPED,
        "absolute",
        FLAT,
        (
            0.6346646334824824,
            0.39291639724409777,
            0.876412869720867,
            0.9999998666079642,
            0.6346646364745941,
            2.9921118279031972e-09,
        ),
    ),
    "ratio": (  # GB-RUN
        *OWN_RATIO,
        "relative",
        FLAT,
        (
            0.05398858995875118,
            0.03044980237159102,
            0.07752737754591132,
            0.9999965276378495,
            0.05398859848686971,
            8.528118532297939e-09,
        ),
    ),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_posterior_equals_the_reference(name: str) -> None:
    control, treatment, scale, prior, want = REFERENCES[name]
    got = posterior(lift(control, treatment, scale), prior)
    assert got.code is None
    values = (got.expected, got.low, got.high, got.chance_to_win, got.loss_control, got.loss_treatment)
    assert values == pytest.approx(want, abs=1e-6)


def test_posterior_equals_posthog() -> None:
    """PostHog's ``TestBayesianMethod.test_realistic_example`` (products/experiments/stats/tests/test_bayesian.py at
    02d3426a; 4 to 5 decimals published, held to one unit of the last)."""
    got = posterior(lift(Moments(2507, 1196.87, 37377.9767), Moments(2461, 1922.7, 94698.29)))
    assert got.expected == pytest.approx(0.63646, abs=1e-5)
    assert (got.low, got.high) == (pytest.approx(-0.0873, abs=1e-4), pytest.approx(1.36026, abs=1e-5))
    assert got.chance_to_win == pytest.approx(0.95759, abs=1e-5)


def test_expected_losses_equal_gbstats_and_numerical_integration() -> None:
    assert expected_losses(0.1, 0.05) == pytest.approx((0.1004245351308, 0.0004245351308414), abs=1e-12)  # GB-TESTS
    assert expected_losses(0.01, 4.5e-9) == pytest.approx((0.01, 0.0), abs=1e-15)  # GB-TESTS: no overflow
    for mu, sd in ((0.03, 0.02), (-0.4, 1.3), (0.0, 0.5)):
        gain = integrate.quad(lambda x, m=mu, s=sd: x * norm.pdf(x, m, s), 0, mu + 12 * sd, epsabs=1e-13)[0]
        loss = integrate.quad(lambda x, m=mu, s=sd: -x * norm.pdf(x, m, s), mu - 12 * sd, 0, epsabs=1e-13)[0]
        assert expected_losses(mu, sd) == pytest.approx((gain, loss), abs=1e-10)


def test_a_tight_proper_prior_pulls_the_posterior_to_it() -> None:
    effect = lift(*ISSUE)
    pulled = posterior(effect, GaussianPrior(0.0, 1e-6, proper=True))
    assert abs(pulled.expected) < 1e-3 < posterior(effect).expected


def test_degenerate_data_gives_an_even_chance_and_no_loss() -> None:
    empty = posterior(lift(Proportion(0, 0), Proportion(0, 0)))  # as gbstats' test_missing_data
    assert (empty.chance_to_win, empty.expected, empty.loss_control, empty.code) == (0.5, 0.0, 0.0, "empty_arm")
    effect = lift(Moments.of([0.0, 2.0, 1.0]), Moments.of([1.0, 3.0]), "absolute")
    no_scale = posterior(effect, GaussianPrior(0.1, 0.01, proper=True, scale="relative"))
    assert no_scale.code is None
    baseless = posterior(
        lift(Moments.of([-1.0, 1.0]), Moments.of([1.0, 3.0]), "absolute"),
        GaussianPrior(0.1, 0.01, proper=True, scale="relative"),
    )
    assert (baseless.chance_to_win, baseless.code) == (0.5, "zero_baseline")
