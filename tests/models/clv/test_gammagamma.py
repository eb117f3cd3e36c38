"""Gamma-Gamma spend model and discounted CLV: published CDNOW estimates, `lifetimes` side by side."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from userloop.models.clv import (
    BetaGeoModel,
    CLVFitError,
    CLVInputError,
    GammaGammaModel,
    GammaGammaParams,
    ParetoNBDModel,
)

# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value": CDNOW, 946 customers with x > 0.
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
LIFETIMES_WEEKS_PER_MONTH = 4.345  # lifetimes' month for freq="W"


def test_reproduces_published_cdnow_fit(cdnow_exact) -> None:
    model = GammaGammaModel().fit(cdnow_exact.frequency, cdnow_exact.monetary)
    for name, value in PUBLISHED.items():
        assert abs(round(getattr(model.params, name), 2) - value) < 0.005, (name, model.params)
    assert model.result.n_customers == 946


def test_fit_on_the_shipped_spend_csv(cdnow_spend_csv) -> None:
    """The CSV's cent-rounded mean spends move γ to 15.4477 (see the `cdnow_exact` fixture)."""
    model = GammaGammaModel().fit(cdnow_spend_csv.frequency, cdnow_spend_csv.monetary)
    for name in ("p", "q"):
        assert abs(round(getattr(model.params, name), 2) - PUBLISHED[name]) < 0.005, name
    assert model.params.gamma == pytest.approx(PUBLISHED["gamma"], abs=0.01)
    ll = model.log_likelihood(cdnow_spend_csv.frequency, cdnow_spend_csv.monetary)
    assert ll == pytest.approx(model.result.log_likelihood, abs=1e-6)


@pytest.mark.parametrize("theta", [(6.25, 3.74, 15.44), (0.8, 1.5, 3.0), (20.0, 12.0, 200.0)])
def test_gradient_matches_finite_differences(cdnow_spend_csv, fd_gradient, theta) -> None:
    model = GammaGammaModel()
    data = (cdnow_spend_csv.frequency, cdnow_spend_csv.monetary)
    analytic = model.log_likelihood_gradient(*data, params=GammaGammaParams(*theta))
    numeric = fd_gradient(lambda th: model.log_likelihood(*data, params=GammaGammaParams(*th)), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-4)


def test_fit_agrees_with_lifetimes_fit(cdnow_spend_csv, lifetimes) -> None:
    rep = cdnow_spend_csv.frequency > 0
    reference = lifetimes.GammaGammaFitter().fit(cdnow_spend_csv.frequency[rep], cdnow_spend_csv.monetary[rep])
    ours = GammaGammaModel().fit(cdnow_spend_csv.frequency, cdnow_spend_csv.monetary).params.as_dict()
    for name, value in ours.items():
        assert value == pytest.approx(float(reference.params_[{"gamma": "v"}.get(name, name)]), rel=1e-3)


def _reference_pair(lifetimes, model: GammaGammaModel):
    import pandas as pd

    reference = lifetimes.GammaGammaFitter()
    reference.params_ = pd.Series({"p": model.params.p, "q": model.params.q, "v": model.params.gamma})
    return reference


def test_expected_spend_matches_lifetimes(cdnow_spend_csv, lifetimes) -> None:
    data = cdnow_spend_csv
    model = GammaGammaModel().fit(data.frequency, data.monetary)
    reference = _reference_pair(lifetimes, model)
    theirs = np.asarray(reference.conditional_expected_average_profit(data.frequency, data.monetary))
    ours = model.conditional_expected_average_profit(data.frequency, data.monetary)
    assert np.max(np.abs(ours - theirs)) < 1e-4
    # Without repeat purchases the estimate is the population mean p γ / (q - 1).
    p = model.params
    assert ours[data.frequency == 0] == pytest.approx(p.p * p.gamma / (p.q - 1.0))


@pytest.mark.parametrize(
    ("transaction_cls", "fitter_name"), [(BetaGeoModel, "BetaGeoFitter"), (ParetoNBDModel, "ParetoNBDFitter")]
)
def test_customer_lifetime_value_matches_lifetimes(cdnow_spend_csv, lifetimes, transaction_cls, fitter_name) -> None:
    import pandas as pd

    data = cdnow_spend_csv
    spend = GammaGammaModel().fit(data.frequency, data.monetary)
    purchases = transaction_cls().fit(data.frequency, data.recency, data.T)
    ours = spend.customer_lifetime_value(
        purchases,
        data.frequency,
        data.recency,
        data.T,
        data.monetary,
        time_horizon_months=12,
        discount_rate_monthly=0.01,
        time_unit_days=7,
        days_per_month=LIFETIMES_WEEKS_PER_MONTH * 7,
    )
    fitter = getattr(lifetimes, fitter_name)()
    fitter.params_ = pd.Series(purchases.params.as_dict())
    fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time  # lifetimes sets it in fit()
    series = [pd.Series(v) for v in (data.frequency, data.recency, data.T, data.monetary)]
    with warnings.catch_warnings():
        # lifetimes' Pareto/NBD forecast for the month starting now evaluates log(0) at t = 0 and warns;
        # its result there is still 0 purchases. Only the reference call is shielded.
        warnings.filterwarnings("ignore", message="divide by zero encountered in log", category=RuntimeWarning)
        theirs = _reference_pair(lifetimes, spend).customer_lifetime_value(
            fitter, *series, time=12, discount_rate=0.01, freq="W"
        )
    assert np.max(np.abs(ours - np.asarray(theirs))) < 1e-4
    assert np.all(ours >= 0)


def test_undiscounted_value_is_purchases_times_spend(cdnow_spend_csv) -> None:
    data = cdnow_spend_csv
    spend = GammaGammaModel().fit(data.frequency, data.monetary)
    purchases = BetaGeoModel().fit(data.frequency, data.recency, data.T)
    value = spend.customer_lifetime_value(
        purchases,
        data.frequency,
        data.recency,
        data.T,
        data.monetary,
        time_horizon_months=6,
        discount_rate_monthly=0.0,
        time_unit_days=7,
    )
    six_months = 6 * (365.25 / 12) / 7
    expected = purchases.conditional_expected_purchases(six_months, data.frequency, data.recency, data.T)
    expected = expected * spend.conditional_expected_average_profit(data.frequency, data.monetary)
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    discounted = spend.customer_lifetime_value(
        purchases,
        data.frequency,
        data.recency,
        data.T,
        data.monetary,
        time_horizon_months=6,
        discount_rate_monthly=0.05,
        time_unit_days=7,
    )
    assert np.all(discounted < value)


def test_recovers_simulated_parameters() -> None:
    true = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
    frequency = np.random.default_rng(5).integers(0, 12, 24_000).astype(float)
    monetary = GammaGammaModel(true).simulate(frequency, seed=6)
    fitted = GammaGammaModel().fit(frequency, monetary).params
    for name in ("p", "q", "gamma"):
        assert getattr(fitted, name) == pytest.approx(getattr(true, name), rel=0.15), name


# --- bad input -------------------------------------------------------------------------------------------


def test_no_repeat_customers() -> None:
    with pytest.raises(CLVFitError, match="at least 2 customers with repeat purchases") as info:
        GammaGammaModel().fit([0, 0, 0], [0.0, 0.0, 0.0])
    assert info.value.code == "clv_too_few_customers"


def test_one_customer() -> None:
    with pytest.raises(CLVInputError, match="at least 2 customer"):
        GammaGammaModel().fit([3], [10.0])


def test_identical_spend() -> None:
    with pytest.raises(CLVFitError, match="same mean spend") as info:
        GammaGammaModel().fit([1, 2, 3, 0], [20.0, 20.0, 20.0, 0.0])
    assert info.value.code == "clv_no_variation"


@pytest.mark.parametrize(
    ("frequency", "monetary", "pattern"),
    [
        ([1, 2], [np.nan, 3.0], "monetary: .* NaN"),
        ([1, 2], [-4.0, 3.0], "monetary: .* negative"),
        ([1, 2], [0.0, 3.0], "monetary: .* must be positive"),
        ([1, -2], [4.0, 3.0], "frequency: .* negative"),
        ([1, 2, 3], [4.0, 3.0], "differ in length"),
    ],
)
def test_malformed_spend_names_the_field(frequency, monetary, pattern) -> None:
    with pytest.raises(CLVInputError, match=pattern):
        GammaGammaModel().fit(frequency, monetary)


def test_undefined_population_mean() -> None:
    model = GammaGammaModel(GammaGammaParams(p=0.5, q=0.8, gamma=10.0))
    with pytest.raises(CLVFitError, match="expected spend is infinite") as info:
        model.conditional_expected_average_profit([0, 3], [0.0, 10.0])
    assert info.value.code == "clv_undefined_mean"


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"time_horizon_months": 0}, "time_horizon_months"),
        ({"time_horizon_months": 2.5}, "time_horizon_months"),
        ({"discount_rate_monthly": -1.0}, "discount_rate_monthly"),
        ({"time_unit_days": 0.0}, "time_unit_days"),
    ],
)
def test_clv_options_are_checked(options, pattern) -> None:
    spend = GammaGammaModel(GammaGammaParams(p=6.0, q=4.0, gamma=15.0))
    purchases = BetaGeoModel()
    with pytest.raises(CLVInputError, match=pattern):
        spend.customer_lifetime_value(purchases, [1], [2.0], [3.0], [10.0], **options)
