"""Customer lifetime value per customer: BG/NBD purchases and P(alive) with Gamma-Gamma spend.

Runs the fitted models of :mod:`userloop.models.clv` on the project's purchases: BG/NBD (Fader, Hardie & Lee
2005) for the expected purchases in the next ``horizon_days`` days and the probability of being alive, and
Gamma-Gamma (Fader & Hardie 2013) for the expected spend per purchase, combined into a discounted CLV over
``clv_months`` months. Purchases on the same local day merge into one (daily periods).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from userloop.models.base import ModelConfig, Outputs, RunContext, UserModel, fetch_columns
from userloop.models.clv import BetaGeoModel, GammaGammaModel, summarise_transactions
from userloop.models.purchases import PurchaseSource, require_rows

__all__ = ["CLVConfig", "CLVRunModel"]


class CLVConfig(ModelConfig):
    """Purchases to read, forecast horizon, CLV months and monthly discount rate."""

    purchases: PurchaseSource = PurchaseSource()
    horizon_days: int = Field(default=90, ge=1, le=3650)
    clv_months: int = Field(default=12, ge=1, le=120)
    discount_rate_monthly: float = Field(default=0.01, ge=0, lt=1)


class CLVRunModel(UserModel[CLVConfig]):
    """Per customer: ``frequency, recency_days, age_days, monetary`` (the FHL summary, in days),
    ``expected_purchases`` in ``horizon_days``, ``p_alive``, ``expected_spend`` and ``clv``.

    Raises :class:`~userloop.models.clv.CLVFitError` (a ``UserloopError`` with a stable ``code``) when the
    data do not identify the models (nobody bought twice, every customer alike).
    """

    name = "clv"
    version = "clv-1"
    config_class: ClassVar[type[ModelConfig]] = CLVConfig

    @property
    def output_name(self) -> str:
        return "clv" + self.config.purchases.suffix()

    def compute(self, ctx: RunContext) -> Outputs:
        """Summarise purchases by local day, fit BG/NBD and Gamma-Gamma, predict per customer."""
        cfg = self.config
        src = cfg.purchases
        src.validate_in(ctx)
        where, params = src.where(None, ctx.end)
        day = ctx.local_day_sql("time")
        rows = fetch_columns(
            ctx.project,
            f"SELECT user_id, date_diff('day', DATE '1970-01-01', {day})::DOUBLE AS day, "
            f"{src.money_sql()}::DOUBLE AS amount FROM {ctx.events} WHERE {where}",
            params,
        )
        require_rows(len(rows["user_id"]), f"{src.event} purchases", ctx)
        end_day = float((ctx.as_of - ctx.as_of.replace(year=1970, month=1, day=1)).days)
        s = summarise_transactions(rows["user_id"], rows["day"], rows["amount"], end_day, time_unit_days=1)
        bg = BetaGeoModel().fit(s.frequency, s.recency, s.T)
        gg = GammaGammaModel().fit(s.frequency, s.monetary)
        columns: dict[str, Any] = {
            "frequency": s.frequency, "recency_days": s.recency, "age_days": s.T, "monetary": s.monetary,
            "expected_purchases": bg.conditional_expected_purchases(cfg.horizon_days, s.frequency, s.recency, s.T),
            "p_alive": bg.probability_alive(s.frequency, s.recency, s.T),
            "expected_spend": gg.conditional_expected_average_profit(s.frequency, s.monetary),
            "clv": gg.customer_lifetime_value(
                bg, s.frequency, s.recency, s.T, s.monetary, time_horizon_months=cfg.clv_months,
                discount_rate_monthly=cfg.discount_rate_monthly, time_unit_days=1,
            ),
        }  # fmt: skip
        report = {
            "customers": s.n_customers,
            "bgnbd": bg.params.as_dict(),
            "gamma_gamma": gg.params.as_dict(),
            "total_clv": float(np.sum(columns["clv"])),
            "mean_p_alive": float(np.mean(columns["p_alive"])),
        }
        return Outputs(np.asarray(s.customer_id, dtype=np.int64), columns, report)
