"""Customer-lifetime-value models: BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma, fitted by maximum likelihood.

Typical use::

    summary = summarise_transactions(ids, times, values, observation_end, time_unit_days=7)
    purchases = BetaGeoModel().fit(summary.frequency, summary.recency, summary.T)
    spend = GammaGammaModel().fit(summary.frequency, summary.monetary)
    clv = spend.customer_lifetime_value(purchases, summary.frequency, summary.recency, summary.T,
                                        summary.monetary, time_horizon_months=12, time_unit_days=7)
"""

from __future__ import annotations

from userloop.models.clv.base import CLVFitError, CLVInputError, CustomerData, FitResult
from userloop.models.clv.bgnbd import BetaGeoModel, BetaGeoParams
from userloop.models.clv.gammagamma import GammaGammaModel, GammaGammaParams, TransactionModel
from userloop.models.clv.mbgnbd import ModifiedBetaGeoModel, ModifiedBetaGeoParams
from userloop.models.clv.paretonbd import ParetoNBDModel, ParetoNBDParams
from userloop.models.clv.summary import (
    CalibrationHoldout,
    TransactionSummary,
    calibration_holdout,
    summarise_transactions,
)

__all__ = [
    "BetaGeoModel",
    "BetaGeoParams",
    "CLVFitError",
    "CLVInputError",
    "CalibrationHoldout",
    "CustomerData",
    "FitResult",
    "GammaGammaModel",
    "GammaGammaParams",
    "ModifiedBetaGeoModel",
    "ModifiedBetaGeoParams",
    "ParetoNBDModel",
    "ParetoNBDParams",
    "TransactionModel",
    "TransactionSummary",
    "calibration_holdout",
    "summarise_transactions",
]
