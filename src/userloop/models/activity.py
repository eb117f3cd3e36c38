"""Activity (DOMAIN §5 activity model): a recency-weighted activity score and a low-frequency flag.

The score is the share of the best possible recency-weighted active days in the last ``window_days`` local
days: ``100 · Σ_{active days d} 0.5^(age_d / half_life) / Σ_{a=0}^{W-1} 0.5^(a / half_life)``, where ``age_d``
is how many days before ``as_of`` the day was. A user active every day scores 100, one never active 0.
Low-frequency users (flag for activation campaigns) were active on at least one and at most
``low_frequency_max_days`` days of the window: still reachable, rarely engaged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field
from sqlglot import exp

from userloop.models.base import ModelConfig, NoDataError, Outputs, RunContext, UserModel, fetch_columns
from userloop.store.sqlbuild import literal, sql

__all__ = ["ActivityConfig", "ActivityModel"]


class ActivityConfig(ModelConfig):
    """Window, half-life of the recency weight, passive events and the low-frequency limit."""

    window_days: int = Field(default=30, ge=1, le=365)
    half_life_days: float = Field(default=7.0, gt=0)
    low_frequency_max_days: int = Field(default=3, ge=1)
    #: Events that are not activity; None (the default): the project's passive events from its event registry.
    passive_events: tuple[str, ...] | None = None
    session_event: str = "app_start"


class ActivityModel(UserModel[ActivityConfig]):
    """Per user seen up to ``as_of``: ``activity_score`` (0-100), ``active_days``, ``sessions``,
    ``low_frequency`` (bool)."""

    name = "activity"
    version = "activity-1"
    config_class: ClassVar[type[ModelConfig]] = ActivityConfig

    def compute(self, ctx: RunContext) -> Outputs:
        """Distinct active local days per user in the window, weighted by age, in one query."""
        cfg = self.config
        start = ctx.window_start(cfg.window_days)
        stmt = sql(
            "WITH days AS (SELECT DISTINCT user_id, $age AS age FROM $events "
            "WHERE time >= $start AND time < $end AND $active), "
            "scored AS (SELECT user_id, sum(pow(0.5, age / $half_life)) AS weight, count(*) AS active_days FROM days "
            "GROUP BY user_id), "
            "sessions AS (SELECT user_id, count(*) AS sessions FROM $events WHERE event = $session_event "
            "AND time >= $start AND time < $end GROUP BY user_id), "
            "seen AS (SELECT DISTINCT user_id FROM $events WHERE time < $end) "
            "SELECT user_id, coalesce(weight, 0)::DOUBLE AS weight, coalesce(active_days, 0)::BIGINT AS active_days, "
            "coalesce(sessions, 0)::BIGINT AS sessions FROM seen LEFT JOIN scored USING (user_id) "
            "LEFT JOIN sessions USING (user_id) ORDER BY user_id",
            age=ctx.days_ago("time"),
            events=ctx.events(),
            start=start,
            end=ctx.end,
            active=ctx.active(cfg.passive_events),
            half_life=exp.cast(literal(cfg.half_life_days), exp.DataType.Type.DOUBLE),
            session_event=cfg.session_event,
        )
        cols = fetch_columns(ctx.project, stmt)
        if len(cols["user_id"]) == 0:
            raise NoDataError(f"no users have events before the end of {ctx.as_of}", code="model_no_users")
        best = float(np.sum(0.5 ** (np.arange(cfg.window_days) / cfg.half_life_days)))
        score = np.round(100.0 * cols.pop("weight") / best, 4)
        low = (cols["active_days"] >= 1) & (cols["active_days"] <= cfg.low_frequency_max_days)
        columns = {"activity_score": score, **{k: cols[k] for k in ("active_days", "sessions")}, "low_frequency": low}
        report = {
            "users": len(score),
            "active_users": int((cols["active_days"] > 0).sum()),
            "low_frequency_users": int(low.sum()),
            "mean_score": float(score.mean()),
        }
        return Outputs(cols["user_id"], columns, report)
