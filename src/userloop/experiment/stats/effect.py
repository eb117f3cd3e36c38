"""The effect of a treatment on a metric: the point estimate of treatment − control (absolute) or of
(treatment − control) / |control| (relative lift), its standard error and the Welch degrees of freedom.

Every test (:mod:`~userloop.experiment.stats.frequentist`, :mod:`~userloop.experiment.stats.sequential`,
:mod:`~userloop.experiment.stats.bayesian`) reads this one :class:`Effect`, as GrowthBook's engine reads its
"effect moments" (``gbstats/models/tests.py``), so the three agree on what the effect and its noise are.
:func:`userloop.experiment.stats.lift.lift` makes it from two arms.

- Absolute: ``Var = σ²_t/n_t + σ²_c/n_c`` with each arm's per-person variance.
- Relative, by the delta method on ``μ_t/μ_c − 1`` with independent arms (Deng, Knoblich & Lu, "Applying the
  Delta Method in Metric Analytics", KDD 2018, §3.3): ``Var = σ²_t/(n_t μ_c²) + μ_t² σ²_c/(n_c μ_c⁴)``. The
  estimate divides by ``|μ_c|`` so a rise from a negative baseline reads as positive.
- Degrees of freedom: Welch–Satterthwaite on the per-person variances (Welch 1947), for every kind of arm.

Degenerate data gives a neutral :class:`Effect` (estimate 0, standard error 0) with a code of
:data:`userloop.stats.messages.DEGENERATE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: What an effect is measured as: treatment − control, or that over |control|.
Scale = Literal["absolute", "relative"]


@dataclass(frozen=True)
class Effect:
    """An effect's ``estimate`` and standard error ``se`` on a ``scale``, with ``dof`` (Welch), ``n`` (people in
    both arms) and ``baseline`` (the control's unadjusted mean). ``code`` names why it is neutral
    (estimate 0, se 0), else ``None``."""

    estimate: float
    se: float
    dof: float
    n: int
    baseline: float
    scale: Scale
    code: str | None = None

    @classmethod
    def neutral(cls, code: str, scale: Scale, n: int = 0, baseline: float = math.nan) -> Effect:
        return cls(0.0, 0.0, 0.0, n, baseline, scale, code)


@dataclass(frozen=True)
class Side:
    """One arm reduced to what the formulas read: its mean, per-person variance and size."""

    mean: float
    variance: float
    n: int


def compare(c: Side, t: Side, scale: Scale) -> Effect:
    """The effect of ``t`` against ``c`` for independent arms (absolute, or relative by the delta method)."""
    n = c.n + t.n
    if not c.variance + t.variance > 0:
        return Effect.neutral("zero_variance", scale, n, c.mean)
    dof = welch_dof(c.variance, c.n, t.variance, t.n)
    if scale == "absolute":
        return Effect(t.mean - c.mean, math.sqrt(c.variance / c.n + t.variance / t.n), dof, n, c.mean, scale)
    if c.mean == 0:
        return Effect.neutral("zero_baseline", scale, n, c.mean)
    var = t.variance / (t.n * c.mean**2) + t.mean**2 * c.variance / (c.n * c.mean**4)
    return Effect((t.mean - c.mean) / abs(c.mean), math.sqrt(var), dof, n, c.mean, scale)


def welch_dof(a_variance: float, a_n: int, b_variance: float, b_n: int) -> float:
    """Welch–Satterthwaite degrees of freedom of the difference of two means (Welch 1947, eq. 9)."""
    va, vb = a_variance / a_n, b_variance / b_n
    return (va + vb) ** 2 / (va**2 / (a_n - 1) + vb**2 / (b_n - 1))
