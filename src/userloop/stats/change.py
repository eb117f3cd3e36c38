"""Is a change between two periods more than the metric's own variation, and is one part's change unlike the rest?

Two tests for drill-down (issue 13 item 3), on per-period sums ``s`` and sums of squares ``q`` of the values
counted (1 per event or person, the property's value for a sum):

**The total** (:func:`change_test`, on drill-down's layout :func:`periods_test`). The change
``Δ = s_0 − s_1`` (current − baseline) is set against the period-to-period changes ``d_i = s_i − s_{i+1}`` of the
comparable periods before (same length, consecutive, newest first ``s_2, s_3, …``): if ``Δ`` and the ``d_i`` are
draws of one normal variable, ``(Δ − mean d) / (sd d · sqrt(1 + 1/m))`` follows Student's t with ``m − 1``
degrees of freedom — the prediction interval of a new observation (Hahn & Meeker, *Statistical Intervals*, 1991,
§4.2). A steady trend (a growing business) is expected, and the usual size of its swings is the yardstick.

The prediction interval needs ``Δ`` independent of the ``d_i``. A change that shares a period with ``Δ`` is not:
``d_1 = s_1 − s_2`` shares the baseline, and with counting noise ``Cov(Δ, d_1) = −Var s_1`` (consecutive
differences of a noisy level are negatively correlated: the differences of a local level model are an MA(1),
Durbin & Koopman, *Time Series Analysis by State Space Methods*, 2nd ed. 2012, ch. 2). So the earlier changes
start at ``d_2 = s_2 − s_3``, which shares no period with ``Δ``; under a stationary level or a random walk with
drift, each plus independent counting noise, ``Δ`` is then independent of every ``d_i`` and has their
distribution. The ``d_i`` still correlate among themselves (neighbours share a period), which makes their sample
variance a little large when counting noise dominates: measured on drill-down's layout (8 earlier periods,
``tests/stats/test_change.py``), the test rejects 3.4% of stationary Poisson changes and 4.1% of a random walk's
at 5%. (Using ``d_1`` too, and requiring the counting test to pass as well, rejected 1.8% and 3.0%.)

Counting noise is the fallback: for independent events (a Poisson process, or a compound Poisson one for sums)
``Var Δ = q_current + q_baseline``. It is the test with fewer than :data:`MIN_HISTORY` earlier changes
(``method = "poisson"``), and when the earlier changes vary much less than counting noise alone would make them
(their sum of squares below the 1% quantile of ``χ²_{m−1}`` times their mean counting variance: a history too
quiet to measure by, e.g. a handful of events a period), where the larger of the two p-values is reported.

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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: Fewer earlier period-to-period changes than this, and the total is tested against counting noise only.
MIN_HISTORY = 3
#: The earlier changes are too quiet to be the yardstick when their sum of squares is below this quantile of
#: χ² (scaled by their counting variance).
QUIET = 0.01


@dataclass(frozen=True)
class ChangeTest:
    """The total change's test: ``statistic`` (t or z), ``dof`` (0 for the counting test), two-sided
    ``p_value``, ``typical`` (the prediction standard error from the earlier
    changes, or the counting noise's standard deviation), ``expected`` (the earlier changes' mean; 0 for the
    counting test), ``method`` and the number of earlier changes used."""

    statistic: float
    dof: float
    p_value: float
    typical: float
    method: Literal["history", "poisson"]
    history: int
    expected: float = 0.0


def change_test(
    delta: float, counting_var: float, earlier: Sequence[float], earlier_counting_var: float | None = None
) -> ChangeTest:
    """Test ``delta`` against the earlier period-to-period changes ``earlier`` (independent of ``delta``) and the
    counting variance; ``earlier_counting_var`` is the mean counting variance of the earlier changes (default: the
    current one), the floor below which their spread is too quiet to be the yardstick.

    >>> t = change_test(-40.0, 30.0, [5.0, -8.0, 6.0, -3.0])
    >>> (t.method, round(t.statistic, 3), t.p_value < 0.05)
    ('history', -5.353, True)
    >>> change_test(-10.0, 400.0, []).p_value > 0.5
    True
    """
    from scipy.stats import chi2, norm
    from scipy.stats import t as student_t

    z_count = delta / math.sqrt(counting_var) if counting_var > 0 else (0.0 if delta == 0 else math.inf)
    p_count = float(2 * norm.sf(abs(z_count))) if math.isfinite(z_count) else 0.0
    counting = ChangeTest(z_count, 0.0, p_count, math.sqrt(max(counting_var, 0.0)), "poisson", len(earlier))
    m = len(earlier)
    if m < MIN_HISTORY:
        return counting
    mean = sum(earlier) / m
    squares = sum((d - mean) ** 2 for d in earlier)
    sd = math.sqrt(squares / (m - 1))
    typical = sd * math.sqrt(1 + 1 / m)
    if typical == 0:
        stat, p_hist = (0.0, 1.0) if delta == mean else (math.copysign(math.inf, delta - mean), 0.0)
    else:
        stat = (delta - mean) / typical
        p_hist = float(2 * student_t.sf(abs(stat), m - 1))
    floor = counting_var if earlier_counting_var is None else earlier_counting_var
    quiet = squares < floor * float(chi2.ppf(QUIET, m - 1))
    if quiet and p_count > p_hist:  # a history quieter than counting noise is no yardstick: report that test
        return counting
    return ChangeTest(stat, float(m - 1), p_hist, typical, "history", m, mean)


def periods_test(s: Sequence[float], q: Sequence[float]) -> ChangeTest:
    """Drill-down's test of the total: ``s`` and ``q`` are the sums and sums of squares of the current period, the
    baseline, then the comparable earlier periods newest first (consecutive, each as long as the current one).
    The change ``s[0] − s[1]`` is tested against ``s[i] − s[i+1]`` for ``i ≥ 2`` (none shares a period with it).

    >>> s = [80.0, 120.0, 100.0, 103.0, 98.0, 101.0, 99.0]
    >>> t = periods_test(s, s)
    >>> (t.method, t.history)
    ('history', 4)
    """
    earlier = [a - b for a, b in itertools.pairwise(s[2:])]
    counting = [a + b for a, b in itertools.pairwise(q[2:])]
    floor = sum(counting) / len(counting) if counting else None
    return change_test(s[0] - s[1], q[0] + q[1], earlier, floor)


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


__all__ = ["MIN_HISTORY", "ChangeTest", "change_test", "dispersion", "periods_test", "rate_ratio_z", "two_sided_p"]
