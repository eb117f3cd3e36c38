"""Evaluating and calibrating probability scores: AUC, PR-AUC, Brier, ECE, top-decile lift; isotonic and Platt.

References: Fawcett (2006) for ROC AUC; Brier (1950); Naeini, Cooper & Hauskrecht (2015) for the expected
calibration error over equal-width bins; Zadrozny & Elkan (2002) for isotonic calibration; Platt (1999) for
sigmoid calibration. Metrics that are undefined on the data (one class only) are ``None`` in the report
rather than an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Calibrator",
    "calibration_bins",
    "classification_report",
    "expected_calibration_error",
    "top_decile_lift",
]

FloatArray = npt.NDArray[np.float64]


def expected_calibration_error(y: npt.NDArray[Any], p: FloatArray, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins: ``Σ_b (n_b / n) |mean(y_b) - mean(p_b)|``.

    Examples
    --------
    >>> expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0]))
    0.0
    """
    n = y.shape[0]
    if n == 0:
        return 0.0
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.bincount(which, weights=y.astype(np.float64), minlength=bins) - np.bincount(
        which, weights=p, minlength=bins
    )
    return float(np.abs(gap).sum() / n)


def top_decile_lift(y: npt.NDArray[Any], p: FloatArray) -> float | None:
    """Positive rate among the 10 % highest scores divided by the overall rate (None without positives)."""
    base = float(y.mean()) if y.shape[0] else 0.0
    if base == 0.0:
        return None
    k = max(1, int(np.ceil(0.1 * y.shape[0])))
    top = np.argpartition(-p, k - 1)[:k]
    return float(y[top].mean() / base)


def calibration_bins(y: npt.NDArray[Any], p: FloatArray, bins: int = 10) -> list[dict[str, Any]]:
    """A reliability diagram over quantile bins: people sorted by ``p`` (ties in input order) cut into ``bins``
    groups of (nearly) equal size, the person of rank ``k`` (0-based) of ``n`` in group ``k * bins // n``.

    Returns
    -------
    list of dict
        Per non-empty group, lowest ``p`` first: ``predicted`` (mean ``p``), ``observed`` (mean ``y``, the
        observed rate) and ``users``; the users add up to ``n``.

    Examples
    --------
    >>> bins = calibration_bins(np.array([0, 1, 1, 1]), np.array([0.25, 0.75, 0.5, 1.0]), bins=2)
    >>> [(b["predicted"], b["observed"], b["users"]) for b in bins]
    [(0.375, 0.5, 2), (0.875, 1.0, 2)]
    """
    n = y.shape[0]
    group = np.empty(n, dtype=np.int64)
    group[np.argsort(p, kind="stable")] = np.arange(n) * bins // max(n, 1)
    users = np.bincount(group, minlength=bins)
    sum_p = np.bincount(group, weights=p, minlength=bins)
    sum_y = np.bincount(group, weights=y.astype(np.float64), minlength=bins)
    return [
        {"predicted": float(sum_p[g] / users[g]), "observed": float(sum_y[g] / users[g]), "users": int(users[g])}
        for g in np.flatnonzero(users)
    ]


def classification_report(y: npt.NDArray[Any], p: FloatArray) -> dict[str, Any]:
    """AUC, PR-AUC (average precision), Brier score, ECE (10 bins), top-decile lift, the base rate and the
    reliability diagram over deciles of ``p`` (``calibration``, :func:`calibration_bins`)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    two_classes = y.shape[0] > 0 and 0 < int(y.sum()) < y.shape[0]
    return {
        "users": int(y.shape[0]),
        "positive_rate": float(y.mean()) if y.shape[0] else None,
        "auc": float(roc_auc_score(y, p)) if two_classes else None,
        "pr_auc": float(average_precision_score(y, p)) if two_classes else None,
        "brier": float(np.mean((p - y) ** 2)) if y.shape[0] else None,
        "ece": expected_calibration_error(y, p),
        "top_decile_lift": top_decile_lift(y, p),
        "calibration": calibration_bins(y, p),
    }


@dataclass
class Calibrator:
    """Maps raw scores to calibrated probabilities, fitted on a held-out period.

    ``isotonic``: a monotone step function (Zadrozny & Elkan 2002); ``platt``: a logistic curve on the
    log-odds of the raw score (Platt 1999). With one class only in the held-out data it is the identity.
    """

    method: Literal["isotonic", "platt"] = "isotonic"
    _model: Any = None

    def fit(self, raw: FloatArray, y: npt.NDArray[Any]) -> Calibrator:
        """Fit on raw scores ``raw`` and outcomes ``y`` of the held-out period."""
        if not (0 < int(y.sum()) < y.shape[0]):
            self._model = None
            return self
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self._model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        else:
            from sklearn.linear_model import LogisticRegression

            self._model = LogisticRegression(C=1e6).fit(_logit(raw)[:, None], y)
        return self

    def transform(self, raw: FloatArray) -> FloatArray:
        """Calibrated probabilities of raw scores."""
        if self._model is None:
            return raw
        if self.method == "isotonic":
            return np.asarray(self._model.predict(raw), dtype=np.float64)
        return np.asarray(self._model.predict_proba(_logit(raw)[:, None])[:, 1], dtype=np.float64)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)
