"""Moments: the sufficient statistics of a sample for means and variances (count, sum, sum of squares)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Moments:
    """``n`` values with sum ``total`` and sum of squares ``total_sq``; two samples add into their union.

    A proportion is the Moments of 0/1 values (``total_sq == total``).

    >>> a = Moments.of([1.0, 2.0, 3.0]) + Moments.of([4.0])
    >>> (a.n, a.mean, round(a.variance, 6))
    (4, 2.5, 1.666667)
    """

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        n, s, ss = 0, 0.0, 0.0
        for v in values:
            n, s, ss = n + 1, s + v, ss + v * v
        return cls(n, s, ss)

    @classmethod
    def from_mean_var(cls, n: int, mean: float, variance: float) -> Moments:
        """From a count, a mean and a sample variance (``ddof = 1``), as databases report them."""
        total = n * mean
        return cls(n, total, variance * (n - 1) + total * mean if n > 1 else total * mean)

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance (``ddof = 1``); 0 when rounding makes it slightly negative; nan below two values."""
        if self.n < 2:
            return math.nan
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)
