"""The effect of a treatment on a metric: the point estimate of treatment − control (absolute) or of
(treatment − control) / |control| (relative lift), its standard error and the Welch degrees of freedom.

Every test (:mod:`~userloop.experiment.stats.frequentist`, :mod:`~userloop.experiment.stats.sequential`,
:mod:`~userloop.experiment.stats.bayesian`) reads this one :class:`Effect`, as GrowthBook's engine reads its
"effect moments" (``gbstats/models/tests.py``), so the three agree on what the effect and its noise are.

- Absolute: ``Var = σ²_t/n_t + σ²_c/n_c`` with each arm's per-person variance.
- Relative, by the delta method on ``μ_t/μ_c − 1`` with independent arms (Deng, Knoblich & Lu, KDD 2018, §3.3):
  ``Var = σ²_t/(n_t μ_c²) + μ_t² σ²_c/(n_c μ_c⁴)``. The estimate divides by ``|μ_c|`` so a rise from a negative
  baseline reads as positive.
- CUPED (Deng, Xu, Kohavi & Walker, WSDM 2013): each arm's metric ``Y`` is adjusted to ``Y − θ X`` with its
  pre-period covariate ``X`` and one ``θ = cov(Y, X) / var(X)`` pooled over both arms (the paper's §3.3: a ``θ``
  common to the arms keeps the estimate unbiased). With no variation in ``X``, ``θ = 0`` (plain means). The
  relative lift divides by the control's unadjusted mean; its delta-method gradient in the control's
  ``(Ȳ_c, X̄_c)`` is ``(−μ_Yt/μ_Yc², θ/μ_Yc)``, evaluated where the arms' pre-period means agree, as randomisation
  makes them in expectation (the choice of GrowthBook's engine, whose numbers this reproduces).
- Degrees of freedom: Welch–Satterthwaite on the per-person variances (Welch 1947), for every kind.

Degenerate data gives a neutral :class:`Effect` (estimate 0, standard error 0) with a code of
:data:`userloop.stats.messages.DEGENERATE`: ``empty_arm``, ``too_few``, ``zero_denominator``, ``zero_variance``,
``zero_baseline``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from userloop.core.errors import ValidationError
from userloop.experiment.stats.arms import Arm, Cuped, Proportion, Ratio
from userloop.stats import Moments

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
class _Side:
    """One arm reduced to what the formulas read: its mean, per-person variance and size."""

    mean: float
    variance: float
    n: int


def lift(control: Arm, treatment: Arm, scale: Scale = "relative") -> Effect:
    """The effect of ``treatment`` against ``control`` (both of one kind of :data:`Arm`).

    >>> e = lift(Proportion(1000, 100), Proportion(1000, 120))
    >>> (round(e.estimate, 6), round(e.se, 6))
    (0.2, 0.153362)
    >>> lift(Proportion(0, 0), Proportion(10, 2)).code
    'empty_arm'
    """
    if type(control) is not type(treatment):
        raise ValidationError(
            f"both arms of a comparison must be of one kind, not {type(control).__name__} and "
            f"{type(treatment).__name__}",
            field="treatment",
        )
    n = control.n + treatment.n
    if min(control.n, treatment.n) == 0:
        return Effect.neutral("empty_arm", scale, n)
    if min(control.n, treatment.n) < 2:
        return Effect.neutral("too_few", scale, n)
    if isinstance(control, Cuped) and isinstance(treatment, Cuped):
        return _cuped(control, treatment, scale)
    if isinstance(control, Ratio) and isinstance(treatment, Ratio) and 0 in (control.y.total, treatment.y.total):
        return Effect.neutral("zero_denominator", scale, n)
    assert not isinstance(control, Cuped) and not isinstance(treatment, Cuped)  # one kind, checked above
    return _compare(_side(control), _side(treatment), scale)


def pooled_theta(control: Cuped, treatment: Cuped) -> float:
    """CUPED's ``θ = cov(Y, X) / var(X)`` over both arms together (Deng et al. 2013, eq. 4); 0 when the
    covariate or the metric does not vary."""
    joint = control + treatment
    if not joint.y.variance > 0 or not joint.x.variance > 0:
        return 0.0
    return joint.covariance / joint.y.variance


def welch_dof(a_variance: float, a_n: int, b_variance: float, b_n: int) -> float:
    """Welch–Satterthwaite degrees of freedom of the difference of two means (Welch 1947, eq. 9)."""
    va, vb = a_variance / a_n, b_variance / b_n
    return (va + vb) ** 2 / (va**2 / (a_n - 1) + vb**2 / (b_n - 1))


def _side(arm: Proportion | Moments | Ratio) -> _Side:
    return _Side(arm.mean, arm.variance, arm.n)


def _compare(c: _Side, t: _Side, scale: Scale) -> Effect:
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


def _cuped(control: Cuped, treatment: Cuped, scale: Scale) -> Effect:
    theta = pooled_theta(control, treatment)
    if theta == 0.0:
        return _compare(_side(control.metric), _side(treatment.metric), scale)
    c = _Side(control.x.mean - theta * control.y.mean, control.adjusted_variance(theta), control.n)
    t = _Side(treatment.x.mean - theta * treatment.y.mean, treatment.adjusted_variance(theta), treatment.n)
    baseline = control.x.mean
    if scale == "absolute" or not c.variance + t.variance > 0:
        effect = _compare(c, t, "absolute")
        return Effect(effect.estimate, effect.se, effect.dof, effect.n, baseline, scale, effect.code)
    if baseline == 0:
        return Effect.neutral("zero_baseline", scale, c.n + t.n, baseline)
    # The control's gradient in (Ȳ_c, X̄_c) is (−μ_Yt/μ_Yc², θ/μ_Yc); see the module's docstring.
    g_metric, g_covariate = -treatment.x.mean / baseline**2, theta / baseline
    var_c = (
        g_metric**2 * control.x.variance
        + 2 * g_metric * g_covariate * control.covariance
        + g_covariate**2 * control.y.variance
    ) / control.n
    var = t.variance / (t.n * baseline**2) + var_c
    dof = welch_dof(c.variance, c.n, t.variance, t.n)
    return Effect((t.mean - c.mean) / abs(baseline), math.sqrt(var), dof, c.n + t.n, baseline, scale)
