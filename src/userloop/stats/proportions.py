"""Two-proportion z-test: is one group's rate of success different from another's?

The test pools the two samples under the null hypothesis of one common rate ``p̂ = (x₁ + x₂) / (n₁ + n₂)``; its
statistic ``z = (p̂₁ − p̂₂) / sqrt(p̂ (1 − p̂) (1/n₁ + 1/n₂))`` is standard normal for large samples, and ``z²``
equals Pearson's chi-square of the 2 × 2 table without continuity correction. The normal approximation is used
only when every expected cell count ``n_i p̂`` and ``n_i (1 − p̂)`` is at least 5 (the usual rule of thumb,
Agresti, *Categorical Data Analysis*, 3rd ed., 2013, §3.1.4 and §2.4.4); otherwise the result is neutral with the
code ``too_few_expected``.

References: Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions* (3rd ed., 2003), §2.5;
Agresti (2013) §2.1–2.4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The smallest expected count in any cell of the 2 × 2 table for the normal approximation to be used.
MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class ProportionTest:
    """``statistic`` z for rate A − rate B, two-sided ``p_value``; ``code`` set (z 0, p 1) when the counts cannot
    support the test (see :data:`userloop.stats.messages.DEGENERATE`)."""

    rate_a: float
    rate_b: float
    statistic: float
    p_value: float
    code: str | None = None


def two_proportion_z(x_a: int, n_a: int, x_b: int, n_b: int) -> ProportionTest:
    """The pooled two-proportion z-test of ``x_a / n_a`` against ``x_b / n_b`` (two-sided).

    >>> t = two_proportion_z(45, 100, 90, 100)
    >>> (round(t.statistic, 4), f"{t.p_value:.3g}")
    (-6.7937, '1.09e-11')
    >>> two_proportion_z(1, 3, 2, 3).code
    'too_few_expected'
    """
    if not (0 <= x_a <= n_a and 0 <= x_b <= n_b):
        raise ValueError(f"successes must lie between 0 and the trials: {x_a}/{n_a}, {x_b}/{n_b}")
    if n_a == 0 or n_b == 0:
        return ProportionTest(math.nan, math.nan, 0.0, 1.0, "too_few")
    rate_a, rate_b = x_a / n_a, x_b / n_b
    pooled = (x_a + x_b) / (n_a + n_b)
    if min(n_a, n_b) * min(pooled, 1.0 - pooled) < MIN_EXPECTED:
        return ProportionTest(rate_a, rate_b, 0.0, 1.0, "too_few_expected")
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    statistic = (rate_a - rate_b) / se
    # Two-sided normal tail: P(|Z| >= |z|) = erfc(|z| / sqrt 2), accurate far into the tail.
    return ProportionTest(rate_a, rate_b, statistic, math.erfc(abs(statistic) / math.sqrt(2.0)))
