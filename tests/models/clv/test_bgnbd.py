"""BG/NBD: published CDNOW estimates, `lifetimes` side by side, brute-force checks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from userloop.core.errors import UserloopError
from userloop.models.clv import (
    BetaGeoModel,
    BetaGeoParams,
    CLVFitError,
    CLVInputError,
    ParetoNBDModel,
)

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", section 4 (CDNOW, 2357 customers).
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LL = -9582.4


def _assert_published(params: BetaGeoParams) -> None:
    for name, value in PUBLISHED.items():
        assert abs(round(getattr(params, name), 3) - value) < 0.0005, (name, getattr(params, name))


def test_reproduces_published_cdnow_fit(cdnow_exact) -> None:
    model = BetaGeoModel().fit(cdnow_exact.frequency, cdnow_exact.recency, cdnow_exact.T)
    _assert_published(model.params)
    assert abs(model.result.log_likelihood - PUBLISHED_LL) < 0.1
    assert model.result.n_customers == 2357


def test_published_fit_also_from_the_rounded_csv(cdnow_csv) -> None:
    model = BetaGeoModel().fit(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    _assert_published(model.params)
    assert abs(model.result.log_likelihood - PUBLISHED_LL) < 0.1
    ll = model.log_likelihood(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    assert ll == pytest.approx(model.result.log_likelihood, abs=1e-6)


@pytest.mark.parametrize("theta", [(0.243, 4.414, 0.793, 2.426), (2.0, 0.5, 3.0, 0.4), (0.05, 40.0, 0.2, 9.0)])
def test_gradient_matches_finite_differences(cdnow_csv, fd_gradient, theta) -> None:
    model = BetaGeoModel()
    data = (cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    analytic = model.log_likelihood_gradient(*data, params=BetaGeoParams(*theta))
    numeric = fd_gradient(lambda th: model.log_likelihood(*data, params=BetaGeoParams(*th)), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-4)


def test_matches_lifetimes_given_the_same_parameters(cdnow_csv, lifetimes) -> None:
    import pandas as pd

    model = BetaGeoModel().fit(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    reference = lifetimes.BetaGeoFitter()
    reference.params_ = pd.Series(model.params.as_dict())
    x, t_x, T = cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T
    for t in (1.0, 10.0, 39.0, 52.0):
        ours = model.conditional_expected_purchases(t, x, t_x, T)
        theirs = reference.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        assert np.max(np.abs(ours - np.asarray(theirs))) < 1e-4
    alive = reference.conditional_probability_alive(x, t_x, T)
    assert np.max(np.abs(model.probability_alive(x, t_x, T) - np.asarray(alive))) < 1e-4
    grid = np.array([0.5, 5.0, 39.0, 78.0])
    unconditional = reference.expected_number_of_purchases_up_to_time(grid)
    assert np.max(np.abs(model.expected_purchases(grid) - np.asarray(unconditional))) < 1e-4


def test_fit_agrees_with_lifetimes_fit(cdnow_csv, lifetimes) -> None:
    data = (cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    reference = lifetimes.BetaGeoFitter().fit(*data)
    ours = BetaGeoModel().fit(*data).params.as_dict()
    for name, value in ours.items():
        assert value == pytest.approx(float(reference.params_[name]), rel=1e-3)


def test_probability_alive_by_numerical_integration(cdnow_csv) -> None:
    """P(alive) against a brute-force double integral over the posterior of (λ, p)."""
    params = BetaGeoParams(**PUBLISHED)
    model = BetaGeoModel(params)
    r, alpha, a, b = params.as_array()
    customers = [(1.0, 1.71, 38.86), (2.0, 30.43, 38.86), (5.0, 10.0, 35.0), (14.0, 36.0, 37.0)]
    for x, t_x, T in customers:

        def branch(lam: float, u: float, *, alive: bool, x: float = x, t_x: float = t_x, age: float = T) -> float:
            p = u ** (1.0 / a)  # p = u^(1/a) absorbs the p^(a-1) of the beta prior
            prior = (1.0 - p) ** (b - 1.0) * lam ** (r - 1.0) * np.exp(-alpha * lam)
            if alive:
                return prior * (1.0 - p) ** x * lam**x * np.exp(-lam * age)
            return prior * p * (1.0 - p) ** (x - 1.0) * lam**x * np.exp(-lam * t_x)

        alive = integrate.dblquad(lambda lam, u: branch(lam, u, alive=True), 0, 1, 0, np.inf)[0]
        dead = integrate.dblquad(lambda lam, u: branch(lam, u, alive=False), 0, 1, 0, np.inf)[0]
        expected = alive / (alive + dead)
        got = model.probability_alive([x], [t_x], [T])[0]
        assert got == pytest.approx(expected, abs=1e-6)


def test_recovers_simulated_parameters() -> None:
    true = BetaGeoParams(r=0.5, alpha=6.0, a=0.8, b=2.5)
    T = np.random.default_rng(11).uniform(20, 60, 20_000)
    data = BetaGeoModel(true).simulate(T, seed=12)
    fitted = BetaGeoModel().fit(data.frequency, data.recency, data.T).params
    # Spread over seeds at this size: about 1.5 % for r and alpha, 6-8 % for a and b.
    assert fitted.r == pytest.approx(true.r, rel=0.08)
    assert fitted.alpha == pytest.approx(true.alpha, rel=0.08)
    assert fitted.a == pytest.approx(true.a, rel=0.3)
    assert fitted.b == pytest.approx(true.b, rel=0.3)


@pytest.mark.parametrize("t", [5.0, 30.0, 100.0])
def test_expected_purchases_matches_monte_carlo(t) -> None:
    model = BetaGeoModel(BetaGeoParams(r=0.5, alpha=6.0, a=0.8, b=2.5))
    draws = model.simulate(np.full(200_000, t), seed=int(t)).frequency
    standard_error = draws.std() / np.sqrt(draws.shape[0])
    assert abs(float(model.expected_purchases(t)) - draws.mean()) < 4 * standard_error


def test_a_equal_to_one_is_handled() -> None:
    near = BetaGeoModel(BetaGeoParams(r=0.5, alpha=6.0, a=1.0 + 1e-3, b=2.5))
    exact = BetaGeoModel(BetaGeoParams(r=0.5, alpha=6.0, a=1.0, b=2.5))
    assert float(exact.expected_purchases(20.0)) == pytest.approx(float(near.expected_purchases(20.0)), rel=1e-3)
    cond = exact.conditional_expected_purchases(10.0, [2, 0], [5.0, 0.0], [20.0, 20.0])
    assert np.all(np.isfinite(cond))
    assert np.all(cond > 0)


def test_long_horizons_and_heavy_buyers_stay_finite() -> None:
    model = BetaGeoModel(BetaGeoParams(**PUBLISHED))
    x, t_x, T = [0, 5, 500, 50], [0.0, 1.0, 999.0, 2.0], [10.0, 2.0, 1000.0, 1000.0]
    horizons = [0.0, 1.0, 39.0, 1e3, 1e4]
    values = np.array([model.conditional_expected_purchases(t, x, t_x, T) for t in horizons])
    assert np.all(np.isfinite(values))
    assert np.all(values[0] == 0)
    assert np.all(np.diff(values, axis=0) >= 0)  # cumulative: never decreasing in t
    assert np.all(np.diff(model.expected_purchases(horizons)) > 0)


# --- bad input -------------------------------------------------------------------------------------------

MODELS = [BetaGeoModel, ParetoNBDModel]


@pytest.mark.parametrize("model_cls", MODELS)
def test_no_repeat_purchases_at_all(model_cls) -> None:
    with pytest.raises(CLVFitError, match="frequency is 0") as info:
        model_cls().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])
    assert info.value.code == "clv_no_repeat_purchases"
    assert isinstance(info.value, UserloopError)


@pytest.mark.parametrize("model_cls", MODELS)
def test_one_customer(model_cls) -> None:
    with pytest.raises(CLVInputError, match="at least 2 customer") as info:
        model_cls().fit([3], [10.0], [20.0])
    assert info.value.code == "clv_too_few_customers"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("model_cls", MODELS)
def test_all_customers_identical(model_cls) -> None:
    with pytest.raises(CLVFitError, match="same frequency, recency and T") as info:
        model_cls().fit([2] * 50, [10.0] * 50, [30.0] * 50)
    assert info.value.code == "clv_no_variation"


@pytest.mark.parametrize("model_cls", MODELS)
def test_data_that_do_not_identify_the_model(model_cls) -> None:
    # Everyone bought right up to the end: no sign of dropout, so the model runs to a boundary.
    with pytest.raises(CLVFitError, match="do not identify") as info:
        model_cls().fit([1, 2, 3, 1], [10.0, 20.0, 30.0, 5.0], [10.0, 20.0, 30.0, 5.0])
    assert info.value.code == "clv_not_identified"


@pytest.mark.parametrize("model_cls", MODELS)
@pytest.mark.parametrize(
    ("frequency", "recency", "age", "pattern"),
    [
        ([1, -1], [5.0, 0.0], [10.0, 10.0], r"frequency: 1 value\(s\) are negative"),
        ([1, 0], [-5.0, 0.0], [10.0, 10.0], "recency: .* negative"),
        ([1, 0], [5.0, 0.0], [10.0, -10.0], "T: .* negative"),
        ([1, 0], [np.nan, 0.0], [10.0, 10.0], "recency: .* NaN"),
        ([1, 0], [5.0, 0.0], [np.inf, 10.0], "T: .* infinite"),
        ([1, 0], [12.0, 0.0], [10.0, 10.0], "recency: .* exceed T.* index 0"),
        ([1.5, 0], [5.0, 0.0], [10.0, 10.0], "frequency: .* whole numbers"),
        ([1, 0], [5.0, 3.0], [10.0, 10.0], "recency must be 0"),
        ([1, 0, 2], [5.0, 0.0], [10.0, 10.0, 9.0], "differ in length"),
        (["a", "b"], [5.0, 0.0], [10.0, 10.0], "frequency: cannot be read as numbers"),
        ([[1, 2]], [[5.0, 6.0]], [[10.0, 10.0]], "one-dimensional"),
    ],
)
def test_malformed_input_names_the_field(model_cls, frequency, recency, age, pattern) -> None:
    with pytest.raises(CLVInputError, match=pattern):
        model_cls().fit(frequency, recency, age)


@pytest.mark.parametrize("model_cls", MODELS)
def test_prediction_before_fit(model_cls) -> None:
    with pytest.raises(CLVFitError, match="call fit") as info:
        model_cls().probability_alive([1], [2.0], [3.0])
    assert info.value.code == "clv_not_fitted"


@pytest.mark.parametrize("model_cls", MODELS)
def test_prediction_validates_too(model_cls, cdnow_csv) -> None:
    model = model_cls().fit(cdnow_csv.frequency, cdnow_csv.recency, cdnow_csv.T)
    with pytest.raises(CLVInputError, match="recency"):
        model.probability_alive([1], [4.0], [3.0])
    with pytest.raises(CLVInputError, match="forecast horizons"):
        model.conditional_expected_purchases(-1.0, [1], [2.0], [3.0])


def test_params_must_be_positive() -> None:
    with pytest.raises(CLVInputError, match=r"BetaGeoParams\.a must be a finite number > 0"):
        BetaGeoParams(r=1.0, alpha=1.0, a=0.0, b=1.0)
