"""Corrections for many comparisons in one experiment: every metric against control in every arm.

Each (metric, arm) p-value is one test of the family; :func:`adjust` applies Holm's step-down (controls the
family-wise error rate; Holm 1979) or Benjamini–Hochberg's step-up (controls the false discovery rate; Benjamini
& Hochberg 1995) through :func:`userloop.stats.adjust_p`. Neutral results (a code, no test) are left out of the
family and keep p = 1: a metric that could not be tested should not make the others' bar higher.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

from userloop.stats import Correction, adjust_p

K = TypeVar("K", bound=Hashable)


def adjust(p_values: Mapping[K, float | None], method: Correction = "holm") -> dict[K, float]:
    """The adjusted p-value of each key (e.g. ``(metric, arm)``); ``None`` (an untested comparison) stays 1.

    >>> adjust({("orders", "sms"): 0.01, ("orders", "push"): 0.04, ("gmv", "sms"): 0.03, ("gmv", "push"): None})
    {('orders', 'sms'): 0.03, ('orders', 'push'): 0.06, ('gmv', 'sms'): 0.06, ('gmv', 'push'): 1.0}
    """
    tested = {k: p for k, p in p_values.items() if p is not None}
    out = dict.fromkeys(p_values, 1.0)
    if tested:
        out.update(zip(tested, adjust_p(list(tested.values()), method).tolist(), strict=True))
    return out
