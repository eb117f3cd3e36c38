"""Scores from ranks that treat ties fairly, and the median split of the 8-class RFM.

Many users share a value (most customers bought once, so F = 1 for half of them); a rule that cuts a sorted list
at fixed positions would give equal users different scores. Every rule here depends only on a user's value and
the multiset of all values, so equal values always get equal scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

__all__ = ["above_median", "mid_rank_scores"]


def mid_rank_scores(
    values: npt.NDArray[Any], levels: int = 5, *, higher_is_better: bool = True
) -> npt.NDArray[np.int8]:
    """Scores 1..``levels`` from the mid-rank percentile of each value (ties share their average rank).

    The score of a value is ``floor(levels * (r - 0.5) / n) + 1`` where ``r`` is its average 1-based rank
    among the ``n`` values (the Hazen plotting position ``(r - 0.5) / n`` lies in (0, 1)). Equal values
    share one average rank and so one score; a single user, or users who are all alike, score the middle
    level (3 of 5); scores need not use every level when there are many ties.

    Parameters
    ----------
    values : numpy.ndarray
        One finite value per user.
    levels : int
        Number of score levels (5 for the classic RFM quintiles).
    higher_is_better : bool
        False for recency in days, where a smaller value earns a higher score.

    Returns
    -------
    numpy.ndarray
        ``int8`` scores in ``1..levels``.

    Examples
    --------
    >>> mid_rank_scores(np.array([1, 1, 1, 1, 5, 9])).tolist()
    [2, 2, 2, 2, 4, 5]
    """
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    keyed = values if higher_is_better else -values
    ranks = rankdata(keyed, method="average")
    scores = np.floor(levels * (ranks - 0.5) / n).astype(np.int64) + 1
    return np.clip(scores, 1, levels).astype(np.int8)


def above_median(values: npt.NDArray[Any], *, higher_is_better: bool = True) -> npt.NDArray[np.bool_]:
    """True where a value is strictly better than the median of all values ("high" in the 8-class RFM).

    Strictly better keeps the split tie-safe and meaningful: when most customers bought once the median
    frequency is 1 and only repeat buyers are "high"; when every value is equal nobody is.

    Examples
    --------
    >>> above_median(np.array([1, 1, 1, 2, 3])).tolist()
    [False, False, False, True, True]
    """
    if values.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    median = np.median(values)
    return np.asarray(values > median if higher_is_better else values < median)
