"""The MBG/NBD model of repeat purchasing (Batislam, Denizel & Filiztekin 2007).

The modified BG/NBD: while active, a customer buys at Poisson rate ``λ``; at time 0 (the first purchase) and
after each repeat purchase they drop out for good with probability ``p``. Across customers
``λ ~ Gamma(r, α)`` (shape ``r``, rate ``α``) and ``p ~ Beta(a, b)``. Unlike the BG/NBD, a customer with no
repeat purchase may already be gone, so P(alive) of a one-time buyer falls below 1 as time passes.

Per customer with ``x`` repeat purchases, the last at ``t_x``, observed for ``T`` (all derived in the paper by
integrating ``λ^x (1-p)^x [(1-p) e^(-λT) + p e^(-λ t_x)]`` over the two mixing distributions):

``L = Γ(r+x) α^r / Γ(r) · B(a, b+x+1) / B(a, b) · [(α+T)^-(r+x) + a/(b+x) · (α+t_x)^-(r+x)]``,
``P(alive) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x))``,
``E[X(t)] = b/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b+1; a+b; t/(α+t))]``,
``E[Y(t) | x, t_x, T] = (a+b+x)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+1; a+b+x; t/(α+T+t))]
· P(alive)``.

Reference: E. P. Batislam, M. Denizel and A. Filiztekin, "Empirical validation and comparison of models for
customer base analysis", *International Journal of Research in Marketing* 24(3), 201-209, 2007.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

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
from userloop.models.clv.bgnbd import _a_minus_one_safe

__all__ = ["ModifiedBetaGeoModel", "ModifiedBetaGeoParams"]


@dataclass(frozen=True)
class ModifiedBetaGeoParams(ModelParams):
    """MBG/NBD parameters: ``r``, ``alpha`` (gamma purchase rate), ``a``, ``b`` (beta dropout probability)."""

    r: float
    alpha: float
    a: float
    b: float


def _log_branches(theta: FloatArray, x: FloatArray, t_x: FloatArray, t_end: FloatArray) -> tuple[FloatArray, ...]:
    """``log`` of the alive branch ``(α+T)^-(r+x)`` and of the gone branch ``a/(b+x) (α+t_x)^-(r+x)``."""
    r, alpha, a, b = (float(v) for v in theta)
    rx = r + x
    l_alive = -rx * np.log(alpha + t_end)
    l_gone = np.log(a) - np.log(b + x) - rx * np.log(alpha + t_x)
    return l_alive, l_gone


def _loglik_and_grad(theta: FloatArray, d: DistinctCustomers) -> tuple[float, FloatArray]:
    """Total MBG/NBD log-likelihood (Batislam et al. 2007) and its analytic gradient in (r, α, a, b)."""
    r, alpha, a, b = (float(v) for v in theta)
    x, wt = d.x, d.weight
    rx = r + x
    l_alive, l_gone = _log_branches(theta, x, d.t_x, d.t_end)
    per_row = gammaln(rx) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x + 1.0) - betaln(a, b)
    ll = dot(wt, per_row + np.logaddexp(l_alive, l_gone))
    w = expit(l_gone - l_alive)  # posterior probability of having dropped out (at t_x)
    log_end, log_last = np.log(alpha + d.t_end), np.log(alpha + d.t_x)
    g_r = digamma(rx) - digamma(r) + np.log(alpha) - (1.0 - w) * log_end - w * log_last
    g_alpha = r / alpha - rx * ((1.0 - w) / (alpha + d.t_end) + w / (alpha + d.t_x))
    g_a = digamma(a + b) - digamma(a + b + x + 1.0) + w / a
    g_b = digamma(b + x + 1.0) - digamma(a + b + x + 1.0) - digamma(b) + digamma(a + b) - w / (b + x)
    grad = np.array([dot(wt, g) for g in (g_r, g_alpha, g_a, g_b)], dtype=np.float64)
    return float(ll), grad


def _starts(data: CustomerData) -> list[list[float]]:
    rate = max(float(data.frequency.sum()) / max(float(data.T.sum()), 1e-9), 1e-6)
    return [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0 / rate, 1.0, 3.0], [0.5, 0.5 / rate, 0.5, 5.0]]


def _horizon_term(
    a: float, b: float, r: float, x: float | FloatArray, scale: float | FloatArray, t: FloatArray
) -> FloatArray:
    """``(s/(s+t))^(r+x) · 2F1(r+x, b+x+1; a+b+x; t/(s+t))`` with ``s = scale``.

    Evaluated after Euler's transformation as ``(s/(s+t))^(a-1) · 2F1(a+b-r, a-1; a+b+x; t/(s+t))``, which
    stays finite for long horizons and many purchases (as in :mod:`userloop.models.clv.bgnbd`).
    """
    z = t / (scale + t)
    weight = np.exp((a - 1.0) * np.log(scale / (scale + t)))
    return np.asarray(weight * hyp2f1(a + b - r, a - 1.0, a + b + x, z), dtype=np.float64)


class ModifiedBetaGeoModel(TransactionModel[ModifiedBetaGeoParams]):
    """MBG/NBD model of Batislam, Denizel & Filiztekin (2007), the BG/NBD with a dropout at the first purchase.

    Parameters
    ----------
    params : ModifiedBetaGeoParams, optional
        Known parameters; otherwise call :meth:`fit`.
    """

    model_name = "MBG/NBD"
    params_class = ModifiedBetaGeoParams

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Self:  # noqa: N803
        """Estimate ``r, α, a, b`` by maximum likelihood (Batislam et al. 2007).

        Parameters
        ----------
        frequency, recency, T : array_like
            Repeat purchases ``x``, time of the last repeat purchase ``t_x`` and time since the first purchase
            ``T`` of each customer, in one time unit.

        Returns
        -------
        ModifiedBetaGeoModel
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
        """Probability that each customer is still active at ``T`` (Batislam et al. 2007).

        ``P(alive) = 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x))``; below 1 for customers without repeat
        purchases too.

        Returns
        -------
        numpy.ndarray
        """
        data = validate_customers(frequency, recency, T)
        l_alive, l_gone = _log_branches(self.params.as_array(), data.frequency, data.recency, data.T)
        return np.asarray(expit(l_alive - l_gone), dtype=np.float64)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """Expected repeat purchases in ``(0, t]`` of a customer picked at random (Batislam et al. 2007).

        ``E[X(t)] = b/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b+1; a+b; t/(α+t))]``.

        Parameters
        ----------
        t : array_like
            Time since the first purchase, ``>= 0``, in the unit the model was fitted in.

        Returns
        -------
        numpy.ndarray
        """
        p = self.params
        tt = validate_horizon(t)

        def at(a: float) -> FloatArray:
            term = _horizon_term(a, p.b, p.r, 0.0, p.alpha, tt)
            return np.asarray(p.b / (a - 1.0) * (1.0 - term), dtype=np.float64)

        return np.maximum(_a_minus_one_safe(at, p.a), 0.0) + 0.0

    def conditional_expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Expected repeat purchases in ``(T, T+t]`` given each customer's history (Batislam et al. 2007).

        ``E[Y(t) | x, t_x, T] = (a+b+x)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x+1; a+b+x;
        t/(α+T+t))] · P(alive | x, t_x, T)``.

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
        x, age = data.frequency, data.T
        alive = self.probability_alive(data.frequency, data.recency, data.T)

        def at(a: float) -> FloatArray:
            term = _horizon_term(a, p.b, p.r, x, p.alpha + age, tt)
            return np.asarray((a + p.b + x) / (a - 1.0) * (1.0 - term), dtype=np.float64)

        return np.maximum(_a_minus_one_safe(at, p.a) * alive, 0.0) + 0.0

    def simulate(
        self,
        T: npt.ArrayLike,  # noqa: N803
        *,
        seed: int | np.random.Generator | None = None,
    ) -> CustomerData:
        """Draw one customer per entry of ``T`` from the MBG/NBD process (Batislam et al. 2007).

        Each customer gets ``λ ~ Gamma(r, α)`` and ``p ~ Beta(a, b)``, drops out at the first purchase with
        probability ``p``, and otherwise after the ``D``-th repeat purchase, ``D ~ Geometric(p)``; repeat
        purchases arrive at rate ``λ`` while active.

        Returns
        -------
        CustomerData
            The simulated ``frequency``, ``recency`` and ``T``.
        """
        prm = self.params
        age = validate_horizon(T, name="T").reshape(-1)
        rng = np.random.default_rng(seed)
        n = age.shape[0]
        lam = rng.gamma(prm.r, 1.0 / prm.alpha, n)
        drop = np.clip(rng.beta(prm.a, prm.b, n), 1e-12, 1.0)
        gone_at_start = rng.random(n) < drop
        arrivals = rng.poisson(lam * age)
        x = np.where(gone_at_start, 0, np.minimum(rng.geometric(drop), arrivals))
        recency = np.zeros(n)
        rep = x > 0
        recency[rep] = age[rep] * rng.beta(x[rep], arrivals[rep] - x[rep] + 1)
        return CustomerData(x.astype(np.float64), recency, age.astype(np.float64))
