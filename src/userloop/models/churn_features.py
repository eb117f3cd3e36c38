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
from sqlglot import exp

from userloop.models.base import ModelConfig, RunContext, fetch_columns
from userloop.models.purchases import PurchaseSource
from userloop.schema.types import PropertyType
from userloop.store.sqlbuild import col, sql

__all__ = ["ChurnFeatures", "FeatureSet", "read_features", "read_labels"]


class ChurnFeatures(ModelConfig):
    """Where the behavioural features come from (event and property names of the project)."""

    purchases: PurchaseSource = PurchaseSource()
    session_event: str = "app_start"
    coupon_event: str = "coupon_used"
    push_event: str = "push_received"
    item_event: str = "order_item"
    category_property: str = "category"
    #: Events that are not activity; None (the default): the project's passive events from its event registry.
    passive_events: tuple[str, ...] | None = None
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


def _terms(ctx: RunContext, cfg: ChurnFeatures) -> list[tuple[str, exp.Expr]]:
    """(name, aggregate) of the per-user aggregates, in select order."""
    src = cfg.purchases
    buy = src.where(None, ctx.end)
    recent = src.where(ctx.window_start(cfg.recent_days), ctx.end)
    before = src.where(ctx.window_start(2 * cfg.recent_days), ctx.window_start(cfg.recent_days))
    since = ctx.window_start(cfg.recent_days)
    active = ctx.active(cfg.passive_events)
    count_since = "count(*) FILTER (WHERE event = $event AND time >= $since)"
    return [
        ("last_purchase", sql("max(time) FILTER (WHERE $buy)", buy=buy)),
        ("first_purchase", sql("min(time) FILTER (WHERE $buy)", buy=buy)),
        ("last_active", sql("max(time) FILTER (WHERE $active)", active=active)),
        ("first_event", sql("min(time)")),
        ("frequency", sql("count(*) FILTER (WHERE $buy)", buy=buy)),
        ("monetary", sql("coalesce(sum($amount) FILTER (WHERE $buy), 0)", amount=src.amount(), buy=buy)),
        ("orders_recent", sql("count(*) FILTER (WHERE $recent)", recent=recent)),
        ("orders_before", sql("count(*) FILTER (WHERE $before)", before=before)),
        ("sessions_recent", sql(count_since, event=cfg.session_event, since=since)),
        ("events_recent", sql("count(*) FILTER (WHERE $active AND time >= $since)", active=active, since=since)),
        ("pushes_recent", sql(count_since, event=cfg.push_event, since=since)),
        ("coupons_used", sql("count(*) FILTER (WHERE event = $event)", event=cfg.coupon_event)),
        ("categories", sql("count(DISTINCT $category) FILTER (WHERE event = $event)",
                           category=col(cfg.category_property), event=cfg.item_event)),
    ]  # fmt: skip


def read_features(ctx: RunContext, cfg: ChurnFeatures) -> FeatureSet:
    """Features of every customer (at least one purchase) as of ``ctx.as_of``.

    Features: ``recency_days, frequency, monetary, avg_order_value, customer_days, seen_days, idle_days,
    orders_recent, orders_before, trend`` (recent minus previous window), ``sessions_recent, events_recent,
    pushes_recent, coupon_share, categories`` and one 0/1 column per profile flag (-1 when unknown).
    """
    flags = [f"flag_{f}" for f in cfg.profile_flags]
    # the last columns: categories, then one per profile flag (a list the template splices, never empty)
    tail = [col("categories"), *(exp.alias_(sql("coalesce($f, -1)", f=col(f)), f, quoted=True) for f in flags)]
    profile = [col("user_id"), *(exp.alias_(sql("$p::INTEGER", p=col(p)), f, quoted=True)
                                 for p, f in zip(cfg.profile_flags, flags, strict=True))]  # fmt: skip
    stmt = sql(
        "SELECT a.user_id, $recency AS recency_days, $customer AS customer_days, $seen AS seen_days, "
        "coalesce($idle, seen_days + 1) AS idle_days, frequency, monetary, orders_recent, orders_before, "
        "sessions_recent, events_recent, pushes_recent, coupons_used, $tail "
        "FROM (SELECT user_id, $aggregates FROM $events WHERE time < $end GROUP BY user_id) a "
        "LEFT JOIN (SELECT $profile FROM $users) u USING (user_id) WHERE frequency > 0 ORDER BY a.user_id",
        recency=ctx.days_ago("last_purchase"),
        customer=ctx.days_ago("first_purchase"),
        seen=ctx.days_ago("first_event"),
        idle=ctx.days_ago("last_active"),
        tail=tail,
        aggregates=[exp.alias_(term, name) for name, term in _terms(ctx, cfg)],
        events=ctx.events(),
        end=ctx.end,
        profile=profile,
        users=ctx.users(),
    )
    return _assemble(fetch_columns(ctx.project, stmt), cfg)


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
    stmt = sql(
        "SELECT DISTINCT user_id FROM $events WHERE $purchases",
        events=ctx.events(),
        purchases=cfg.purchases.where(start, stop),
    )
    bought = fetch_columns(ctx.project, stmt)["user_id"]
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
