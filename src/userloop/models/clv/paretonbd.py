"""The Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

While active, a customer buys at Poisson rate ``λ`` and stays active for an exponential lifetime with rate
``μ``. Across customers ``λ ~ Gamma(r, α)`` and ``μ ~ Gamma(s, β)`` independently.

The likelihood follows P. S. Fader and B. G. S. Hardie, "A Note on Deriving the Pareto/NBD Model and Related
Expressions" (2005): with ``k = r + s + x``,

``L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s + s · I ]``,
``I = ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ = tail(t_x) - tail(T)``,

where ``tail(t) = 2F1(k, s+1; k+1; (α-β)/(α+t)) / (k (α+t)^k)`` for ``α >= β`` and
``tail(t) = 2F1(k, r+x; k+1; (β-α)/(β+t)) / (k (β+t)^k)`` for ``α < β`` (the note's ``A_0`` term).

Gradient: the derivatives in ``α`` and ``β`` are analytic (``∂I/∂α = -(r+x) I`` with the ``α`` exponent raised
by one, likewise for ``β``, again closed-form ``2F1`` terms). The derivatives of ``log I`` in ``r`` and ``s``
would need derivatives of ``2F1`` with respect to its parameters; they are taken instead as a central
difference of the exact ``log I`` with a relative step of ``1e-5`` (error about ``1e-9``), which is the only
numerical part of the gradient.

Reference: D. C. Schmittlein, D. G. Morrison and R. Colombo, "Counting Your Customers: Who Are They and What
Will They Do Next?", *Management Science* 33(1), 1-24, 1987.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from userloop.models.clv.base import (
    CustomerData,
    DistinctCustomers,
    FloatArray,
    LogLikAndGrad,
    ModelParams,
    TransactionModel,
    dot,
    validate_customers,
    validate_horizon,
)

__all__ = ["ParetoNBDModel", "ParetoNBDParams"]

_FD_STEP = 1e-5


@dataclass(frozen=True)
class ParetoNBDParams(ModelParams):
    """Pareto/NBD parameters: ``r``, ``alpha`` (gamma purchase rate), ``s``, ``beta`` (gamma dropout rate)."""

    r: float
    alpha: float
    s: float
    beta: float


def _log_tail(m: FloatArray, n: float | FloatArray, alpha: float, beta: float, t: FloatArray) -> FloatArray:
    """``log ∫_t^∞ (α+τ)^-m (β+τ)^-n dτ`` through Euler's integral for ``2F1`` (Fader & Hardie 2005)."""
    k = m + n - 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + t)
        hyp = hyp2f1(k, n, k + 1.0, z)
        return np.asarray(np.log(hyp) - k * np.log(alpha + t) - np.log(k), dtype=np.float64)
    z = (beta - alpha) / (beta + t)
    hyp = hyp2f1(k, m, k + 1.0, z)
    return np.asarray(np.log(hyp) - k * np.log(beta + t) - np.log(k), dtype=np.float64)


def _log_integral(
    m: FloatArray, n: float | FloatArray, scales: tuple[float, float], t_x: FloatArray, t_end: FloatArray
) -> FloatArray:
    """``log I`` with ``I = tail(t_x) - tail(T)``, on the log scale (no overflow); ``-inf`` where ``t_x = T``.

    ``scales`` is ``(α, β)``.
    """
    alpha, beta = scales
    upper = _log_tail(m, n, alpha, beta, t_x)
    gap = _log_tail(m, n, alpha, beta, t_end) - upper
    out = np.full(np.broadcast(upper, gap).shape, -np.inf)
    ok = gap < 0
    out[ok] = upper[ok] + np.log(-np.expm1(gap[ok]))
    return out


def _log_parts(theta: FloatArray, d: DistinctCustomers) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-row ``log`` of the gamma prefactor, of the alive branch ``E`` and of ``I``."""
    r, alpha, s, beta = (float(v) for v in theta)
    m = r + d.x
    log_pre = gammaln(m) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_e = -m * np.log(alpha + d.t_end) - s * np.log(beta + d.t_end)
    log_i = _log_integral(m, s + 1.0, (alpha, beta), d.t_x, d.t_end)
    return log_pre, log_e, log_i


def _grad_log_integral(theta: FloatArray, d: DistinctCustomers, log_i: FloatArray) -> FloatArray:
    """Rows of ``∂ log I / ∂(r, α, s, β)`` where ``I > 0`` (zeros elsewhere)."""
    r, alpha, s, beta = (float(v) for v in theta)
    ok = np.isfinite(log_i)
    m, t_x, t_end, li = r + d.x[ok], d.t_x[ok], d.t_end[ok], log_i[ok]
    n = s + 1.0
    out = np.zeros((d.x.shape[0], 4))
    d_alpha = -m * np.exp(_log_integral(m + 1.0, n, (alpha, beta), t_x, t_end) - li)
    d_beta = -n * np.exp(_log_integral(m, n + 1.0, (alpha, beta), t_x, t_end) - li)
    hm, hn = _FD_STEP * (1.0 + m), _FD_STEP * (1.0 + n)
    d_m = (
        _log_integral(m + hm, n, (alpha, beta), t_x, t_end) - _log_integral(m - hm, n, (alpha, beta), t_x, t_end)
    ) / (2.0 * hm)
    d_n = (
        _log_integral(m, n + hn, (alpha, beta), t_x, t_end) - _log_integral(m, n - hn, (alpha, beta), t_x, t_end)
    ) / (2.0 * hn)
    out[ok] = np.column_stack([d_m, d_alpha, d_n, d_beta])
    return out


def _loglik_and_grad(theta: FloatArray, d: DistinctCustomers) -> tuple[float, FloatArray]:
    """Total Pareto/NBD log-likelihood (Fader & Hardie 2005 note) and its gradient."""
    r, alpha, s, beta = (float(v) for v in theta)
    log_pre, log_e, log_i = _log_parts(theta, d)
    log_dead = np.log(s) + log_i
    ll = dot(d.weight, log_pre + np.logaddexp(log_e, log_dead))
    w = expit(log_dead - log_e)  # posterior probability of having dropped out before T
    m = r + d.x
    d_i = _grad_log_integral(theta, d, log_i)
    alive = 1.0 - w
    g_r = digamma(m) - digamma(r) + np.log(alpha) - alive * np.log(alpha + d.t_end) + w * d_i[:, 0]
    g_alpha = r / alpha - alive * m / (alpha + d.t_end) + w * d_i[:, 1]
    g_s = np.log(beta) - alive * np.log(beta + d.t_end) + w * (1.0 / s + d_i[:, 2])
    g_beta = s / beta - alive * s / (beta + d.t_end) + w * d_i[:, 3]
    grad = np.array([dot(d.weight, g) for g in (g_r, g_alpha, g_s, g_beta)], dtype=np.float64)
    return float(ll), grad


def _starts(data: CustomerData) -> list[list[float]]:
    rate = max(float(data.frequency.sum()) / max(float(data.T.sum()), 1e-9), 1e-6)
    span = max(float(data.T.mean()), 1e-6)
    return [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0 / rate, 1.0, span], [0.5, 0.5 / rate, 0.5, 2.0 * span]]


def _one_minus_power_over(exponent: float, log_base: FloatArray) -> FloatArray:
    """``(1 - exp(exponent · log_base)) / exponent``, continuous through ``exponent = 0``."""
    if abs(exponent) < 1e-12:
        return np.asarray(0.0 - log_base, dtype=np.float64)
    return np.asarray(np.maximum(-np.expm1(exponent * log_base) / exponent, 0.0) + 0.0, dtype=np.float64)


class ParetoNBDModel(TransactionModel[ParetoNBDParams]):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note).

    Parameters
    ----------
    params : ParetoNBDParams, optional
        Known parameters; otherwise call :meth:`fit`.
    """

    model_name = "Pareto/NBD"
    params_class = ParetoNBDParams
    time_scaled = (1, 3)

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Self:  # noqa: N803
        """Estimate ``r, α, s, β`` by maximum likelihood (Fader & Hardie 2005 note).

        Parameters
        ----------
        frequency, recency, T : array_like
            Repeat purchases ``x``, time of the last repeat purchase ``t_x`` and time since the first purchase
            ``T`` of each customer.

        Returns
        -------
        ParetoNBDModel
            ``self``, with :attr:`params` and :attr:`result` set.

        Raises
        ------
        CLVInputError
            Malformed input (which field, which customer).
        CLVFitError
            Data that cannot identify the model.
        """
        return self._fit_by_likelihood(frequency, recency, T)

    def _likelihood(self, data: CustomerData) -> LogLikAndGrad:
        prepared = DistinctCustomers.from_data(data)
        return lambda theta: _loglik_and_grad(theta, prepared)

    def _starting_points(self, data: CustomerData) -> list[list[float]]:
        return _starts(data)

    def probability_alive(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Probability that each customer is still active at ``T`` (Fader & Hardie 2005 note).

        ``P(alive) = (α+T)^-(r+x) (β+T)^-s / [(α+T)^-(r+x) (β+T)^-s + s · I]``.

        Returns
        -------
        numpy.ndarray
        """
        data = validate_customers(frequency, recency, T)
        p = self.params
        m = p.r + data.frequency
        log_e = -m * np.log(p.alpha + data.T) - p.s * np.log(p.beta + data.T)
        log_i = _log_integral(m, p.s + 1.0, (p.alpha, p.beta), data.recency, data.T)
        return expit(log_e - np.log(p.s) - log_i)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """Expected purchases in ``(0, t]`` of a randomly chosen customer (Schmittlein, Morrison & Colombo 1987).

        ``E[X(t)] = r β / (α (s-1)) · [1 - (β/(β+t))^(s-1)]``.
        """
        p = self.params
        tt = validate_horizon(t)
        return p.r * p.beta / p.alpha * _one_minus_power_over(p.s - 1.0, np.log(p.beta / (p.beta + tt)))

    def conditional_expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Expected purchases in ``(T, T+t]`` given each customer's history (F&H 2005 note).

        ``E[Y(t) | x, t_x, T] = (r+x)(β+T) / ((α+T)(s-1)) · [1 - ((β+T)/(β+T+t))^(s-1)] · P(alive)``.

        Parameters
        ----------
        t : float or array_like
            Length of the forecast window (broadcast against the customers).
        frequency, recency, T : array_like
            Each customer's ``x``, ``t_x`` and ``T``.

        Returns
        -------
        numpy.ndarray
        """
        data = validate_customers(frequency, recency, T)
        p = self.params
        tt = validate_horizon(t)
        age = data.T
        rate = (p.r + data.frequency) * (p.beta + age) / (p.alpha + age)
        horizon = _one_minus_power_over(p.s - 1.0, np.log((p.beta + age) / (p.beta + age + tt)))
        return rate * horizon * self.probability_alive(data.frequency, data.recency, data.T)
