"""The BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

While active, a customer buys at Poisson rate ``λ``; after each repeat purchase they drop out for good with
probability ``p``. Across customers ``λ ~ Gamma(r, α)`` (shape ``r``, rate ``α``) and ``p ~ Beta(a, b)``.

Reference: P. S. Fader, B. G. S. Hardie and K. L. Lee, "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284, 2005 (equations 6, 9 and 10);
P(alive) as in Fader, Hardie & Lee, "Computing P(alive) Using the BG/NBD Model" (2008).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from userloop.models.clv.base import (
    CustomerData,
    FloatArray,
    LogLikAndGrad,
    ModelParams,
    TransactionModel,
    dot,
    validate_customers,
    validate_horizon,
)

__all__ = ["BetaGeoModel", "BetaGeoParams"]


@dataclass(frozen=True)
class BetaGeoParams(ModelParams):
    """BG/NBD parameters: ``r``, ``alpha`` (gamma purchase rate), ``a``, ``b`` (beta dropout probability)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class _Prepared:
    """The data arranged for fast likelihood evaluation.

    Customers without repeat purchases contribute only through ``T``; the others are grouped by ``x`` so the
    gamma-function terms are evaluated once per distinct ``x``.
    """

    t_zero: FloatArray
    x: FloatArray
    t_x: FloatArray
    t_end: FloatArray
    x_unique: FloatArray
    x_counts: FloatArray
    x_index: npt.NDArray[np.intp]

    @classmethod
    def from_data(cls, data: CustomerData) -> _Prepared:
        rep = data.frequency > 0
        x = data.frequency[rep]
        x_unique, x_index, counts = np.unique(x, return_inverse=True, return_counts=True)
        return cls(
            t_zero=data.T[~rep],
            x=x,
            t_x=data.recency[rep],
            t_end=data.T[rep],
            x_unique=x_unique,
            x_counts=counts.astype(np.float64),
            x_index=x_index,
        )


def _loglik_and_grad(theta: FloatArray, d: _Prepared) -> tuple[float, FloatArray]:
    """Total BG/NBD log-likelihood (FHL 2005, eq. 6) and its gradient in (r, α, a, b)."""
    r, alpha, a, b = (float(v) for v in theta)
    xu, cu = d.x_unique, d.x_counts
    # Customers with x = 0: L = (α / (α + T))^r.
    log_a0 = np.log(alpha + d.t_zero)
    n0 = d.t_zero.shape[0]
    ll = n0 * r * np.log(alpha) - r * log_a0.sum()
    g_r = n0 * np.log(alpha) - log_a0.sum()
    g_alpha = r * (n0 / alpha - (1.0 / (alpha + d.t_zero)).sum())
    # Customers with x > 0: terms in x alone, once per distinct x ...
    ll += dot(cu, gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b))
    g_r += dot(cu, digamma(r + xu) - digamma(r) + np.log(alpha))
    g_alpha += cu.sum() * r / alpha
    g_a = dot(cu, digamma(a + b) - digamma(a + b + xu))
    g_b = dot(cu, digamma(b + xu) - digamma(a + b + xu) - digamma(b) + digamma(a + b))
    # ... and log[(α+T)^-(r+x) + a/(b+x-1) (α+t_x)^-(r+x)] per customer, as a log-sum-exp.
    rx = r + d.x
    log_end, log_last = np.log(alpha + d.t_end), np.log(alpha + d.t_x)
    l_alive = -rx * log_end
    l_gone = np.log(a) - np.log(b + d.x - 1.0) - rx * log_last
    ll += np.logaddexp(l_alive, l_gone).sum()
    w = expit(l_gone - l_alive)  # posterior weight of "dropped out after the last purchase"
    g_r -= ((1.0 - w) * log_end + w * log_last).sum()
    g_alpha -= (rx * ((1.0 - w) / (alpha + d.t_end) + w / (alpha + d.t_x))).sum()
    g_a += w.sum() / a
    w_by_x = np.bincount(d.x_index, weights=w, minlength=xu.shape[0])
    g_b -= dot(w_by_x, 1.0 / (b + xu - 1.0))
    return float(ll), np.array([g_r, g_alpha, g_a, g_b], dtype=np.float64)


def _starts(data: CustomerData) -> list[list[float]]:
    rate = max(float(data.frequency.sum()) / max(float(data.T.sum()), 1e-9), 1e-6)
    return [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0 / rate, 1.0, 3.0], [0.5, 0.5 / rate, 0.5, 5.0]]


def _hypergeometric_term(
    p: BetaGeoParams, a: float, x: float | FloatArray, scale: float | FloatArray, t: FloatArray
) -> FloatArray:
    """``(s/(s+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; z)`` with ``s = scale``, ``z = t/(s+t)`` (FHL 2005, eq. 10).

    Evaluated after Euler's transformation ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` as
    ``(s/(s+t))^(a-1) · 2F1(a+b-1-r, a-1; a+b+x-1; z)``, which stays finite for long horizons and many
    purchases, where the original product is ``0 · inf``. ``a`` overrides ``p.a`` (see
    :func:`_a_minus_one_safe`).
    """
    z = t / (scale + t)
    weight = np.exp((a - 1.0) * np.log(scale / (scale + t)))
    hyp = hyp2f1(a + p.b - 1.0 - p.r, a - 1.0, a + p.b + x - 1.0, z)
    return np.asarray(weight * hyp, dtype=np.float64)


def _a_minus_one_safe(fn_of_a: Callable[[float], FloatArray], a: float) -> FloatArray:
    """Evaluate an expression with a ``1 / (a - 1)`` factor; at ``a = 1``, where it is removable, average."""
    if abs(a - 1.0) > 1e-6:
        return fn_of_a(a)
    h = 1e-4
    return 0.5 * (fn_of_a(1.0 - h) + fn_of_a(1.0 + h))


class BetaGeoModel(TransactionModel[BetaGeoParams]):
    """BG/NBD model of Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way".

    Parameters
    ----------
    params : BetaGeoParams, optional
        Known parameters; otherwise call :meth:`fit`.
    """

    model_name = "BG/NBD"
    params_class = BetaGeoParams

    def fit(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Self:  # noqa: N803
        """Estimate ``r, α, a, b`` by maximum likelihood (FHL 2005, eq. 6).

        Parameters
        ----------
        frequency, recency, T : array_like
            Repeat purchases ``x``, time of the last repeat purchase ``t_x`` and time since the first purchase
            ``T`` of each customer, in one time unit (e.g. weeks).

        Returns
        -------
        BetaGeoModel
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
        prepared = _Prepared.from_data(data)
        return lambda theta: _loglik_and_grad(theta, prepared)

    def _starting_points(self, data: CustomerData) -> list[list[float]]:
        return _starts(data)

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """Expected repeat purchases in ``(0, t]`` of a customer picked at random (FHL 2005, eq. 9).

        ``E[X(t)] = (a+b-1)/(a-1) · [1 - (α/(α+t))^r · 2F1(r, b; a+b-1; t/(α+t))]``.

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
            term = _hypergeometric_term(p, a, 0.0, p.alpha, tt)
            return np.asarray((a + p.b - 1.0) / (a - 1.0) * (1.0 - term), dtype=np.float64)

        return np.maximum(_a_minus_one_safe(at, p.a), 0.0) + 0.0  # no -0 or rounding below 0

    def probability_alive(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Probability that each customer is still active at ``T`` (Fader, Hardie & Lee 2008 note).

        ``P(alive) = 1 / (1 + δ(x>0) · a/(b+x-1) · ((α+T)/(α+t_x))^(r+x))``.

        Returns
        -------
        numpy.ndarray
            One probability per customer; 1 for customers without repeat purchases.
        """
        data = validate_customers(frequency, recency, T)
        return expit(-self._log_odds_dead(data))

    def conditional_expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Expected repeat purchases in ``(T, T+t]`` given each customer's history (FHL 2005, eq. 10).

        ``E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1;
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
        alive = expit(-self._log_odds_dead(data))

        def at(a: float) -> FloatArray:
            term = _hypergeometric_term(p, a, x, p.alpha + age, tt)
            return np.asarray((a + p.b + x - 1.0) / (a - 1.0) * (1.0 - term), dtype=np.float64)

        return np.maximum(_a_minus_one_safe(at, p.a) * alive, 0.0) + 0.0

    def simulate(
        self,
        T: npt.ArrayLike,  # noqa: N803
        *,
        seed: int | np.random.Generator | None = None,
    ) -> CustomerData:
        """Draw one customer per entry of ``T`` from the BG/NBD process (FHL 2005, section 2).

        Each customer gets ``λ ~ Gamma(r, α)`` and ``p ~ Beta(a, b)``; repeat purchases arrive at rate ``λ``
        and the customer drops out after the ``D``-th of them, ``D ~ Geometric(p)``. Given ``N`` arrivals in
        ``(0, T]``, the ``x``-th arrival time is ``T`` times a ``Beta(x, N - x + 1)`` draw.

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
        drop = np.clip(rng.beta(prm.a, prm.b, n), 1e-12, 1.0)  # Beta draws can underflow to 0
        arrivals = rng.poisson(lam * age)
        x = np.minimum(rng.geometric(drop), arrivals)
        recency = np.zeros(n)
        rep = x > 0
        recency[rep] = age[rep] * rng.beta(x[rep], arrivals[rep] - x[rep] + 1)
        return CustomerData(x.astype(np.float64), recency, age.astype(np.float64))

    def _log_odds_dead(self, data: CustomerData) -> FloatArray:
        p = self.params
        x = data.frequency
        rep = x > 0
        out = np.full(x.shape, -np.inf)
        xr = x[rep]
        out[rep] = (
            np.log(p.a)
            - np.log(p.b + xr - 1.0)
            + (p.r + xr) * np.log((p.alpha + data.T[rep]) / (p.alpha + data.recency[rep]))
        )
        return out
