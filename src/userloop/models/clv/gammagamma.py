"""The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013).

A customer's transaction values are gamma distributed with shape ``p`` and rate ``ν``; across customers
``ν ~ Gamma(q, γ)``. The model is fitted on the mean repeat-transaction value ``m`` of customers with
``x > 0`` repeat transactions, and assumes spend is independent of the transaction process.

Reference: P. S. Fader and B. G. S. Hardie, "The Gamma-Gamma Model of Monetary Value", February 2013. The
discounted sum of :meth:`GammaGammaModel.customer_lifetime_value` follows Fader, Hardie & Lee, "RFM and CLV:
Using Iso-Value Curves for Customer Base Analysis", *Journal of Marketing Research* 42(4), 2005.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from userloop.models.clv.base import (
    CLVFitError,
    CLVInputError,
    CLVModel,
    FitResult,
    FloatArray,
    ModelParams,
    SpendData,
    dot,
    maximise_log_likelihood,
    scale_of,
    validate_customers,
    validate_spend,
)

__all__ = ["GammaGammaModel", "GammaGammaParams", "TransactionModel"]

DAYS_PER_MONTH = 365.25 / 12


class TransactionModel(Protocol):
    """Anything that forecasts a customer's purchases, e.g. BG/NBD or Pareto/NBD."""

    def conditional_expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray: ...


@dataclass(frozen=True)
class GammaGammaParams(ModelParams):
    """Gamma-Gamma parameters: ``p`` (shape of spend), ``q`` and ``gamma`` (gamma prior on its rate)."""

    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class _Prepared:
    """Repeat customers, with the parts of the likelihood that do not depend on the parameters summed once."""

    n: int
    x: FloatArray
    xm: FloatArray
    x_unique: FloatArray
    x_counts: FloatArray
    sum_x_log_m: float
    sum_log_m: float
    x_log_x_by_x: FloatArray

    @classmethod
    def from_data(cls, data: SpendData) -> _Prepared:
        rep = data.frequency > 0
        x, m = data.frequency[rep], data.monetary[rep]
        xu, counts = np.unique(x, return_counts=True)
        log_m = np.log(m)
        return cls(
            n=int(x.shape[0]),
            x=x,
            xm=x * m,
            x_unique=xu,
            x_counts=counts.astype(np.float64),
            sum_x_log_m=dot(x, log_m),
            sum_log_m=float(log_m.sum()),
            x_log_x_by_x=xu * np.log(xu),
        )


def _loglik_and_grad(theta: FloatArray, d: _Prepared) -> tuple[float, FloatArray]:
    """Total Gamma-Gamma log-likelihood of the mean spends (Fader & Hardie 2013) and its gradient."""
    p, q, gamma = (float(v) for v in theta)
    xu, cu = d.x_unique, d.x_counts
    px_u = p * xu
    log_den = np.log(gamma + d.xm)
    ll = (
        dot(cu, gammaln(px_u + q) - gammaln(px_u))
        - d.n * gammaln(q)
        + d.n * q * np.log(gamma)
        + p * d.sum_x_log_m
        - d.sum_log_m
        + p * dot(cu, d.x_log_x_by_x)
        - dot(p * d.x + q, log_den)
    )
    g_p = (
        dot(cu, xu * (digamma(px_u + q) - digamma(px_u))) + d.sum_x_log_m + dot(cu, d.x_log_x_by_x) - dot(d.x, log_den)
    )
    g_q = dot(cu, digamma(px_u + q)) - d.n * digamma(q) + d.n * np.log(gamma) - log_den.sum()
    g_gamma = d.n * q / gamma - ((p * d.x + q) / (gamma + d.xm)).sum()
    return float(ll), np.array([g_p, g_q, g_gamma], dtype=np.float64)


def _require_spend_variation(data: SpendData) -> None:
    rep = data.frequency > 0
    n_rep = int(rep.sum())
    if n_rep < 2:
        raise CLVFitError(
            f"Gamma-Gamma: needs at least 2 customers with repeat purchases (frequency > 0), got {n_rep}",
            code="clv_too_few_customers",
        )
    money = data.monetary[rep]
    if np.all(money == money[0]):
        raise CLVFitError(
            "Gamma-Gamma: every repeat customer has the same mean spend, so the spread of spend across "
            "customers cannot be estimated; check that monetary holds each customer's mean repeat spend",
            code="clv_no_variation",
        )


class GammaGammaModel(CLVModel[GammaGammaParams]):
    """Gamma-Gamma spend model of Fader & Hardie (2013).

    Parameters
    ----------
    params : GammaGammaParams, optional
        Known parameters; otherwise call :meth:`fit`.
    """

    model_name = "Gamma-Gamma"

    def fit(self, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> Self:
        """Estimate ``p, q, γ`` by maximum likelihood on customers with ``frequency > 0`` (F&H 2013).

        Parameters
        ----------
        frequency : array_like
            Repeat purchases ``x`` per customer; customers with 0 are skipped.
        monetary : array_like
            Mean value ``m`` of each customer's repeat purchases.

        Returns
        -------
        GammaGammaModel
            ``self``, with :attr:`params` and :attr:`result` set.

        Raises
        ------
        CLVInputError
            Malformed input (which field, which customer).
        CLVFitError
            Fewer than two repeat customers, or no variation in their spend.
        """
        data = validate_spend(frequency, monetary, min_customers=2)
        _require_spend_variation(data)
        # Fit in units of the mean spend (γ is a money scale); each density then changes by a factor 1/scale.
        scale = scale_of(data.monetary[data.frequency > 0])
        prepared = _Prepared.from_data(SpendData(data.frequency, data.monetary / scale))
        values, ll, iterations, tried = maximise_log_likelihood(
            lambda theta: _loglik_and_grad(theta, prepared),
            [[1.0, 1.0, 1.0], [2.0, 3.0, 2.0], [5.0, 5.0, 1.0]],
            names=GammaGammaParams.names(),
            n_customers=prepared.n,
            model_name=self.model_name,
        )
        values[2] *= scale
        ll -= prepared.n * float(np.log(scale))
        self._store(FitResult(GammaGammaParams.from_array(values), ll, prepared.n, iterations, tried))
        return self

    def log_likelihood(
        self, frequency: npt.ArrayLike, monetary: npt.ArrayLike, params: GammaGammaParams | None = None
    ) -> float:
        """Total log-likelihood (F&H 2013) of the repeat customers' mean spends."""
        data = validate_spend(frequency, monetary)
        theta = (params or self.params).as_array()
        return _loglik_and_grad(theta, _Prepared.from_data(data))[0]

    def log_likelihood_gradient(
        self, frequency: npt.ArrayLike, monetary: npt.ArrayLike, params: GammaGammaParams | None = None
    ) -> FloatArray:
        """Analytic gradient of :meth:`log_likelihood` with respect to ``(p, q, γ)``."""
        data = validate_spend(frequency, monetary)
        theta = (params or self.params).as_array()
        return _loglik_and_grad(theta, _Prepared.from_data(data))[1]

    def conditional_expected_average_profit(self, frequency: npt.ArrayLike, monetary: npt.ArrayLike) -> FloatArray:
        """Expected mean transaction value of each customer given ``x`` and ``m`` (F&H 2013).

        ``E[M | p, q, γ, m, x] = p (γ + x m) / (p x + q - 1)``, a weighted mean of the population mean
        ``p γ / (q - 1)`` and the customer's own mean ``m``; for ``x = 0`` it is the population mean.

        Raises
        ------
        CLVFitError
            ``clv_undefined_mean`` when ``p x + q <= 1`` for some customer (the expectation does not exist).
        """
        data = validate_spend(frequency, monetary)
        prm = self.params
        x = data.frequency
        money = np.where(x > 0, data.monetary, 0.0)
        den = prm.p * x + prm.q - 1.0
        if np.any(den <= 0):
            raise CLVFitError(
                f"Gamma-Gamma: q = {prm.q:.4g} <= 1 - p x for some customers, so their expected spend is "
                "infinite; this usually means too few repeat customers to estimate q",
                code="clv_undefined_mean",
            )
        return np.asarray(prm.p * (prm.gamma + x * money) / den, dtype=np.float64)

    def simulate(self, frequency: npt.ArrayLike, *, seed: int | np.random.Generator | None = None) -> FloatArray:
        """Draw each customer's mean repeat-purchase value from the Gamma-Gamma model (F&H 2013).

        ``ν ~ Gamma(q, γ)`` per customer; the mean of ``x`` values ``Gamma(p, ν)`` is ``Gamma(p x, x ν)``.
        Customers with ``frequency`` 0 get 0.
        """
        prm = self.params
        data = validate_spend(frequency, np.ones_like(np.asarray(frequency, dtype=np.float64)))
        rng = np.random.default_rng(seed)
        x = data.frequency
        rate = np.asarray(rng.gamma(prm.q, 1.0 / prm.gamma, x.shape[0]), dtype=np.float64)
        out = np.zeros_like(x)
        rep = x > 0
        out[rep] = rng.gamma(prm.p * x[rep], 1.0 / (x[rep] * rate[rep]))
        return out

    def customer_lifetime_value(
        self,
        transaction_model: TransactionModel,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
        monetary: npt.ArrayLike,
        time_horizon_months: int = 12,
        discount_rate_monthly: float = 0.01,
        time_unit_days: float = 7.0,
        *,
        days_per_month: float = DAYS_PER_MONTH,
    ) -> FloatArray:
        """Discounted expected value of each customer over the next months (Fader, Hardie & Lee 2005, JMR).

        ``CLV = Σ_{k=1..K} (E[Y(k·u)] - E[Y((k-1)·u)]) · E[M] / (1 + d)^k`` where ``u`` is one month in the
        transaction model's time unit, ``E[Y]`` its conditional expected purchases and ``E[M]`` the
        :meth:`conditional_expected_average_profit`.

        Parameters
        ----------
        transaction_model : TransactionModel
            A fitted BG/NBD or Pareto/NBD model.
        frequency, recency, T : array_like
            Each customer's ``x``, ``t_x`` and ``T`` in the transaction model's time unit.
        monetary : array_like
            Each customer's mean repeat-purchase value.
        time_horizon_months : int
            Months ``K`` to sum over.
        discount_rate_monthly : float
            Monthly discount rate ``d`` (0.01 is 1 % a month).
        time_unit_days : float
            Length in days of the transaction model's time unit (7 for weeks).
        days_per_month : float
            Length of a month in days (default 365.25/12).

        Returns
        -------
        numpy.ndarray
            One value per customer, in the currency of ``monetary``.
        """
        _check_clv_options(time_horizon_months, discount_rate_monthly, time_unit_days, days_per_month)
        data = validate_customers(frequency, recency, T)
        spend = self.conditional_expected_average_profit(data.frequency, monetary)
        step = days_per_month / time_unit_days
        value = np.zeros(data.n_customers)
        previous = np.zeros(data.n_customers)
        for month in range(1, time_horizon_months + 1):
            cumulative = transaction_model.conditional_expected_purchases(
                month * step, data.frequency, data.recency, data.T
            )
            value += (cumulative - previous) * spend / (1.0 + discount_rate_monthly) ** month
            previous = cumulative
        return value


def _check_clv_options(months: int, rate: float, unit_days: float, month_days: float) -> None:
    if isinstance(months, bool) or not isinstance(months, int | np.integer) or months < 1:
        raise CLVInputError(f"time_horizon_months must be a whole number >= 1, got {months!r}")
    if not (np.isfinite(rate) and rate > -1):
        raise CLVInputError(f"discount_rate_monthly must be finite and > -1, got {rate!r}")
    for name, val in (("time_unit_days", unit_days), ("days_per_month", month_days)):
        if not (np.isfinite(val) and val > 0):
            raise CLVInputError(f"{name} must be finite and > 0, got {val!r}")
