"""Choosing a purchase-count model by a calibration/holdout validation (Fader, Hardie & Lee 2005; Batislam,
Denizel & Filiztekin 2007).

The transaction log up to the as-of day is cut at ``cutoff = end - holdout``: every candidate (BG/NBD,
Pareto/NBD, MBG/NBD) is fitted on the customers known by the cutoff and their purchases up to it, and predicts
each one's repeat purchases in the holdout (its conditional expectation) and P(alive) at the cutoff. The
comparison is what the papers show: predicted against actual purchases in aggregate and by decile of predicted
purchases (the "conditional expectations" view), plus how well P(alive) ranks the customers who did buy again
in the holdout (AUC; buying again proves being alive, not buying does not prove being gone, so this is a
ranking check, not a calibration one).

Rule of the automatic choice: the *forecast error* of a candidate is ``Σ_d |pred_d - actual_d| / Σ_d actual_d``
over the ten deciles (it includes the aggregate bias and how well the forecast separates heavy from light
buyers). Candidates within :data:`ERROR_TOLERANCE` of the smallest error forecast equally well; among them
the one whose P(alive) ranks the holdout buyers best (highest AUC) wins, so an operator gets the model whose
P(alive) discriminates best without giving up forecast accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from userloop.models.clv.base import CLVFitError, FloatArray
from userloop.models.clv.bgnbd import BetaGeoModel
from userloop.models.clv.mbgnbd import ModifiedBetaGeoModel
from userloop.models.clv.paretonbd import ParetoNBDModel
from userloop.models.clv.summary import CalibrationHoldout, calibration_holdout

__all__ = [
    "CANDIDATES",
    "ERROR_TOLERANCE",
    "ClvModelName",
    "Validation",
    "choose_model",
    "decile_table",
    "make_model",
    "rank_auc",
    "validate_candidates",
]

ClvModelName = Literal["bgnbd", "paretonbd", "mbgnbd"]
PurchaseModel = BetaGeoModel | ParetoNBDModel | ModifiedBetaGeoModel

#: The candidates, in the order used to break exact ties.
CANDIDATES: dict[str, type[PurchaseModel]] = {
    "mbgnbd": ModifiedBetaGeoModel,
    "bgnbd": BetaGeoModel,
    "paretonbd": ParetoNBDModel,
}
#: Forecast errors within this much (absolute, on the decile error) of the best count as equally good.
ERROR_TOLERANCE = 0.05
DECILES = 10


def make_model(name: str) -> PurchaseModel:
    """A new, unfitted purchase model by name (``bgnbd``, ``paretonbd`` or ``mbgnbd``)."""
    return CANDIDATES[name]()


def rank_auc(y: npt.NDArray[Any], score: FloatArray) -> float | None:
    """ROC AUC of ``score`` for binary ``y`` from mid-ranks (Mann-Whitney; Fawcett 2006); None with one class."""
    from scipy.stats import rankdata

    pos = int(np.sum(y))
    neg = int(y.shape[0]) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[y.astype(bool)].sum() - pos * (pos + 1) / 2) / (pos * neg))


def decile_table(predicted: FloatArray, actual: FloatArray) -> list[dict[str, float]]:
    """Mean predicted and actual purchases per decile of predicted purchases (1 = lowest prediction).

    Customers are sorted by prediction (ties broken by position, stable) and cut into ten groups of equal size.
    """
    order = np.argsort(predicted, kind="stable")
    rows = []
    for d, idx in enumerate(np.array_split(order, DECILES), start=1):
        if idx.size == 0:
            continue
        rows.append({
            "decile": d, "customers": int(idx.size),
            "predicted_mean": float(predicted[idx].mean()), "actual_mean": float(actual[idx].mean()),
        })  # fmt: skip
    return rows


def _decile_error(table: list[dict[str, float]]) -> float:
    pred = np.array([r["predicted_mean"] * r["customers"] for r in table])
    act = np.array([r["actual_mean"] * r["customers"] for r in table])
    return float(np.abs(pred - act).sum() / max(float(act.sum()), 1e-12))


@dataclass(frozen=True)
class Validation:
    """The validation of every candidate and the split it was run on."""

    cutoff_day: float
    holdout_days: float
    customers: int
    actual_total: float
    candidates: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "holdout_days": self.holdout_days, "customers": self.customers,
            "actual_holdout_purchases": self.actual_total, "candidates": self.candidates,
        }  # fmt: skip


def _validate_one(name: str, split: CalibrationHoldout) -> dict[str, Any]:
    cal = split.calibration
    try:
        model = make_model(name).fit(cal.frequency, cal.recency, cal.T)
    except CLVFitError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    pred = model.conditional_expected_purchases(split.duration_holdout, cal.frequency, cal.recency, cal.T)
    alive = model.probability_alive(cal.frequency, cal.recency, cal.T)
    actual = split.frequency_holdout
    table = decile_table(pred, actual)
    total = float(actual.sum())
    return {
        "params": model.params.as_dict(),
        "log_likelihood": float(model.result.log_likelihood),
        "predicted_holdout_purchases": float(pred.sum()),
        "aggregate_error": float(pred.sum() / total - 1.0) if total > 0 else None,
        "decile_error": _decile_error(table),
        "p_alive_auc_bought_again": rank_auc((actual > 0).astype(np.int8), alive),
        "deciles": table,
    }


def validate_candidates(
    customer_ids: npt.ArrayLike,
    days: npt.ArrayLike,
    end_day: float,
    holdout_days: int,
    names: tuple[str, ...] = tuple(CANDIDATES),
) -> Validation:
    """Fit each candidate on the purchases up to ``end_day - holdout_days`` and score it on the rest.

    Parameters
    ----------
    customer_ids, days : array_like
        One entry per purchase: the customer and the day number (days since 1970-01-01, local calendar).
    end_day : float
        Day number of the last observed day.
    holdout_days : int
        Length of the holdout at the end of the log.
    names : tuple of str
        Candidates to validate.

    Returns
    -------
    Validation
        Per candidate: fitted parameters, predicted vs actual holdout purchases in aggregate and by decile,
        the decile error and the P(alive) AUC against buying again; or the fit error.

    Raises
    ------
    CLVInputError
        When the split leaves no calibration period.
    """
    cutoff = float(end_day - holdout_days)
    split = calibration_holdout(customer_ids, days, None, cutoff, float(end_day), time_unit_days=1)
    results = {name: _validate_one(name, split) for name in names}
    return Validation(
        cutoff, split.duration_holdout, split.calibration.n_customers, float(split.frequency_holdout.sum()), results
    )


def choose_model(validation: Validation) -> tuple[str, str]:
    """The candidate to use and why, by the rule of the module docstring.

    Raises
    ------
    CLVFitError
        ``clv_no_valid_candidate`` when no candidate could be fitted on the calibration period.
    """
    # a NaN decile error (a holdout with no purchases to compare) compares false with everything: not a candidate
    ok = {n: c for n, c in validation.candidates.items() if "error" not in c and not np.isnan(c["decile_error"])}
    if not ok:
        raise CLVFitError(
            "no CLV model could be fitted on the calibration period; the reasons are in the validation table",
            code="clv_no_valid_candidate",
        )
    best_error = min(c["decile_error"] for c in ok.values())
    close = [n for n, c in ok.items() if c["decile_error"] <= best_error + ERROR_TOLERANCE]
    chosen = max(close, key=lambda n: (ok[n]["p_alive_auc_bought_again"] or 0.0, -ok[n]["decile_error"]))
    errors = ", ".join(f"{n} {ok[n]['decile_error']:.3f}" for n in ok)
    aucs = ", ".join(f"{n} {ok[n]['p_alive_auc_bought_again'] or float('nan'):.3f}" for n in close)
    reason = (
        f"holdout of {validation.holdout_days:g} days: decile forecast error {errors}; within "
        f"{ERROR_TOLERANCE} of the best: {', '.join(close)}; among those the P(alive) AUC against buying again "
        f"is {aucs}, highest for {chosen}"
    )
    return chosen, reason
