"""Multiple-comparison corrections of p-values.

References: Holm (1979), Scand. J. Statist. 6, 65–70; Benjamini & Hochberg (1995), JRSS B 57, 289–300.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from userloop.core.errors import ValidationError

Correction = Literal["bh", "holm", "bonferroni"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "holm", "bonferroni")


def adjust_p(p: list[float] | np.ndarray, method: Correction = "bh") -> np.ndarray:
    """p-values adjusted for ``m`` tests.

    ``bonferroni``: ``min(1, m p)``. ``holm``: sorted ascending, ``p̃_(i) = max_{j≤i} min(1, (m − j + 1) p_(j))``.
    ``bh``: ``p̃_(i) = min_{j≥i} min(1, m p_(j) / j)``.

    >>> adjust_p([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    values = np.asarray(p, dtype=np.float64)
    m = values.shape[0]
    if m == 0:
        return values
    if method == "bonferroni":
        return np.minimum(1.0, values * m)
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    rank = np.arange(1, m + 1)
    if method == "holm":
        adjusted = np.maximum.accumulate((m - rank + 1) * ranked)
    elif method == "bh":
        adjusted = np.minimum.accumulate((ranked * m / rank)[::-1])[::-1]
    else:
        raise ValidationError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
    out = np.empty(m)
    out[order] = np.minimum(1.0, adjusted)
    return out
