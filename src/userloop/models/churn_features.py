"""Churn features and labels as of a snapshot day, read with one aggregation each.

Every feature of a snapshot ``t`` uses events before the end of local day ``t`` only, and the label uses the
purchases in the ``horizon_days`` local days after it, so a model trained on snapshots whose label windows end
before a later validation snapshot never sees the validation labels (no leakage).

Profiles are the *current* state, not a history: a flag that changes after what it predicts (``app_uninstalled``
is set after a user stops buying) would leak the future into past snapshots, so only ``profile_flags`` that do
not follow the outcome should be listed (default: ``push_enabled``, chosen at install). Push reachability as of
the snapshot comes from events instead: pushes delivered in the last 30 days (an uninstalled app receives none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from userloop.models.base import ModelConfig, RunContext, fetch_columns
from userloop.models.purchases import PurchaseSource
from userloop.schema.types import PropertyType
from userloop.store.sqltext import ident

__all__ = ["ChurnFeatures", "FeatureSet", "read_features", "read_labels"]


class ChurnFeatures(ModelConfig):
    """Where the behavioural features come from (event and property names of the project)."""

    purchases: PurchaseSource = PurchaseSource()
    session_event: str = "app_start"
    coupon_event: str = "coupon_used"
    push_event: str = "push_received"
    item_event: str = "order_item"
    category_property: str = "category"
    passive_events: tuple[str, ...] = ("push_received", "coupon_received")
    profile_flags: tuple[str, ...] = ("push_enabled",)
    recent_days: int = Field(default=30, ge=1, le=365)

    def validate_in(self, ctx: RunContext) -> None:
        self.purchases.validate_in(ctx)
        ctx.require_property("events", self.category_property, PropertyType.STRING)
        for flag in self.profile_flags:
            ctx.require_property("users", flag, PropertyType.BOOL)


@dataclass(frozen=True)
class FeatureSet:
    """Feature matrix of the customers of one snapshot, rows sorted by ``user_id``."""

    user_id: npt.NDArray[np.int64]
    names: list[str]
    matrix: npt.NDArray[np.float64]


def _terms(ctx: RunContext, cfg: ChurnFeatures) -> list[tuple[str, str, list[Any]]]:
    """(name, aggregate SQL, parameters) of the per-user aggregates, in SQL order."""
    src = cfg.purchases
    buy, bp = src.where(None, ctx.end)
    recent, rp = src.where(ctx.window_start(cfg.recent_days), ctx.end)
    before, pp = src.where(ctx.window_start(2 * cfg.recent_days), ctx.window_start(cfg.recent_days))
    since = ctx.window_start(cfg.recent_days)
    passive = ", ".join("?" for _ in cfg.passive_events) or "NULL"
    return [
        ("last_purchase", f"max(time) FILTER (WHERE {buy})", bp),
        ("first_purchase", f"min(time) FILTER (WHERE {buy})", bp),
        ("last_active", f"max(time) FILTER (WHERE event NOT IN ({passive}))", list(cfg.passive_events)),
        ("first_event", "min(time)", []),
        ("frequency", f"count(*) FILTER (WHERE {buy})", bp),
        ("monetary", f"coalesce(sum({src.money_sql()}) FILTER (WHERE {buy}), 0)", bp),
        ("orders_recent", f"count(*) FILTER (WHERE {recent})", rp),
        ("orders_before", f"count(*) FILTER (WHERE {before})", pp),
        ("sessions_recent", "count(*) FILTER (WHERE event = ? AND time >= ?)", [cfg.session_event, since]),
        ("events_recent", f"count(*) FILTER (WHERE event NOT IN ({passive}) AND time >= ?)",
         [*cfg.passive_events, since]),
        ("pushes_recent", "count(*) FILTER (WHERE event = ? AND time >= ?)", [cfg.push_event, since]),
        ("coupons_used", "count(*) FILTER (WHERE event = ?)", [cfg.coupon_event]),
        ("categories", f"count(DISTINCT {ident(cfg.category_property)}) FILTER (WHERE event = ?)", [cfg.item_event]),
    ]  # fmt: skip


def read_features(ctx: RunContext, cfg: ChurnFeatures) -> FeatureSet:
    """Features of every customer (at least one purchase) as of ``ctx.as_of``.

    Features: ``recency_days, frequency, monetary, avg_order_value, customer_days, seen_days, idle_days,
    orders_recent, orders_before, trend`` (recent minus previous window), ``sessions_recent, events_recent,
    pushes_recent, coupon_share, categories`` and one 0/1 column per profile flag (-1 when unknown).
    """
    terms = _terms(ctx, cfg)
    inner = ", ".join(f"{sql} AS {name}" for name, sql, _ in terms)
    params = [p for _, _, ps in terms for p in ps]
    flags = "".join(f", coalesce({ident('flag_' + f)}, -1) AS {ident('flag_' + f)}" for f in cfg.profile_flags)
    profile = ", ".join(["user_id", *(f"{ident(f)}::INTEGER AS {ident('flag_' + f)}" for f in cfg.profile_flags)])
    sql = (
        f"SELECT a.user_id, {ctx.days_ago_sql('last_purchase')} AS recency_days, "
        f"{ctx.days_ago_sql('first_purchase')} AS customer_days, {ctx.days_ago_sql('first_event')} AS seen_days, "
        f"coalesce({ctx.days_ago_sql('last_active')}, seen_days + 1) AS idle_days, "
        "frequency, monetary, orders_recent, orders_before, sessions_recent, events_recent, pushes_recent, "
        f"coupons_used, categories{flags} "
        f"FROM (SELECT user_id, {inner} FROM {ctx.events} WHERE time < ? GROUP BY user_id) a "
        f"LEFT JOIN (SELECT {profile} FROM {ctx.users}) u USING (user_id) WHERE frequency > 0 ORDER BY a.user_id"
    )
    cols = fetch_columns(ctx.project, sql, [*params, ctx.end])
    return _assemble(cols, cfg)


def _assemble(cols: dict[str, npt.NDArray[Any]], cfg: ChurnFeatures) -> FeatureSet:
    user_id = cols.pop("user_id").astype(np.int64)
    f = {k: v.astype(np.float64) for k, v in cols.items()}
    freq = np.maximum(f["frequency"], 1.0)
    f["avg_order_value"] = f["monetary"] / freq
    f["trend"] = f["orders_recent"] - f["orders_before"]
    f["coupon_share"] = np.minimum(f.pop("coupons_used") / freq, 1.0)
    names = list(f)
    matrix = np.column_stack([f[n] for n in names]) if user_id.size else np.zeros((0, len(names)))
    return FeatureSet(user_id, names, np.ascontiguousarray(matrix))


def read_labels(ctx: RunContext, cfg: ChurnFeatures, user_id: npt.NDArray[np.int64], horizon_days: int) -> Any:
    """1 where a user made no purchase in the ``horizon_days`` local days after ``ctx.as_of``, else 0."""
    start = ctx.end
    stop = ctx.day_start(ctx.as_of + timedelta(days=horizon_days + 1))
    where, params = cfg.purchases.where(start, stop)
    bought = fetch_columns(ctx.project, f"SELECT DISTINCT user_id FROM {ctx.events} WHERE {where}", params)["user_id"]
    return (~np.isin(user_id, bought)).astype(np.int8)


def snapshot_days(as_of: date, horizon_days: int, step_days: int, training: int) -> dict[str, Any]:
    """The snapshot days of one run: validation ``as_of - N``, calibration ``- 2N``, training before that.

    Each later period starts only after the label window of the earlier ones ends, so calibration and
    validation labels are never seen in training.
    """
    n = timedelta(days=horizon_days)
    calibration = as_of - 2 * n
    train = [calibration - n - timedelta(days=step_days * k) for k in range(training)]
    return {"train": train, "calibration": calibration, "validation": as_of - n, "score": as_of}
