"""MBG/NBD (Batislam, Denizel & Filiztekin 2007): brute-force integrals, `lifetimes` side by side, CDNOW fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from tests.conftest import examples
from userloop.models.clv import (
    BetaGeoModel,
    BetaGeoParams,
    CLVFitError,
    CLVInputError,
    ModifiedBetaGeoModel,
    ModifiedBetaGeoParams,
)

# The MBG/NBD fit to the CDNOW summary (2,357 customers, weeks) that `lifetimes`' own test suite checks its
# ModifiedBetaGeoFitter against; rederived here independently from the paper's likelihood.
CDNOW_FIT = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
THETAS = [(0.525, 6.183, 0.891, 1.614), (0.9, 15.0, 1.2, 5.0), (2.0, 1.5, 3.0, 0.7)]
CUSTOMERS = [(0.0, 0.0, 38.86), (1.0, 1.71, 38.86), (2.0, 30.43, 38.86), (5.0, 10.0, 35.0), (3.0, 20.0, 20.0)]


def _branches(theta: tuple[float, ...], x: float, t_x: float, age: float) -> tuple[float, float]:
    """The alive and the gone parts of one customer's likelihood, by a double integral over (λ, p).

    Straight from the process: ``λ^x (1-p)^x [(1-p) e^(-λT) + p e^(-λ t_x)]`` under ``Gamma(r, α) × Beta(a, b)``.
    """
    from scipy.special import betaln, gammaln

    r, alpha, a, b = theta
    log_norm = r * np.log(alpha) - gammaln(r) - betaln(a, b)

    def dens(lam: float, p: float, alive: bool) -> float:
        prior = np.exp(log_norm + (r - 1) * np.log(lam) - alpha * lam + (a - 1) * np.log(p) + (b - 1) * np.log1p(-p))
        core = lam**x * (1 - p) ** x
        return float(prior * core * ((1 - p) * np.exp(-lam * age) if alive else p * np.exp(-lam * t_x)))

    opts = {"epsabs": 1e-13, "epsrel": 1e-10}
    alive = integrate.dblquad(lambda lam, p: dens(lam, p, True), 0, 1, 0, np.inf, **opts)[0]
    gone = integrate.dblquad(lambda lam, p: dens(lam, p, False), 0, 1, 0, np.inf, **opts)[0]
    return alive, gone


@pytest.mark.parametrize("theta", THETAS)
def test_likelihood_and_p_alive_by_numerical_integration(theta) -> None:
    model = ModifiedBetaGeoModel(ModifiedBetaGeoParams(*theta))
    for x, t_x, age in CUSTOMERS:
        alive, gone = _branches(theta, x, t_x, age)
        assert model.log_likelihood([x], [t_x], [age]) == pytest.approx(np.log(alive + gone), abs=1e-6)
        assert model.probability_alive([x], [t_x], [age])[0] == pytest.approx(alive / (alive + gone), abs=1e-6)


def test_zero_repeat_customers_can_be_gone() -> None:
    """The point of the MBG/NBD: P(alive) < 1 without repeat purchases, falling with time (BG/NBD: 1)."""
    model = ModifiedBetaGeoModel(ModifiedBetaGeoParams(**CDNOW_FIT))
    p = model.probability_alive([0, 0, 0], [0, 0, 0], [1.0, 10.0, 50.0])
    assert np.all(p < 1) and np.all(np.diff(p) < 0)
    bg = BetaGeoModel(BetaGeoParams(**CDNOW_FIT))
    assert bg.probability_alive([0], [0], [50.0])[0] == 1.0


def test_expected_purchases_by_monte_carlo_of_the_process() -> None:
    """E[X(t)] and E[Y(t) | x, t_x, T] against an event-by-event simulation (not the model's simulate)."""
    theta = ModifiedBetaGeoParams(r=0.9, alpha=10.0, a=1.3, b=4.0)
    rng = np.random.default_rng(5)
    n, t1, t2 = 400_000, 20.0, 30.0
    lam = rng.gamma(theta.r, 1 / theta.alpha, n)
    p = rng.beta(theta.a, theta.b, n)
    alive = rng.random(n) >= p  # dropout at the first purchase (time 0)
    count_t1, count_t2, last_t1 = np.zeros(n), np.zeros(n), np.zeros(n)
    clock = np.zeros(n)
    while alive.any():
        idx = np.flatnonzero(alive)
        clock[idx] += rng.exponential(1 / np.maximum(lam[idx], 1e-300))
        beyond = clock[idx] > t2
        alive[idx[beyond]] = False
        buy = idx[~beyond]
        early = buy[clock[buy] <= t1]
        count_t1[early] += 1
        last_t1[early] = clock[early]
        count_t2[buy] += 1
        gone = buy[rng.random(buy.size) < p[buy]]
        alive[gone] = False
    model = ModifiedBetaGeoModel(theta)
    se = count_t1.std() / np.sqrt(n)
    assert abs(float(model.expected_purchases(t1)) - count_t1.mean()) < 4 * se
    # Conditional on each simulated history at t1, the purchases in (t1, t2]: by frequency group.
    later = count_t2 - count_t1
    predicted = model.conditional_expected_purchases(t2 - t1, count_t1, last_t1, np.full(n, t1))
    for x in (0, 1, 2, 5):
        sel = count_t1 == x
        assert sel.sum() > 2000
        se = later[sel].std() / np.sqrt(sel.sum())
        assert abs(predicted[sel].mean() - later[sel].mean()) < 4 * se, x


def test_matches_lifetimes_side_by_side(cdnow_csv, lifetimes) -> None:
    data = (cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    ours = ModifiedBetaGeoModel().fit(*data)
    reference = lifetimes.ModifiedBetaGeoFitter().fit(*data)
    for name, value in ours.params.as_dict().items():
        assert value == pytest.approx(float(reference.params_[name]), rel=1e-3)
    reference.params_[:] = ours.params.as_array()  # compare the formulas at the same parameters
    for t in (1.0, 39.0, 78.0):
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(t, *data)
        np.testing.assert_allclose(ours.conditional_expected_purchases(t, *data), theirs, rtol=1e-8)
    np.testing.assert_allclose(ours.probability_alive(*data), reference.conditional_probability_alive(*data), 1e-10)
    grid = np.array([0.5, 5.0, 39.0, 78.0])
    np.testing.assert_allclose(ours.expected_purchases(grid), reference.expected_number_of_purchases_up_to_time(grid))


def test_cdnow_fit_is_the_known_one_and_sensible(cdnow_csv) -> None:
    model = ModifiedBetaGeoModel().fit(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    for name, value in CDNOW_FIT.items():
        assert round(getattr(model.params, name), 3) == pytest.approx(value, abs=0.0011), (name, model.params)
    # Sensible: the model's E[X(T_i)] summed over customers is close to the repeat purchases observed.
    fitted_total = float(np.sum(model.expected_purchases(cdnow_csv.T)))
    assert fitted_total == pytest.approx(float(cdnow_csv.frequency.sum()), rel=0.03)
    # Its log-likelihood beats the BG/NBD's on CDNOW (one more way to drop out, same parameter count).
    bg = BetaGeoModel().fit(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    assert model.result.log_likelihood > bg.result.log_likelihood - 20


@pytest.mark.parametrize("theta", THETAS)
def test_gradient_matches_finite_differences(cdnow_csv, fd_gradient, theta) -> None:
    model = ModifiedBetaGeoModel()
    data = (cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    analytic = model.log_likelihood_gradient(*data, params=ModifiedBetaGeoParams(*theta))
    numeric = fd_gradient(lambda th: model.log_likelihood(*data, params=ModifiedBetaGeoParams(*th)), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-3)


def test_recovers_simulated_parameters() -> None:
    true = ModifiedBetaGeoParams(r=0.9, alpha=15.0, a=1.2, b=5.0)
    T = np.random.default_rng(3).uniform(30, 150, 20_000)
    data = ModifiedBetaGeoModel(true).simulate(T, seed=4)
    fitted = ModifiedBetaGeoModel().fit(data.frequency, data.recency, data.T).params
    assert fitted.r == pytest.approx(true.r, rel=0.1)
    assert fitted.alpha == pytest.approx(true.alpha, rel=0.15)
    assert fitted.a == pytest.approx(true.a, rel=0.3)
    assert fitted.b == pytest.approx(true.b, rel=0.3)


@settings(max_examples=examples(25), deadline=None)
@given(
    x=st.integers(0, 60),
    gap=st.floats(0.0, 1.0),
    age=st.floats(0.5, 400.0),
    t=st.floats(0.0, 1e4),
    a=st.sampled_from([0.6, 1.0, 1.5, 4.0]),
)
def test_predictions_are_finite_bounded_and_monotone(x, gap, age, t, a) -> None:
    model = ModifiedBetaGeoModel(ModifiedBetaGeoParams(r=0.7, alpha=8.0, a=a, b=2.0))
    t_x = 0.0 if x == 0 else age * gap
    alive = model.probability_alive([x], [t_x], [age])[0]
    assert 0.0 < alive < 1.0
    near, far = (model.conditional_expected_purchases(h, [x], [t_x], [age])[0] for h in (t, t + 10.0))
    assert np.isfinite(near) and np.isfinite(far) and 0.0 <= near <= far


def test_bad_input_and_unidentified_data() -> None:
    with pytest.raises(CLVFitError) as info:
        ModifiedBetaGeoModel().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    assert info.value.code == "clv_no_repeat_purchases"
    with pytest.raises(CLVInputError, match="recency"):
        ModifiedBetaGeoModel().fit([1, 0], [12.0, 0.0], [10.0, 10.0])
    with pytest.raises(CLVFitError, match="call fit"):
        ModifiedBetaGeoModel().probability_alive([1], [2.0], [3.0])
