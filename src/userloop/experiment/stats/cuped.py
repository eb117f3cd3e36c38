"""CUPED: the effect on a metric adjusted by a pre-period covariate, with ``θ`` pooled over the arms.

Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled Experiments by Utilizing
Pre-Experiment Data", WSDM 2013: each arm's metric ``Y`` becomes ``Y − θ X`` with ``X`` measured before the
experiment, so independent of the assignment; ``θ = cov(Y, X) / var(X)`` minimises the adjusted variance, and one
``θ`` for both arms keeps the difference unbiased (§3.3). Here ``θ`` comes from both arms' data together.

- Means (:class:`~userloop.experiment.stats.arms.Cuped`): the adjusted per-person variance is
  ``σ²_Y + θ² σ²_X − 2 θ σ_XY`` (eq. 3). The relative lift divides by the control's unadjusted mean ``μ_Yc``;
  by the delta method its gradient in the control's ``(Ȳ_c, X̄_c)`` is ``(−μ_Yt/μ_Yc², θ/μ_Yc)``, evaluated where
  the arms' pre-period means agree, as randomisation makes them in expectation (GrowthBook's choice, which these
  numbers reproduce).
- Ratio metrics (:class:`~userloop.experiment.stats.arms.CupedRatio`): the adjusted metric is
  ``P − θ Q`` with ``P = m̄/d̄`` during and ``Q`` the same ratio before; its variance is the delta method's
  ``∇ᵀ Λ ∇`` over the four per-person means (Deng, Knoblich & Lu, KDD 2018, §4.2), and
  ``θ = Σ_arms Cov(P, Q) / Σ_arms Var(Q)`` in per-person terms, as GrowthBook's engine pools it. The relative
  lift ``(A_t − A_c)/|P_c|`` takes its exact gradient in the control's four means.

With no variation in the covariate ``θ = 0`` (for ratios ``|θ| < 10⁻⁸``) and the plain comparison is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from userloop.experiment.stats.arms import Cuped, CupedRatio
from userloop.experiment.stats.effect import Effect, Scale, Side, compare, welch_dof

#: Below this |θ| a ratio metric is compared without adjustment (as GrowthBook's engine does).
NEGLIGIBLE_THETA = 1e-8

Matrix = Sequence[Sequence[float]]


def pooled_theta(control: Cuped, treatment: Cuped) -> float:
    """CUPED's ``θ = cov(Y, X) / var(X)`` over both arms together (Deng et al. 2013, eq. 4); 0 when the
    covariate or the metric does not vary."""
    joint = control + treatment
    if not joint.y.variance > 0 or not joint.x.variance > 0:
        return 0.0
    return joint.covariance / joint.y.variance


def cuped_lift(control: Cuped, treatment: Cuped, scale: Scale) -> Effect:
    """The CUPED-adjusted effect of ``treatment`` against ``control`` (both with two people or more)."""
    theta = pooled_theta(control, treatment)
    if theta == 0.0:
        return compare(_plain(control), _plain(treatment), scale)
    c = Side(control.x.mean - theta * control.y.mean, control.adjusted_variance(theta), control.n)
    t = Side(treatment.x.mean - theta * treatment.y.mean, treatment.adjusted_variance(theta), treatment.n)
    baseline = control.x.mean
    if scale == "absolute" or not c.variance + t.variance > 0:
        e = compare(c, t, "absolute")
        return Effect(e.estimate, e.se, e.dof, e.n, baseline, scale, e.code)
    if baseline == 0:
        return Effect.neutral("zero_baseline", scale, c.n + t.n, baseline)
    grad = (-treatment.x.mean / baseline**2, theta / baseline)  # see the module's docstring
    cov = ((control.x.variance, control.covariance), (control.covariance, control.y.variance))
    var = t.variance / (t.n * baseline**2) + _quadratic(grad, cov) / control.n
    dof = welch_dof(c.variance, c.n, t.variance, t.n)
    return Effect((t.mean - c.mean) / abs(baseline), math.sqrt(var), dof, c.n + t.n, baseline, scale)


def ratio_theta(control: CupedRatio, treatment: CupedRatio) -> float:
    """``θ = Σ Cov(P, Q) / Σ Var(Q)`` over the arms, per person, by the delta method; 0 without variation."""
    covariance, variance = 0.0, 0.0
    for arm in (control, treatment):
        grad = _gradient(arm, 1.0)
        lam = arm.covariances
        pre = (grad[2], grad[3])  # −∇Q
        covariance -= _bilinear(pre, [row[:2] for row in lam[2:]], grad[:2])
        variance += _quadratic(pre, [row[2:] for row in lam[2:]])
    return covariance / variance if variance > 0 else 0.0


def cuped_ratio_lift(control: CupedRatio, treatment: CupedRatio, scale: Scale) -> Effect:
    """The CUPED-adjusted effect on a ratio metric (both arms with two people or more)."""
    n = control.n + treatment.n
    if 0 in (control.means[1], control.means[3], treatment.means[1], treatment.means[3]):
        return Effect.neutral("zero_denominator", scale, n)
    theta = ratio_theta(control, treatment)
    if abs(theta) < NEGLIGIBLE_THETA:
        return compare(_plain_ratio(control), _plain_ratio(treatment), scale)
    c, t = _adjusted(control, theta), _adjusted(treatment, theta)
    baseline = control.post.mean
    if scale == "absolute" or not c.variance + t.variance > 0:
        e = compare(c, t, "absolute")
        return Effect(e.estimate, e.se, e.dof, e.n, baseline, scale, e.code)
    if baseline == 0:
        return Effect.neutral("zero_baseline", scale, n, baseline)
    den, gain = abs(baseline), math.copysign(1.0, baseline) * (t.mean - c.mean)
    m, d = control.means[0], control.means[1]
    g_c = _gradient(control, theta)
    grad_c = (
        -(den + gain) / (d * den**2),
        m * (den + gain) / (d**2 * den**2),
        -g_c[2] / den,
        -g_c[3] / den,
    )
    grad_t = tuple(g / den for g in _gradient(treatment, theta))
    var = _quadratic(grad_c, control.covariances) / control.n + _quadratic(grad_t, treatment.covariances) / t.n
    dof = welch_dof(c.variance, c.n, t.variance, t.n)
    return Effect((t.mean - c.mean) / den, math.sqrt(var), dof, n, baseline, scale)


def _plain(arm: Cuped) -> Side:
    return Side(arm.x.mean, arm.x.variance, arm.n)


def _plain_ratio(arm: CupedRatio) -> Side:
    return Side(arm.post.mean, arm.post.variance, arm.n)


def _adjusted(arm: CupedRatio, theta: float) -> Side:
    m, d, m_pre, d_pre = arm.means
    mean = m / d - theta * m_pre / d_pre
    return Side(mean, _quadratic(_gradient(arm, theta), arm.covariances), arm.n)


def _gradient(arm: CupedRatio, theta: float) -> tuple[float, float, float, float]:
    """The gradient of ``m̄/d̄ − θ m̄'/d̄'`` in the four means (numerator, denominator, before)."""
    m, d, m_pre, d_pre = arm.means
    return 1 / d, -m / d**2, -theta / d_pre, theta * m_pre / d_pre**2


def _quadratic(g: Sequence[float], lam: Matrix) -> float:
    return _bilinear(g, lam, g)


def _bilinear(a: Sequence[float], lam: Matrix, b: Sequence[float]) -> float:
    return sum(a[i] * lam[i][j] * b[j] for i in range(len(a)) for j in range(len(b)))
