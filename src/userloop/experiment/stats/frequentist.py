"""The fixed-horizon test of an effect: a two-sided confidence interval and p-value from Student's t with the
Welch–Satterthwaite degrees of freedom (Welch 1947; Satterthwaite 1946), on the estimate and standard error of
:class:`~userloop.experiment.stats.effect.Effect` (the delta method for relative lifts and ratio metrics).

This is the test of GrowthBook's frequentist engine (``TwoSidedTTest`` in ``gbstats/frequentist/tests.py``): the
same inputs give the same interval and p-value (checked to 1e-6 in ``tests/experiment/test_stats_effect.py``). It
is valid when the sample size is fixed in advance and the result read once; for a result read every day use
:mod:`userloop.experiment.stats.sequential`.
"""

from __future__ import annotations

from dataclasses import dataclass

from userloop.core.errors import ValidationError
from userloop.experiment.stats.effect import Effect, Scale


@dataclass(frozen=True)
class Interval:
    """An effect's ``estimate`` with its interval ``low``–``high`` at level ``1 − alpha``, two-sided
    ``p_value`` and standard error ``se``; ``code`` names why it is neutral (estimate 0, interval 0–0, p 1)."""

    estimate: float
    low: float
    high: float
    p_value: float
    se: float
    scale: Scale
    code: str | None = None

    @classmethod
    def neutral(cls, effect: Effect) -> Interval:
        return cls(0.0, 0.0, 0.0, 1.0, 0.0, effect.scale, effect.code)

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0


def t_test(effect: Effect, alpha: float = 0.05) -> Interval:
    """Welch's two-sided t interval and p-value of ``effect`` (H0: no effect).

    >>> from userloop.experiment.stats.arms import Proportion
    >>> from userloop.experiment.stats.lift import lift
    >>> r = t_test(lift(Proportion(1000, 100), Proportion(1000, 120), "absolute"))
    >>> (round(r.low, 6), round(r.high, 6), round(r.p_value, 6))
    (-0.007428, 0.047428, 0.152865)
    """
    check_alpha(alpha)
    if effect.code is not None:
        return Interval.neutral(effect)
    from scipy.stats import t as student_t

    half = float(student_t.ppf(1 - alpha / 2, effect.dof)) * effect.se
    p = float(2 * student_t.sf(abs(effect.estimate / effect.se), effect.dof))
    return Interval(effect.estimate, effect.estimate - half, effect.estimate + half, p, effect.se, effect.scale)


def check_alpha(alpha: float) -> None:
    """A level ``alpha`` must lie strictly between 0 and 1 (a user's setting: a clear error otherwise)."""
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must lie strictly between 0 and 1, not {alpha}", field="alpha")


def z_interval(estimate: float, se: float, alpha: float) -> tuple[float, float]:
    """The normal interval ``estimate ± z_{1−α/2} se``."""
    from scipy.stats import norm

    half = float(norm.ppf(1 - alpha / 2)) * se
    return estimate - half, estimate + half


__all__ = ["Interval", "check_alpha", "t_test", "z_interval"]
