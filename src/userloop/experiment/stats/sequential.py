"""Always-valid confidence sequences: intervals that may be read every day ("peeking") and still cover the true
effect with probability ``1 − α`` simultaneously at every look.

The boundary is the two-sided normal mixture of Howard, Ramdas, McAuliffe & Sekhon ("Time-uniform,
nonparametric, nonasymptotic confidence sequences", *Ann. Statist.* 49(2), 2021, §3.2 and Proposition 5), in the
asymptotic form of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas ("Time-uniform central limit theory and
asymptotic confidence sequences", arXiv:2103.06476, eq. 9): after ``n`` people with per-person variance ``σ²`` of
the estimate (``σ² = n se²``), the interval is ``estimate ± σ sqrt( 2 (n ρ² + 1) / (n² ρ²) · log( sqrt(n ρ² + 1)
/ α ) )``. The mixture's ``ρ`` is tuned so that the interval is narrowest at ``n = N*`` (the expected sample
size; ibid. eq. 161): ``ρ² = (−2 log α + log(−2 log α + 1)) / N*``. The always-valid p-value is ``1/E`` (capped at
1) for the mixture e-value ``E = exp(ρ² S² / (2 (n ρ² + 1))) / sqrt(n ρ² + 1)``, ``S² = n² (estimate/σ)²``
(ibid. eq. 155). GrowthBook uses this boundary with ``N* = 5000`` by default (``SequentialTwoSidedTTest``,
``gbstats/frequentist/tests.py``); the numbers agree with its engine to 1e-6.

The price of peeking is width: at ``n = N*`` the interval is about 1.55× the fixed-horizon one at α = 0.05
(1.72× at ``N*/5``, 1.60× at ``4 N*``).
"""

from __future__ import annotations

import math

from userloop.core.errors import ValidationError
from userloop.experiment.stats.effect import Effect
from userloop.experiment.stats.frequentist import Interval, check_alpha

#: GrowthBook's default expected sample size ``N*`` at which the sequence is tuned to be narrowest.
DEFAULT_TUNING = 5000.0


def mixture_rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """The normal mixture's ``ρ`` that makes the two-sided boundary narrowest at ``n = tuning``
    (Waudby-Smith et al., eq. 161)."""
    log_term = -2 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1)) / tuning)


def halfwidth_factor(n: float, alpha: float, rho: float) -> float:
    """``sqrt(n) × sqrt(2 (n ρ² + 1) log(sqrt(n ρ² + 1)/α) / (n ρ)²)``: the half-width in standard errors of the
    estimate after ``n`` people (the fixed-horizon analogue is ``z_{1−α/2}``)."""
    grown = n * rho**2 + 1
    return math.sqrt(n) * math.sqrt(2 * grown * math.log(math.sqrt(grown) / alpha) / (n * rho) ** 2)


def confidence_sequence(effect: Effect, alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> Interval:
    """The always-valid interval and p-value of ``effect`` at this look.

    >>> from userloop.stats import Moments
    >>> from userloop.experiment.stats.lift import lift
    >>> a = Moments(3000, 1396.87, 52377.9767)
    >>> b = Moments(3461, 2422.7, 134698.29)
    >>> r = confidence_sequence(lift(a, b), tuning=1000)
    >>> (round(r.low, 5), round(r.high, 5), r.p_value)
    (-0.55844, 1.56516, 1.0)
    """
    check_alpha(alpha)
    if not tuning > 0:
        raise ValidationError(f"the sequential tuning N* must be positive, not {tuning}", field="tuning")
    if effect.code is not None:
        return Interval.neutral(effect)
    rho = mixture_rho(alpha, tuning)
    n = effect.n
    half = effect.se * halfwidth_factor(n, alpha, rho)
    grown = n * rho**2 + 1
    s2 = n * (effect.estimate / effect.se) ** 2  # n² (estimate/σ)², σ² = n se²
    log_e = rho**2 * s2 / (2 * grown) - 0.5 * math.log(grown)
    p = 1.0 if log_e <= 0 else math.exp(-log_e)
    return Interval(effect.estimate, effect.estimate - half, effect.estimate + half, p, effect.se, effect.scale)
