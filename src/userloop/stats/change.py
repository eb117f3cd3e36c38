"""Is a change between two periods more than the metric's own variation, and is one part's change unlike the rest?

Two tests for drill-down (issue 13 item 3), on per-period sums ``s`` and sums of squares ``q`` of the values
counted (1 per event or person, the property's value for a sum):

**The total** (:func:`change_test`). The change ``Δ = current − baseline`` is set against the period-to-period
changes ``d_1 … d_m`` of the metric over the comparable periods before (same length, consecutive): if ``Δ`` and
the ``d_j`` are independent draws of one normal variable, ``(Δ − mean d) / (sd d · sqrt(1 + 1/m))`` follows
Student's t with ``m − 1`` degrees of freedom — the prediction interval of a new observation (Hahn & Meeker,
*Statistical Intervals*, 1991, §4.2). A steady trend (a growing business) is expected, and the usual size of
its swings is the yardstick. Counting noise is a floor: for
independent events (a Poisson process, or a compound Poisson one for sums) ``Var Δ = q_current + q_baseline``, and
a change must pass both tests. With fewer than :data:`MIN_HISTORY` earlier changes only the counting test is
made (``method = "poisson"``).

**One part against the rest** (:func:`rate_ratio_z`). A value whose change is the total's change scaled evenly
keeps its share; one that moved more has a rate ratio (current / baseline) unlike the rest's. The Wald statistic
of the log ratio of the two rate ratios, ``log(c_i/b_i) − log(c_r/b_r)``, has variance ``Σ 1/n`` over the four
cells for Poisson counts (Agresti, *Categorical Data Analysis*, 3rd ed. 2013, §3.1.4 for the log odds/rate
ratio and its Haldane–Anscombe ½ correction for empty cells); for sums, ``n = s²/q`` is the count of equally
weighted events with the same variance (Kish's effective sample size). Day-to-day variation beyond counting
noise is measured by the same statistic on earlier consecutive periods: their mean ``z²`` is a dispersion
factor ``φ`` (Pearson's χ²/df estimate of over-dispersion, McCullagh & Nelder, *Generalized Linear Models*,
2nd ed. 1989, §4.5), and the current statistic is divided by ``sqrt(max(1, φ))``. p-values of many values are
adjusted with Benjamini–Hochberg (:func:`userloop.stats.correction.adjust_p`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: Fewer earlier period-to-period changes than this, and the total is tested against counting noise only.
MIN_HISTORY = 3


@dataclass(frozen=True)
class ChangeTest:
    """The total change's test: ``statistic`` (t or z), ``dof`` (0 for the counting test alone), two-sided
    ``p_value`` (the larger of the two tests'), ``typical`` (the prediction standard error from the earlier
    changes, or the counting noise's standard deviation), ``expected`` (the earlier changes' mean; 0 for the
    counting test), ``method`` and the number of earlier changes used."""

    statistic: float
    dof: float
    p_value: float
    typical: float
    method: Literal["history", "poisson"]
    history: int
    expected: float = 0.0


def change_test(delta: float, counting_var: float, earlier: Sequence[float]) -> ChangeTest:
    """Test ``delta`` against the earlier period-to-period changes ``earlier`` and the counting variance.

    >>> t = change_test(-40.0, 100.0, [5.0, -8.0, 6.0, -3.0])
    >>> (t.method, round(t.statistic, 3), t.p_value < 0.05)
    ('history', -5.353, True)
    >>> change_test(-10.0, 400.0, []).p_value > 0.5
    True
    """
    from scipy.stats import norm
    from scipy.stats import t as student_t

    z_count = delta / math.sqrt(counting_var) if counting_var > 0 else (0.0 if delta == 0 else math.inf)
    p_count = float(2 * norm.sf(abs(z_count))) if math.isfinite(z_count) else 0.0
    m = len(earlier)
    if m < MIN_HISTORY:
        return ChangeTest(z_count, 0.0, p_count, math.sqrt(max(counting_var, 0.0)), "poisson", m)
    mean = sum(earlier) / m
    sd = math.sqrt(sum((d - mean) ** 2 for d in earlier) / (m - 1))
    typical = sd * math.sqrt(1 + 1 / m)
    if typical == 0:
        stat, p_hist = (0.0, 1.0) if delta == mean else (math.copysign(math.inf, delta - mean), 0.0)
    else:
        stat = (delta - mean) / typical
        p_hist = float(2 * student_t.sf(abs(stat), m - 1))
    if p_count > p_hist:  # counting noise alone explains more than the history says: report that test
        return ChangeTest(z_count, 0.0, p_count, math.sqrt(counting_var), "poisson", m)
    return ChangeTest(stat, float(m - 1), p_hist, typical, "history", m, mean)


def rate_ratio_z(part: tuple[Cell, Cell], rest: tuple[Cell, Cell]) -> float | None:
    """Wald z of ``log(rate ratio of part) − log(rate ratio of rest)``, each ratio current / baseline.

    Cells are ``(s, q)``. ``None`` when the test has no meaning: a negative sum, or a side with nothing in
    either period.

    >>> round(rate_ratio_z(((30.0, 30.0), (100.0, 100.0)), ((100.0, 100.0), (100.0, 100.0))), 3)
    -4.764
    """
    (pc, pb), (rc, rb) = part, rest
    if min(pc[0], pb[0], rc[0], rb[0]) < 0 or pc[0] + pb[0] <= 0 or rc[0] + rb[0] <= 0:
        return None
    est, var = 0.0, 0.0
    for sign, (cur, base) in ((1.0, (pc, pb)), (-1.0, (rc, rb))):
        weight = (cur[1] + base[1]) / (cur[0] + base[0])  # the mean value counted (1 for counts)
        if weight <= 0:
            return None
        half = 0.5 * weight  # Haldane–Anscombe: half an event in each cell
        est += sign * (math.log(cur[0] + half) - math.log(base[0] + half))
        var += 1 / (_effective(cur) + 0.5) + 1 / (_effective(base) + 0.5)
    return est / math.sqrt(var)


def dispersion(z_values: Sequence[float]) -> float:
    """Pearson's over-dispersion factor: the mean square of statistics that are N(0, 1) without it; at least 1.
    Below :data:`MIN_HISTORY` statistics, 1."""
    if len(z_values) < MIN_HISTORY:
        return 1.0
    return max(1.0, sum(z * z for z in z_values) / len(z_values))


def two_sided_p(z: float) -> float:
    from scipy.stats import norm

    return float(2 * norm.sf(abs(z)))


Cell = tuple[float, float]


def _effective(cell: Cell) -> float:
    """Kish's effective count ``s² / q`` of a cell (the count itself when every value is 1)."""
    s, q = cell
    return s * s / q if q > 0 else 0.0


__all__ = ["MIN_HISTORY", "ChangeTest", "change_test", "dispersion", "rate_ratio_z", "two_sided_p"]
