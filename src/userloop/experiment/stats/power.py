"""Before launch: power, minimum detectable effect, required sample size and duration for a chosen split.

The effect is read as :func:`~userloop.experiment.stats.frequentist.t_test` will read it, with the normal
approximation: a two-sided (or one-sided) z-test of an effect ``δ`` whose standard error is

- absolute: ``se² = σ²/n_t + σ²/n_c``;
- relative, by the delta method with the treatment's mean ``μ (1 + δ)`` and the control's variance
  ``σ²`` in both arms: ``se² = σ²/(n_t μ²) + (1 + δ)² σ²/(n_c μ²)`` (GrowthBook's power calculator,
  ``packages/shared/src/power``; its published figures are reproduced in the tests).

Power is ``P(reject) = 1 − Φ(z* − δ/se) + Φ(−z* − δ/se)`` for the two-sided test (Chow, Shao & Wang, *Sample Size
Calculations in Clinical Research*, 2nd ed. 2008, §3.2.1, counting both tails). With sequential testing, the
confidence sequence's half-width replaces ``z* se``: the standard error is inflated by
``halfwidth_factor / z*`` (:mod:`~userloop.experiment.stats.sequential`), as GrowthBook does.

The minimum detectable effect and the sample size solve ``power = target`` by bracketing and Brent's method.
``n`` always counts the people of the whole experiment; the arms compared hold ``control_share`` and
``treatment_share`` of them (with more arms, the shares sum to less than 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from userloop.core.errors import ValidationError
from userloop.experiment.stats.arms import Proportion
from userloop.experiment.stats.effect import Scale
from userloop.experiment.stats.sequential import halfwidth_factor, mixture_rho
from userloop.stats import Moments

#: The largest experiment :func:`sample_size` looks at (people); beyond it, no experiment is practical.
MAX_PEOPLE = 10**12


@dataclass(frozen=True)
class Baseline:
    """The goal metric before launch: its per-person ``mean`` and ``variance`` (from history)."""

    mean: float
    variance: float

    @classmethod
    def of(cls, history: Proportion | Moments) -> Baseline:
        return cls(history.mean, history.variance)


@dataclass(frozen=True, kw_only=True)
class Design:
    """How the experiment is read: level ``alpha``, target ``power``, the shares of people in the control and
    the treatment arm, the ``scale`` of the effect, two-sided or not, and ``sequential_tuning`` (``N*`` of the
    confidence sequence) when results are read while it runs (``None``: one read at the end)."""

    alpha: float = 0.05
    power: float = 0.8
    control_share: float = 0.5
    treatment_share: float = 0.5
    scale: Scale = "relative"
    two_sided: bool = True
    sequential_tuning: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < self.power < 1:
            raise ValidationError(
                f"alpha and power must satisfy 0 < alpha < power < 1, not {self.alpha} and {self.power}", field="alpha"
            )
        shares = (self.control_share, self.treatment_share)
        if min(shares) <= 0 or sum(shares) > 1 + 1e-9:
            raise ValidationError(
                f"the control and treatment shares must be positive and sum to at most 1, not {shares}",
                field="control_share",
            )
        if self.sequential_tuning is not None and self.sequential_tuning <= 0:
            raise ValidationError(
                f"the sequential tuning N* must be positive, not {self.sequential_tuning}", field="sequential_tuning"
            )

    @property
    def fewest(self) -> float:
        """The fewest people in the experiment that put two in each compared arm."""
        return 2.0 / min(self.control_share, self.treatment_share)


@dataclass(frozen=True)
class Plan:
    """A plan's answer: the ``effect`` it is powered for (given, or the minimum detectable one), the people
    ``n`` of the whole experiment, the ``days`` they take to arrive, and the ``power`` reached. ``code`` (a
    :data:`userloop.stats.messages.DEGENERATE` code) says why there is no answer; the numbers are then 0."""

    effect: float
    n: int
    days: int
    power: float
    code: str | None = None


def standard_error(baseline: Baseline, effect: float, n: float, design: Design) -> float:
    """The standard error of the estimated effect with ``n`` people in the experiment (see the module)."""
    n_c, n_t = n * design.control_share, n * design.treatment_share
    var = baseline.variance
    if design.scale == "absolute":
        se = math.sqrt(var / n_t + var / n_c)
    else:
        se = math.sqrt(var / (n_t * baseline.mean**2) + (1 + effect) ** 2 * var / (n_c * baseline.mean**2))
    if design.sequential_tuning is None:
        return se
    from scipy.stats import norm

    rho = mixture_rho(design.alpha, design.sequential_tuning)
    return se * halfwidth_factor(n_c + n_t, design.alpha, rho) / float(norm.ppf(1 - design.alpha / 2))


def power(baseline: Baseline, effect: float, n: float, design: Design = Design()) -> float:
    """The probability that the test rejects "no effect" when the true effect is ``effect``.

    >>> b = Baseline(10.0, 3910.0)
    >>> round(power(b, 0.05, 400_000, Design(control_share=1 / 3, treatment_share=1 / 3)), 4)
    0.5214
    """
    from scipy.stats import norm

    z = float(norm.ppf(1 - design.alpha / 2)) if design.two_sided else float(norm.ppf(1 - design.alpha))
    shift = effect / standard_error(baseline, effect, n, design)
    reached = float(norm.sf(z - shift))
    return reached + float(norm.cdf(-z - shift)) if design.two_sided else reached


def minimum_detectable_effect(baseline: Baseline, n: float, design: Design = Design()) -> float:
    """The smallest positive effect detected with the design's power by ``n`` people; ``inf`` when none is (a
    relative lift's standard error grows with the lift, so at small ``n`` no lift may be detectable)."""
    from scipy.optimize import brentq

    def gap(effect: float) -> float:
        return power(baseline, effect, n, design) - design.power

    if n < design.fewest:
        return math.inf
    high = 1.0 if design.scale == "relative" else math.sqrt(baseline.variance)
    for _ in range(60):
        if gap(high) >= 0:
            return float(brentq(gap, 0.0, high, xtol=1e-12))
        high *= 2
    return math.inf


def sample_size(baseline: Baseline, effect: float, design: Design = Design()) -> int | None:
    """The fewest people in the experiment for which the test has the design's power at ``effect``; ``None``
    past :data:`MAX_PEOPLE`."""
    from scipy.optimize import brentq

    def gap(n: float) -> float:
        return power(baseline, effect, n, design) - design.power

    low = design.fewest
    if gap(low) >= 0:
        return math.ceil(low)
    high = low
    while gap(high) < 0:
        if high >= MAX_PEOPLE:
            return None
        low, high = high, high * 4
    needed = math.ceil(brentq(gap, low, high, xtol=1e-6))
    return needed if gap(needed) >= 0 else needed + 1  # the root may sit a hair above an integer


def plan(
    baseline: Baseline, daily_people: float, design: Design = Design(), effect: float | None = None, days: int = 14
) -> Plan:
    """Plan an experiment that reaches ``daily_people`` new people a day. With ``effect``: the people and days
    needed to detect it. Without: the minimum detectable effect after ``days`` days.

    >>> p = plan(Baseline.of(Proportion(10_000, 1_000)), daily_people=2_000, effect=0.1)
    >>> (p.n, p.days)
    (31223, 16)
    """
    code = _degenerate(baseline, design)
    if code is not None or daily_people <= 0:
        return Plan(0.0, 0, 0, 0.0, code or "empty_arm")
    if effect is None:
        n = math.floor(daily_people * days)
        if n < design.fewest:
            return Plan(0.0, n, days, 0.0, "too_few")
        mde = minimum_detectable_effect(baseline, n, design)
        return Plan(mde, n, days, design.power if math.isfinite(mde) else 0.0)
    needed = sample_size(baseline, effect, design)
    if needed is None:
        return Plan(effect, 0, 0, 0.0, "undetectable")
    return Plan(effect, needed, math.ceil(needed / daily_people), power(baseline, effect, needed, design))


def _degenerate(baseline: Baseline, design: Design) -> str | None:
    if not baseline.variance > 0:
        return "zero_variance"
    if design.scale == "relative" and baseline.mean == 0:
        return "zero_baseline"
    return None
