"""Churn warning (DOMAIN §5): probability that a customer makes no purchase in the next N days.

The target, stated in every report (``target``): for a customer (at least one purchase by the end of the as-of
day ``T``), ``churn_probability`` estimates P(no purchase event in the ``horizon_days`` local days after ``T``),
i.e. in ``(T, T+N]``. It is an observable outcome, so the score can be calibrated and checked on it; it is not
the probability of having dropped out for good (a live customer with a low purchase rate may also not buy in
N days; the CLV model's ``p_alive`` estimates that). The report's ``validation`` holds the out-of-time AUC and
ECE of the calibrated score on that outcome.

Time-based design with no leakage (see :func:`~userloop.models.churn_features.snapshot_days`): for a run on
``T`` with horizon ``N``, gradient-boosted trees (Friedman 2001; histogram variant as in LightGBM, Ke et al.
2017) learn from training snapshots whose label windows end by ``T - 2N``; an isotonic (or Platt) map fitted
on the snapshot ``T - 2N`` (labels in ``(T-2N, T-N]``) calibrates them; the snapshot ``T - N`` (labels in
``(T-N, T]``) is the validation the report's AUC, PR-AUC, Brier, ECE and top-decile lift come from. Customers
on ``T`` are then scored and put in risk tiers (``low < thresholds[0] <= medium < thresholds[1] <= high``).

Drivers per user, a documented cheap attribution instead of SHAP: permutation importance of each feature on
the validation snapshot (drop in AUC when the column is shuffled, Breiman 2001) times the user's standardised
deviation from the scored population, signed by the direction in which that feature moves the risk (Spearman
sign on validation); the three largest positive contributions are the user's drivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from userloop.models.base import ModelConfig, NoDataError, Outputs, RunContext, UserModel
from userloop.models.churn_features import ChurnFeatures, FeatureSet, read_features, read_labels, snapshot_days
from userloop.models.evaluation import Calibrator, classification_report

__all__ = ["TIERS", "ChurnConfig", "ChurnModel"]

TIERS = ("low", "medium", "high")
FloatArray = npt.NDArray[np.float64]


class ChurnConfig(ModelConfig):
    """Label horizon, snapshots, learner and risk thresholds."""

    features: ChurnFeatures = ChurnFeatures()
    horizon_days: int = Field(default=30, ge=1, le=365)
    training_snapshots: int = Field(default=4, ge=1, le=52)
    snapshot_step_days: int = Field(default=7, ge=1, le=365)
    max_iter: int = Field(default=60, ge=1, le=5000)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    max_leaf_nodes: int = Field(default=15, ge=2, le=255)
    min_samples_leaf: int = Field(default=80, ge=1)
    calibration: Literal["isotonic", "platt"] = "isotonic"
    thresholds: tuple[float, float] = (0.4, 0.7)
    importance_sample: int = Field(default=50_000, ge=100)
    seed: int = 0

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> ChurnConfig:
        low, high = self.thresholds
        if not 0 < low < high < 1:
            raise ValueError(f"thresholds must satisfy 0 < low < high < 1, got {self.thresholds}")
        return self


@dataclass(frozen=True)
class FittedChurn:
    """A trained churn learner with its calibration, driver weights and the validation report."""

    learner: Any
    calibrator: Calibrator
    weight: FloatArray
    report: dict[str, Any]


class ChurnModel(UserModel[ChurnConfig]):
    """Churn probability, risk tier and top drivers of every customer on ``as_of``.

    Outputs: ``churn_probability, risk_tier, driver_1, driver_2, driver_3``. The report has the validation
    metrics, the snapshot days, the feature importances and the tier sizes.
    """

    name = "churn"
    version = "churn-1"
    config_class: ClassVar[type[ModelConfig]] = ChurnConfig

    def compute(self, ctx: RunContext) -> Outputs:
        """Train, calibrate, validate and score; see the module docstring."""
        fitted = self.fit(ctx)
        scored = read_features(ctx, self.config.features)
        if scored.user_id.size == 0:
            raise NoDataError(f"no customers to score on {ctx.as_of}", code="model_no_purchases")
        columns = self.score(fitted, scored)
        tiers = np.unique(columns["risk_tier"], return_counts=True)
        report = {**fitted.report, "tiers": dict(zip(tiers[0].tolist(), tiers[1].tolist(), strict=True))}
        return Outputs(scored.user_id, columns, report)

    def fit(self, ctx: RunContext) -> FittedChurn:
        """Learn on the training snapshots, calibrate on the next period, validate on the one after."""
        cfg = self.config
        cfg.features.validate_in(ctx)
        days = snapshot_days(ctx.as_of, cfg.horizon_days, cfg.snapshot_step_days, cfg.training_snapshots)
        x_train, y_train = self._stack(ctx, days["train"])
        learner = self._fit(x_train, y_train)
        calibrator = self._calibrate(ctx, days["calibration"], learner)
        valid, y_valid = self._labelled(ctx, days["validation"])
        p_valid = calibrator.transform(_raw(learner, valid.matrix))
        importance = permutation_importance(learner, valid, y_valid, cfg.seed, sample=cfg.importance_sample)
        report = {
            "target": target_text(cfg),
            "snapshots": {k: [str(d) for d in v] if isinstance(v, list) else str(v) for k, v in days.items()},
            "training_rows": int(y_train.shape[0]),
            "validation": classification_report(y_valid, p_valid),
            "feature_importance": dict(zip(valid.names, np.round(importance, 5).tolist(), strict=True)),
            "learner": "sklearn.HistGradientBoostingClassifier",
        }  # fmt: skip
        weight = importance * _directions(valid.matrix, p_valid)
        return FittedChurn(learner, calibrator, weight, report)

    def score(self, fitted: FittedChurn, feats: FeatureSet) -> dict[str, npt.NDArray[Any]]:
        """Calibrated probability, risk tier and top drivers of each row of ``feats``."""
        p = fitted.calibrator.transform(_raw(fitted.learner, feats.matrix))
        tier = np.searchsorted(np.asarray(self.config.thresholds), p, side="right")
        return {"churn_probability": p, "risk_tier": np.array(TIERS)[tier], **top_drivers(feats, fitted.weight)}

    def _labelled(self, ctx: RunContext, day: date) -> tuple[FeatureSet, npt.NDArray[np.int8]]:
        snap = RunContext(ctx.project, day, ctx.timezone)
        feats = read_features(snap, self.config.features)
        return feats, read_labels(snap, self.config.features, feats.user_id, self.config.horizon_days)

    def _stack(self, ctx: RunContext, days: list[date]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        parts = [self._labelled(ctx, d) for d in days]
        x = np.vstack([f.matrix for f, _ in parts])
        y = np.concatenate([lab for _, lab in parts])
        if y.shape[0] < 20 or not 0 < int(y.sum()) < y.shape[0]:
            raise NoDataError(
                f"the training snapshots ({days[0]} back to {days[-1]}) hold {y.shape[0]} customers with "
                f"{int(y.sum())} churned; churn needs both outcomes: use more history (at least 3 horizons plus "
                "the training snapshots) or a shorter horizon_days",
                code="churn_not_enough_history",
            )
        return x, y

    def _fit(self, x: FloatArray, y: npt.NDArray[np.int8]) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        cfg = self.config
        learner = HistGradientBoostingClassifier(
            max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, max_leaf_nodes=cfg.max_leaf_nodes,
            min_samples_leaf=cfg.min_samples_leaf, early_stopping=False, random_state=cfg.seed,
        )  # fmt: skip
        return learner.fit(x, y)

    def _calibrate(self, ctx: RunContext, day: date, learner: Any) -> Calibrator:
        feats, y = self._labelled(ctx, day)
        return Calibrator(self.config.calibration).fit(_raw(learner, feats.matrix), y)


def target_text(cfg: ChurnConfig) -> str:
    """What ``churn_probability`` estimates, in words, for the report."""
    return (
        f"probability that a customer with at least one {cfg.features.purchases.event!r} makes none in the "
        f"{cfg.horizon_days} local days after the as-of day"
    )


def _raw(learner: Any, x: FloatArray) -> FloatArray:
    if x.shape[0] == 0:
        return np.zeros(0)
    return np.asarray(learner.predict_proba(x)[:, 1], dtype=np.float64)


def permutation_importance(
    learner: Any, feats: FeatureSet, y: npt.NDArray[Any], seed: int, *, sample: int = 50_000
) -> FloatArray:
    """Drop in validation AUC when each feature column is shuffled (Breiman 2001); 0 when AUC is undefined.

    At most ``sample`` random rows are used, which bounds the cost at ``n_features`` predictions of them.

    Returns
    -------
    numpy.ndarray
        One non-negative importance per feature.
    """
    from sklearn.metrics import roc_auc_score

    x = feats.matrix
    rng = np.random.default_rng(seed)
    if x.shape[0] > sample:
        rows = rng.choice(x.shape[0], sample, replace=False)
        x, y = x[rows], y[rows]
    if not 0 < int(y.sum()) < y.shape[0]:
        return np.zeros(x.shape[1])
    base = roc_auc_score(y, _raw(learner, x))
    out = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        shuffled = x.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        out[j] = max(0.0, base - roc_auc_score(y, _raw(learner, shuffled)))
    return out


def _directions(x: FloatArray, p: FloatArray) -> FloatArray:
    """Sign of the rank correlation of each feature with the predicted risk (0 when undefined)."""
    from scipy.stats import rankdata

    if x.shape[0] < 2:
        return np.zeros(x.shape[1])
    rp = rankdata(p) - (x.shape[0] + 1) / 2
    rx = np.apply_along_axis(rankdata, 0, x) - (x.shape[0] + 1) / 2
    return np.sign(rp @ rx)


def top_drivers(feats: FeatureSet, weight: FloatArray, k: int = 3) -> dict[str, npt.NDArray[Any]]:
    """The ``k`` features that push each user's risk up most: ``weight_j · z_ij``, positive ones only."""
    x = feats.matrix
    sd = x.std(axis=0)
    z = np.divide(x - x.mean(axis=0), sd, out=np.zeros_like(x), where=sd > 0)
    contrib = z * weight
    k = min(k, x.shape[1])
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    names = np.array([*feats.names, ""])
    picked = np.take_along_axis(contrib, order, axis=1)
    order = np.where(picked > 0, order, len(feats.names))
    return {f"driver_{i + 1}": names[order[:, i]] for i in range(k)}
