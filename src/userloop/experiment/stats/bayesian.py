"""Bayesian read of an effect: chance to win, expected loss and a credible interval, from a Gaussian posterior.

The likelihood of the effect is the normal approximation ``N(estimate, se²)`` of
:class:`~userloop.experiment.stats.effect.Effect` (relative or absolute); with a Gaussian prior ``N(m, v)`` the
posterior is Gaussian with precision ``1/se² + 1/v`` and mean ``(estimate/se² + m/v) / precision`` (conjugate
normal updating, Gelman et al., *Bayesian Data Analysis*, 3rd ed. 2013, §2.5); an improper flat prior leaves the
likelihood as it is. This is the model of GrowthBook's Bayesian engine (``EffectBayesianABTest``,
``gbstats/bayesian/tests.py``; Stevens & Sahai, "GrowthBook's Bayesian engine", 2023), whose numbers it
reproduces.

- Chance to win: ``P(effect > 0) = Φ(μ/σ)`` for the posterior ``N(μ, σ²)``.
- Expected loss (risk; Stucchio, "Bayesian A/B Testing at VWO", 2015): choosing control loses
  ``E[max(effect, 0)] = μ Φ(μ/σ) + σ φ(μ/σ)``; choosing the treatment loses
  ``E[max(−effect, 0)] = −μ Φ(−μ/σ) + σ φ(μ/σ)`` (the partial expectations of a normal variable).
- A prior on the other scale is converted by the control's mean: a relative prior ``N(m, v)`` is
  ``N(m |μ_c|, v μ_c²)`` on the absolute scale, and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from userloop.core.errors import ValidationError
from userloop.experiment.stats.effect import Effect, Scale
from userloop.experiment.stats.frequentist import check_alpha, z_interval


@dataclass(frozen=True)
class GaussianPrior:
    """A prior ``N(mean, variance)`` on the effect measured on ``scale``; ``proper=False`` is the flat prior."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False
    scale: Scale = "relative"

    def __post_init__(self) -> None:
        if not self.variance > 0:
            raise ValidationError(f"a prior's variance must be positive, not {self.variance}", field="variance")


FLAT = GaussianPrior()


@dataclass(frozen=True)
class Posterior:
    """The posterior ``N(expected, sd²)`` of the effect, its credible interval ``low``–``high``,
    ``chance_to_win`` = P(effect > 0), and the expected loss of choosing control (``loss_control``) or the
    treatment (``loss_treatment``). ``code`` names why it is neutral (chance 0.5, everything else 0)."""

    expected: float
    sd: float
    low: float
    high: float
    chance_to_win: float
    loss_control: float
    loss_treatment: float
    scale: Scale
    code: str | None = None

    @classmethod
    def neutral(cls, code: str | None, scale: Scale) -> Posterior:
        return cls(0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, scale, code)


def posterior(effect: Effect, prior: GaussianPrior = FLAT, alpha: float = 0.05) -> Posterior:
    """The Gaussian posterior of ``effect`` under ``prior`` with its ``1 − alpha`` credible interval.

    >>> from userloop.stats import Moments
    >>> from userloop.experiment.stats.lift import lift
    >>> p = posterior(lift(Moments(10, 100.0, 1002.25), Moments(10, 105.0, 1111.5)))
    >>> (round(p.chance_to_win, 5), round(p.loss_control, 5), round(p.loss_treatment, 5))
    (0.91923, 0.05131, 0.00131)
    """
    check_alpha(alpha)
    if effect.code is not None:
        return Posterior.neutral(effect.code, effect.scale)
    scaled = _on_scale(prior, effect)
    if scaled is None:
        return Posterior.neutral("zero_baseline", effect.scale)
    precision = 1 / effect.se**2 + (1 / scaled.variance if scaled.proper else 0.0)
    mean = effect.estimate / effect.se**2 + (scaled.mean / scaled.variance if scaled.proper else 0.0)
    mu, sd = mean / precision, math.sqrt(1 / precision)
    return _summarise(mu, sd, alpha, effect.scale)


def expected_losses(mu: float, sd: float) -> tuple[float, float]:
    """``(E[max(X, 0)], E[max(−X, 0)])`` for ``X ~ N(mu, sd²)``: the losses of choosing control and treatment."""
    from scipy.stats import norm

    z = mu / sd
    density = sd * float(norm.pdf(z))
    return mu * float(norm.cdf(z)) + density, -mu * float(norm.cdf(-z)) + density


def _summarise(mu: float, sd: float, alpha: float, scale: Scale) -> Posterior:
    from scipy.stats import norm

    low, high = z_interval(mu, sd, alpha)
    loss_control, loss_treatment = expected_losses(mu, sd)
    return Posterior(mu, sd, low, high, float(norm.sf(0.0, mu, sd)), loss_control, loss_treatment, scale)


def _on_scale(prior: GaussianPrior, effect: Effect) -> GaussianPrior | None:
    """``prior`` on the effect's scale (``None`` when a proper prior needs a control mean of 0 to convert)."""
    if not prior.proper or prior.scale == effect.scale:
        return prior
    base = effect.baseline
    if not base or not math.isfinite(base):
        return None
    factor = abs(base) if effect.scale == "absolute" else 1 / abs(base)
    return GaussianPrior(prior.mean * factor, prior.variance * factor**2, True, effect.scale)
