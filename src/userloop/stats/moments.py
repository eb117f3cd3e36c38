"""Moments: the sufficient statistics of a sample for means and variances (count, sum, sum of squares), and
:class:`CrossMoments`, those of paired values (two Moments and the sum of products) for covariances."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self


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


@dataclass(frozen=True)
class CrossMoments:
    """``n`` pairs ``(x, y)``: the Moments of each and the sum of products ``total_xy``; two samples add up.

    What SQL returns per group for a covariance (``count(*), sum(x), sum(x*x), sum(y), sum(y*y), sum(x*y)``):
    a ratio metric's numerator and denominator, or a metric and its pre-period covariate. Subclasses add up into
    their own type.

    >>> c = CrossMoments.of([(1.0, 2.0), (2.0, 4.5), (3.0, 5.5)])
    >>> (c.n, round(c.covariance, 6))
    (3, 1.75)
    """

    x: Moments = Moments()
    y: Moments = Moments()
    total_xy: float = 0.0

    def __post_init__(self) -> None:
        if self.x.n != self.y.n:
            raise ValueError(f"paired moments need as many x as y values: {self.x.n} and {self.y.n}")

    @classmethod
    def of(cls, pairs: Iterable[tuple[float, float]]) -> Self:
        xs, ys = Moments(), Moments()
        total_xy = 0.0
        for x, y in pairs:
            xs, ys = xs + Moments(1, x, x * x), ys + Moments(1, y, y * y)
            total_xy += x * y
        return cls(xs, ys, total_xy)

    @classmethod
    def from_sums(cls, n: int, sum_x: float, sum_x2: float, sum_y: float, sum_y2: float, sum_xy: float) -> Self:
        """From the six sums of one SQL row."""
        return cls(Moments(n, sum_x, sum_x2), Moments(n, sum_y, sum_y2), sum_xy)

    def __add__(self, other: Self) -> Self:
        return type(self)(self.x + other.x, self.y + other.y, self.total_xy + other.total_xy)

    @property
    def n(self) -> int:
        return self.x.n

    @property
    def covariance(self) -> float:
        """The sample covariance (``ddof = 1``); nan below two pairs."""
        if self.n < 2:
            return math.nan
        return (self.total_xy - self.x.total * self.y.total / self.n) / (self.n - 1)
