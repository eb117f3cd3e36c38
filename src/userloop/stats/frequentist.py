"""Two-group frequentist tests read from sufficient statistics.

References: Welch (1947), Biometrika 34, 28–35, and Satterthwaite (1946) for the unequal-variance t-test and its
degrees of freedom; Pearson (1900) and Agresti, *Categorical Data Analysis* (3rd ed., 2013) §3.2 for the
chi-square test of homogeneity; Cramér, *Mathematical Methods of Statistics* (1946) §21.9 for V; Cohen,
*Statistical Power Analysis for the Behavioral Sciences* (2nd ed., 1988) §2.2 for d and its relation to r.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from userloop.stats.moments import Moments


@dataclass(frozen=True)
class TTest:
    """Welch's t: ``statistic`` for A − B, Welch–Satterthwaite ``dof``, two-sided ``p_value``; ``code`` set (and
    statistic 0, p 1) when the data cannot support the test."""

    statistic: float
    dof: float
    p_value: float
    code: str | None = None


@dataclass(frozen=True)
class ChiSquare:
    """Pearson's chi-square of homogeneity over a 2 × k table, with Cramér's V; ``code`` as for :class:`TTest`."""

    statistic: float
    dof: float
    p_value: float
    cramers_v: float
    code: str | None = None


def welch_t(a: Moments, b: Moments) -> TTest:
    """Welch's unequal-variance t-test of mean(A) − mean(B).

    >>> t = welch_t(Moments.from_mean_var(1000, 10.5, 25.0), Moments.from_mean_var(1000, 10.0, 25.0))
    >>> (round(t.statistic, 4), round(t.p_value, 6))
    (2.2361, 0.025457)
    """
    if a.n < 2 or b.n < 2:
        return TTest(0.0, 0.0, 1.0, "too_few")
    va, vb = a.variance / a.n, b.variance / b.n
    se2 = va + vb
    if se2 == 0:
        return TTest(0.0, 0.0, 1.0, "zero_variance")
    from scipy.stats import t as student_t

    statistic = (a.mean - b.mean) / math.sqrt(se2)
    dof = se2**2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return TTest(statistic, dof, float(2 * student_t.sf(abs(statistic), dof)))


def chi_square_homogeneity(table: np.ndarray) -> ChiSquare:
    """Pearson's chi-square test that the rows of ``table`` (groups × categories counts) share one distribution.

    Columns with no counts are left out; Cramér's V is ``sqrt(χ² / (N (min(r, c) − 1)))``.
    """
    counts = np.asarray(table, dtype=np.float64)
    counts = counts[:, counts.sum(axis=0) > 0]
    rows, cols = counts.shape
    if cols < 2 or rows < 2 or (counts.sum(axis=1) == 0).any():
        return ChiSquare(0.0, 0.0, 1.0, 0.0, "empty_table")
    from scipy.stats import chi2

    total = counts.sum()
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / total
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = float((rows - 1) * (cols - 1))
    v = math.sqrt(statistic / (total * (min(rows, cols) - 1)))
    return ChiSquare(statistic, dof, float(chi2.sf(statistic, dof)), v)


def cohens_d(a: Moments, b: Moments) -> float:
    """Cohen's d: the difference of means over the pooled standard deviation (Cohen 1988, eq. 2.5.2)."""
    pooled = ((a.n - 1) * a.variance + (b.n - 1) * b.variance) / (a.n + b.n - 2)
    return (a.mean - b.mean) / math.sqrt(pooled)


def r_from_d(d: float, n_a: int, n_b: int) -> float:
    """The point-biserial correlation between group and value that Cohen's d implies.

    With ``N = n_a + n_b``, the pooled t statistic is ``t = d·sqrt(n_a n_b / N)`` and ``r = t / sqrt(t² + N − 2)``,
    so ``r = d / sqrt(d² + N (N − 2) / (n_a n_b))`` — exact for non-overlapping groups; Cohen (1988, eq. 2.2.6)
    and Borenstein et al., *Introduction to Meta-Analysis* (2009, eq. 7.7) give the large-sample form
    ``d / sqrt(d² + N² / (n_a n_b))``.
    """
    n = n_a + n_b
    return d / math.sqrt(d * d + n * (n - 2) / (n_a * n_b))
