"""Customer lifetime value per customer: a validated purchase-count model with Gamma-Gamma spend.

Runs the fitted models of :mod:`userloop.models.clv` on the project's purchases. The purchase-count model is
BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein, Morrison & Colombo 1987) or MBG/NBD (Batislam,
Denizel & Filiztekin 2007); with ``clv_model="auto"`` (the default) it is chosen by the calibration/holdout
validation of :mod:`userloop.models.clv.validation`, whose table and reason the report keeps. The chosen model
gives the expected purchases in the next ``horizon_days`` days and the probability of being alive; Gamma-Gamma
(Fader & Hardie 2013) gives the expected spend per purchase; their product is the expected value over the
horizon, and the discounted CLV over ``clv_months`` months uses the same two. Purchases on the same local day
merge into one (daily periods), so every time parameter is in days.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field

from userloop.models.base import ModelConfig, Outputs, RunContext, UserModel, fetch_columns
from userloop.models.clv import GammaGammaModel, TransactionSummary, summarise_transactions
from userloop.models.clv.base import CLVFitError, CLVInputError
from userloop.models.clv.validation import CANDIDATES, PurchaseModel, choose_model, make_model, validate_candidates
from userloop.models.purchases import PurchaseSource, require_rows
from userloop.store.sqlbuild import sql

__all__ = ["CLV_MODELS", "CLVConfig", "CLVRunModel", "value_histogram"]

#: Accepted values of ``clv_model``.
CLV_MODELS = ("auto", "bgnbd", "paretonbd", "mbgnbd")
ClvChoice = Literal["auto", "bgnbd", "paretonbd", "mbgnbd"]


class CLVConfig(ModelConfig):
    """Purchases to read, purchase model, forecast horizon, validation holdout, CLV months and discount rate.

    ``holdout_days`` (default: the horizon, at most a third of the observed days) is the end of the log kept
    aside to validate the candidates; ``validate=False`` skips the validation when a model is named.
    """

    purchases: PurchaseSource = PurchaseSource()
    clv_model: ClvChoice = "auto"
    horizon_days: int = Field(default=90, ge=1, le=3650)
    holdout_days: int | None = Field(default=None, ge=7, le=3650)
    validate_models: bool = True
    clv_months: int = Field(default=12, ge=1, le=120)
    discount_rate_monthly: float = Field(default=0.01, ge=0, lt=1)


class CLVRunModel(UserModel[CLVConfig]):
    """Per customer: ``frequency, recency_days, age_days, monetary`` (the FHL summary, in days),
    ``expected_purchases`` and ``expected_value`` in ``horizon_days``, ``p_alive``, ``expected_spend`` and
    ``clv``.

    ``p_alive`` estimates the probability that the customer has not dropped out by the end of the as-of day;
    ``expected_purchases`` the purchase days in the ``horizon_days`` days after it; ``expected_value`` that
    times ``expected_spend`` (undiscounted); ``clv`` the discounted value over ``clv_months`` months.

    Raises :class:`~userloop.models.clv.CLVFitError` (a ``UserloopError`` with a stable ``code``) when the
    data do not identify the models (nobody bought twice, every customer alike).
    """

    name = "clv"
    version = "clv-2"
    config_class: ClassVar[type[ModelConfig]] = CLVConfig

    @property
    def output_name(self) -> str:
        return "clv" + self.config.purchases.suffix()

    def compute(self, ctx: RunContext) -> Outputs:
        """Summarise purchases by local day, validate and choose, fit on everything, predict per customer."""
        rows, end_day = self._purchases(ctx)
        s = summarise_transactions(rows["user_id"], rows["day"], rows["amount"], end_day, time_unit_days=1)
        choice, validation = self._choose(rows, end_day)
        model = self._fit_chosen(choice, validation, s)
        spend = GammaGammaModel().fit(s.frequency, s.monetary)
        columns = self._columns(s, model, spend)
        report = {
            "customers": s.n_customers,
            "horizon_days": self.config.horizon_days,
            "transaction_model": {"name": choice["model"], "params": model.params.as_dict(),
                                  "log_likelihood": float(model.result.log_likelihood)},
            "choice": choice,
            "validation": validation,
            "gamma_gamma": spend.params.as_dict(),
            "expected_purchases_total": float(np.sum(columns["expected_purchases"])),
            "expected_value_total": float(np.sum(columns["expected_value"])),
            "total_clv": float(np.sum(columns["clv"])),
            "mean_p_alive": float(np.mean(columns["p_alive"])),
            "distribution": value_histogram(columns["clv"]),
            "estimates": ESTIMATES,
        }  # fmt: skip
        return Outputs(np.asarray(s.customer_id, dtype=np.int64), columns, report)

    def _purchases(self, ctx: RunContext) -> tuple[dict[str, Any], float]:
        src = self.config.purchases
        src.validate_in(ctx)
        stmt = sql(
            "SELECT user_id, date_diff('day', DATE '1970-01-01', $day)::DOUBLE AS day, "
            "$money::DOUBLE AS amount FROM $events WHERE $purchases",
            day=ctx.local_day("time"),
            money=src.amount(),
            events=ctx.events(),
            purchases=src.where(None, ctx.end),
        )
        rows = fetch_columns(ctx.project, stmt)
        require_rows(len(rows["user_id"]), f"{src.event} purchases", ctx)
        end_day = float((ctx.as_of - ctx.as_of.replace(year=1970, month=1, day=1)).days)
        return rows, end_day

    def _holdout(self, rows: dict[str, Any], end_day: float) -> int | None:
        """The holdout length, or None when the log is too short (under 21 days) to validate on."""
        span = end_day - float(np.min(rows["day"]))
        wanted = self.config.holdout_days or min(self.config.horizon_days, int(span // 3))
        if wanted < 7 or span - wanted < 14:
            return None
        return int(wanted)

    def _choose(self, rows: dict[str, Any], end_day: float) -> tuple[dict[str, Any], dict[str, Any] | None]:
        cfg = self.config
        named = cfg.clv_model != "auto"
        holdout = self._holdout(rows, end_day) if (cfg.validate_models or not named) else None
        validation = None
        if holdout is not None:
            try:
                validation = validate_candidates(rows["user_id"], rows["day"], end_day, holdout, tuple(CANDIDATES))
            except CLVInputError:
                validation = None
        if named:
            return {"model": cfg.clv_model, "mode": "named", "reason": "named by the clv_model option"}, (
                None if validation is None else validation.as_dict()
            )
        if validation is None:
            why = "too little history to hold any out (fewer than 21 days); MBG/NBD is the default"
            return {"model": "mbgnbd", "mode": "auto", "reason": why}, None
        try:
            chosen, reason = choose_model(validation)
        except CLVFitError as exc:
            chosen, reason = "mbgnbd", f"{exc.message}; MBG/NBD is the default"
        return {"model": chosen, "mode": "auto", "reason": reason}, validation.as_dict()

    def _fit_chosen(
        self, choice: dict[str, Any], validation: dict[str, Any] | None, s: TransactionSummary
    ) -> PurchaseModel:
        """Fit the chosen model on all the data; in ``auto`` mode, fall back to the next candidate if it cannot.

        The next candidates are the validated ones by decile error, then the rest. ``choice`` records a fallback.
        """
        order = [choice["model"]]
        if choice["mode"] == "auto":
            done = {} if validation is None else validation["candidates"]
            ranked = sorted((n for n, c in done.items() if "error" not in c), key=lambda n: done[n]["decile_error"])
            order += [n for n in dict.fromkeys([*ranked, *CANDIDATES]) if n not in order]
        failures: list[str] = []
        for name in order:
            try:
                model = make_model(name).fit(s.frequency, s.recency, s.T)
            except CLVFitError as exc:
                if name == order[-1]:
                    raise
                failures.append(f"{name}: {exc.code}")
                continue
            if failures:
                choice.update(model=name, fallback=f"could not fit on all the data ({'; '.join(failures)})")
            return model
        raise AssertionError("unreachable: the last candidate either returns or raises")

    def _columns(self, s: TransactionSummary, model: PurchaseModel, spend: GammaGammaModel) -> dict[str, Any]:
        cfg = self.config
        expected = model.conditional_expected_purchases(cfg.horizon_days, s.frequency, s.recency, s.T)
        per_purchase = spend.conditional_expected_average_profit(s.frequency, s.monetary)
        return {
            "frequency": s.frequency, "recency_days": s.recency, "age_days": s.T, "monetary": s.monetary,
            "expected_purchases": expected,
            "p_alive": model.probability_alive(s.frequency, s.recency, s.T),
            "expected_spend": per_purchase,
            "expected_value": expected * per_purchase,
            "clv": spend.customer_lifetime_value(
                model, s.frequency, s.recency, s.T, s.monetary, time_horizon_months=cfg.clv_months,
                discount_rate_monthly=cfg.discount_rate_monthly, time_unit_days=1,
            ),
        }  # fmt: skip


def value_histogram(values: npt.NDArray[Any], bins: int = 20, top: float = 99.0) -> list[dict[str, Any]]:
    """People per equal-width bin of ``values`` between 0 and their ``top`` percentile, plus one open bin above.

    Bin ``i`` holds ``edges[i] <= v < edges[i + 1]`` (``edges = linspace(0, p, bins + 1)``, ``p`` the
    percentile, linear interpolation); the last bin, ``{"from": p, "to": None}``, holds ``v >= p``, so a long
    tail does not squash the rest into one bar. Values below 0 count in the first bin; NaNs are left out, so
    the counts add up to the people with a finite value. When ``p <= 0`` there is only the open bin.

    Returns
    -------
    list of dict
        ``{"from", "to", "count"}``, ``to`` None for the open bin; [] when no value is finite.

    Examples
    --------
    >>> [b["count"] for b in value_histogram(np.array([0.0, 1.0, 2.0, 100.0]), bins=2, top=50.0)]
    [1, 1, 2]
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    high = float(np.percentile(v, top))
    if high <= 0:
        return [{"from": high, "to": None, "count": int(v.size)}]
    edges = np.linspace(0.0, high, bins + 1)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins)
    counts = np.bincount(which, minlength=bins + 1).tolist()
    return [{"from": float(edges[i]), "to": float(edges[i + 1]) if i < bins else None, "count": counts[i]}
            for i in range(bins + 1)]  # fmt: skip


#: What each output estimates, stored in the report so that an operator reading it knows.
ESTIMATES = {
    "p_alive": "probability that the customer has not dropped out for good by the end of the as-of day",
    "expected_purchases": "expected purchase days in the horizon_days days after the as-of day",
    "expected_spend": "expected value of one purchase (Gamma-Gamma posterior mean)",
    "expected_value": "expected_purchases times expected_spend: undiscounted value over the horizon",
    "clv": "discounted expected value over clv_months months",
}
