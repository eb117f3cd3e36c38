"""The sufficient statistics of one arm of an experiment for one metric, as SQL returns them per arm.

Each is a small frozen value object that adds up (days, strata or shards into the whole), so a report sums rows
rather than re-reading people. Four kinds, as GrowthBook's engine distinguishes them
(``gbstats/models/statistics.py``; the formulas here are written from the papers cited):

- :class:`Proportion`: conversions out of ``n`` people; variance ``p (1 − p)`` (the Bernoulli variance).
- :class:`userloop.stats.Moments`: a per-person value (revenue, orders): ``n``, sum, sum of squares; the sample
  variance.
- :class:`Ratio`: a ratio of per-person sums (revenue per order, clicks per session): the numerator's and the
  denominator's Moments and their sum of products. Its per-person variance is the delta method's
  (Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics", KDD 2018, §3):
  ``Var(m/d) ≈ σ²_m/μ_d² − 2 μ_m σ_md/μ_d³ + μ_m² σ²_d/μ_d⁴``.
- :class:`Cuped`: a metric and its pre-period covariate with their sum of products, for CUPED (Deng, Xu, Kohavi &
  Walker, "Improving the Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM
  2013); the adjustment ``θ`` is pooled over the arms (:mod:`userloop.experiment.stats.cuped`).
- :class:`CupedRatio`: a ratio metric during the experiment and the same ratio before it: the two
  :class:`Ratio` and the four cross-period sums of products, so every covariance of the four per-person values
  is known (CUPED on a ratio metric by the delta method, Deng et al. 2018 §4.2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from userloop.core.errors import ValidationError
from userloop.stats import CrossMoments, Moments


@dataclass(frozen=True)
class Proportion:
    """``conversions`` out of ``n`` people (a 0/1 metric per person).

    >>> (Proportion(10, 3) + Proportion(10, 1)).mean
    0.2
    """

    n: int = 0
    conversions: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.conversions <= self.n:
            raise ValidationError(
                f"conversions must lie between 0 and the people counted: {self.conversions} of {self.n}",
                field="conversions",
            )

    def __add__(self, other: Proportion) -> Proportion:
        return Proportion(self.n + other.n, self.conversions + other.conversions)

    @property
    def mean(self) -> float:
        return self.conversions / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """``p (1 − p)``: the Bernoulli variance, as GrowthBook's ``ProportionStatistic`` uses it."""
        p = self.mean
        return p * (1.0 - p) if self.n else math.nan


@dataclass(frozen=True)
class Ratio(CrossMoments):
    """Per person a numerator ``x`` and a denominator ``y`` (e.g. revenue and orders); the metric is
    ``Σx / Σy``.

    >>> r = Ratio.from_sums(3, 30.0, 500.0, 3.0, 5.0, 45.0)
    >>> r.mean
    10.0
    """

    @property
    def numerator(self) -> Moments:
        return self.x

    @property
    def denominator(self) -> Moments:
        return self.y

    @property
    def mean(self) -> float:
        return self.x.total / self.y.total if self.y.total else math.nan

    @property
    def variance(self) -> float:
        """The delta method's per-person variance of ``x̄ / ȳ`` (Deng et al. 2018, eq. 4); nan when the
        denominator averages 0 or there are fewer than two people."""
        mean_y = self.y.mean
        if self.n < 2 or mean_y == 0:
            return math.nan
        mean_x = self.x.mean
        return (
            self.x.variance / mean_y**2
            - 2 * mean_x * self.covariance / mean_y**3
            + mean_x**2 * self.y.variance / mean_y**4
        )


@dataclass(frozen=True)
class Cuped(CrossMoments):
    """Per person the metric ``x`` during the experiment and a covariate ``y`` from before it (usually the same
    metric in the pre-period), with their sum of products. A 0/1 metric is given as its Moments (sum of squares
    = sum); its variance is then the sample variance, ``n/(n − 1)`` times the ``p (1 − p)`` GrowthBook uses for
    a CUPED proportion.

    >>> Cuped.from_sums(2, 3.0, 5.0, 1.0, 1.0, 2.0).metric.mean
    1.5
    """

    @property
    def metric(self) -> Moments:
        return self.x

    @property
    def covariate(self) -> Moments:
        return self.y

    def adjusted_variance(self, theta: float) -> float:
        """The per-person variance of ``x − θ y``: ``σ²_x + θ² σ²_y − 2 θ σ_xy`` (Deng et al. 2013, eq. 3)."""
        return self.x.variance + theta**2 * self.y.variance - 2 * theta * self.covariance


@dataclass(frozen=True)
class CupedRatio:
    """Per person a ratio metric's numerator and denominator during the experiment (``post``) and before it
    (``pre``), with the four sums of products across the periods (``Σ m_post m_pre``, ``Σ m_post d_pre``,
    ``Σ d_post m_pre``, ``Σ d_post d_pre``).

    >>> c = CupedRatio.of([(4.0, 2.0, 3.0, 1.0), (6.0, 2.0, 5.0, 3.0)])
    >>> (c.n, c.means, c.post.mean)
    (2, (5.0, 2.0, 4.0, 2.0), 2.5)
    """

    post: Ratio = Ratio()
    pre: Ratio = Ratio()
    num_num: float = 0.0
    num_den: float = 0.0
    den_num: float = 0.0
    den_den: float = 0.0

    def __post_init__(self) -> None:
        if self.post.n != self.pre.n:
            raise ValueError(f"the two periods need as many people: {self.post.n} and {self.pre.n}")

    @classmethod
    def of(cls, rows: Iterable[tuple[float, float, float, float]]) -> CupedRatio:
        """From per-person ``(numerator, denominator, numerator before, denominator before)``."""
        listed = list(rows)
        post = Ratio.of((m, d) for m, d, _, _ in listed)
        pre = Ratio.of((m, d) for _, _, m, d in listed)
        sums = [sum(r[i] * r[j] for r in listed) for i, j in ((0, 2), (0, 3), (1, 2), (1, 3))]
        return cls(post, pre, *sums)

    def __add__(self, other: CupedRatio) -> CupedRatio:
        return CupedRatio(
            self.post + other.post,
            self.pre + other.pre,
            self.num_num + other.num_num,
            self.num_den + other.num_den,
            self.den_num + other.den_num,
            self.den_den + other.den_den,
        )

    @property
    def n(self) -> int:
        return self.post.n

    @property
    def means(self) -> tuple[float, float, float, float]:
        """The per-person means of (numerator, denominator, numerator before, denominator before)."""
        return self.post.x.mean, self.post.y.mean, self.pre.x.mean, self.pre.y.mean

    @property
    def covariances(self) -> tuple[tuple[float, ...], ...]:
        """The 4 × 4 sample covariance matrix (``ddof = 1``) of the four per-person values, in :attr:`means`'
        order."""
        moments = (self.post.x, self.post.y, self.pre.x, self.pre.y)
        products = {
            (0, 1): self.post.total_xy,
            (2, 3): self.pre.total_xy,
            (0, 2): self.num_num,
            (0, 3): self.num_den,
            (1, 2): self.den_num,
            (1, 3): self.den_den,
        }
        n = self.n

        def cov(i: int, j: int) -> float:
            if i == j or n < 2:
                return moments[i].variance if i == j else math.nan
            total = products[(min(i, j), max(i, j))]
            return (total - moments[i].total * moments[j].total / n) / (n - 1)

        return tuple(tuple(cov(i, j) for j in range(4)) for i in range(4))


#: The sufficient statistics :func:`userloop.experiment.stats.lift.lift` compares (one kind for both arms).
Arm = Proportion | Moments | Ratio | Cuped | CupedRatio
