"""Sample ratio mismatch: do the arms hold the shares of people the split promised?

Pearson's chi-square goodness of fit of the arms' counts to the planned weights, ``k − 1`` degrees of freedom
(Pearson 1900; for experiments, Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled
Experiments", KDD 2019). A mismatch means the assignment or the logging is broken, so every other number of the
experiment is suspect; the alert threshold is p < 0.001 (Fabijan et al. §4; GrowthBook's default
``srmThreshold``), strict because the check runs on every experiment every day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from userloop.core.errors import ValidationError

#: Below this p-value the split is reported as mismatched.
SRM_ALERT = 0.001


@dataclass(frozen=True)
class SampleRatio:
    """The chi-square ``statistic``, ``dof`` and ``p_value`` of the observed split; ``alert`` when p < the
    threshold. ``code`` is ``empty_arm`` (p 1, no alert) when nobody is assigned yet."""

    statistic: float
    dof: int
    p_value: float
    alert: bool
    code: str | None = None


def sample_ratio(counts: Sequence[int], weights: Sequence[float], threshold: float = SRM_ALERT) -> SampleRatio:
    """Test ``counts`` (people per arm) against the planned ``weights`` (any positive scale).

    >>> r = sample_ratio([5000, 5200], [0.5, 0.5])
    >>> (round(r.p_value, 5), r.alert)
    (0.04767, False)
    """
    if len(counts) != len(weights) or len(counts) < 2:
        raise ValidationError(
            f"a split needs one weight per arm and at least two arms: {len(counts)} counts, {len(weights)} weights",
            field="weights",
        )
    if min(weights) <= 0:
        raise ValidationError(f"every arm's weight must be positive: {list(weights)}", field="weights")
    total = sum(counts)
    dof = len(counts) - 1
    if total == 0:
        return SampleRatio(0.0, dof, 1.0, False, "empty_arm")
    from scipy.stats import chi2

    weight = sum(weights)
    expected = [w / weight * total for w in weights]
    statistic = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True))
    p = float(chi2.sf(statistic, dof))
    return SampleRatio(statistic, dof, p, p < threshold)
