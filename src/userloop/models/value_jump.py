"""The value jump (CLTV 跃迁, DOMAIN §4): what users who reached K orders did differently from users stuck at J.

Both groups are compared over the same stretch of their lives: from their first event to their J-th
purchase. "Reached" users have at least K purchases by ``as_of``; "stuck" users have exactly J and their
J-th is at least ``stuck_days`` old (they had time to buy again). Behaviours are the counts of each event
(other than the purchase and passive events), the distinct categories bought and the length of the period.
Each is ranked by the standardised mean difference (Cohen's d with the pooled standard deviation) and tested
with Welch's t-test; ``q_value`` is the Benjamini-Hochberg adjusted p-value over all behaviours (Benjamini &
Hochberg 1995). The statistics come from sufficient statistics (n, sum, sum of squares) per group.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from pydantic import Field, model_validator
from sqlglot import exp

from userloop.models.base import ModelConfig, NoDataError, RunContext, fetch_columns
from userloop.models.purchases import PurchaseSource
from userloop.store.sqlbuild import col, sql

__all__ = ["ValueJumpConfig", "value_jump"]


class ValueJumpConfig(ModelConfig):
    """Compare users who reached ``reached_orders`` with users stuck at ``stuck_orders``."""

    purchases: PurchaseSource = PurchaseSource()
    stuck_orders: int = Field(default=2, ge=1)
    reached_orders: int = Field(default=5, ge=2)
    stuck_days: int = Field(default=30, ge=0)
    #: Events that are not activity; None (the default): the project's passive events from its event registry.
    passive_events: tuple[str, ...] | None = None
    category_property: str | None = "category"
    min_group: int = Field(default=10, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> ValueJumpConfig:
        if self.reached_orders <= self.stuck_orders:
            raise ValueError("reached_orders must exceed stuck_orders")
        return self


def _behaviour_counts(ctx: RunContext, cfg: ValueJumpConfig) -> dict[str, Any]:
    """Per user of either group: the group, distinct categories, the period's days and event counts in it."""
    if cfg.category_property:
        ctx.require_property("events", cfg.category_property)
    stmt = sql(
        "WITH p AS (SELECT user_id, time, row_number() OVER (PARTITION BY user_id ORDER BY time, event_id) AS n "
        "FROM $events WHERE $purchases), "
        "t AS (SELECT user_id, count(*) AS orders, max(time) AS last FROM p GROUP BY user_id), "
        "g AS (SELECT p.user_id, p.time AS until, (t.orders >= $k) AS reached FROM p JOIN t USING (user_id) "
        "WHERE p.n = $j AND (t.orders >= $k OR (t.orders = $j AND t.last < $stuck_before))), "
        "c AS (SELECT g.user_id, e.event, count(*)::DOUBLE AS c "
        "FROM g JOIN $e ON e.user_id = g.user_id AND e.time <= g.until WHERE e.event <> $purchase AND $active "
        "GROUP BY ALL), "
        "s AS (SELECT g.user_id, any_value(g.reached) AS reached, count(DISTINCT $category)::DOUBLE AS categories, "
        "date_diff('second', min(e.time), any_value(g.until)) / 86400.0 AS days "
        "FROM g JOIN $e ON e.user_id = g.user_id AND e.time <= g.until GROUP BY g.user_id) "
        "SELECT s.user_id, s.reached, s.categories, s.days, coalesce(c.event, '') AS event, coalesce(c.c, 0) AS c "
        "FROM s LEFT JOIN c USING (user_id) ORDER BY s.user_id",
        events=ctx.events(),
        purchases=cfg.purchases.where(None, ctx.end),
        k=cfg.reached_orders,
        j=cfg.stuck_orders,
        stuck_before=ctx.day_start(ctx.as_of - timedelta(days=cfg.stuck_days - 1)),
        e=ctx.events("e"),
        purchase=cfg.purchases.event,
        active=ctx.active(cfg.passive_events, "e"),
        category=col(cfg.category_property, "e") if cfg.category_property else exp.null(),
    )
    return fetch_columns(ctx.project, stmt)


def value_jump(ctx: RunContext, cfg: ValueJumpConfig) -> dict[str, Any]:
    """Behaviours ranked by how much users who reached K orders differed in their first J orders' period.

    Returns
    -------
    dict
        ``reached_users, stuck_users`` and ``behaviours``: a list of ``behaviour, mean_reached, mean_stuck,
        std_diff, p_value, q_value``, largest ``|std_diff|`` first.

    Raises
    ------
    NoDataError
        ``value_jump_small_group`` when either group has fewer than ``min_group`` users.
    """
    cols = _behaviour_counts(ctx, cfg)
    users, first = np.unique(cols["user_id"], return_index=True)
    reached = cols["reached"][first].astype(bool)
    if min(int(reached.sum()), int((~reached).sum())) < cfg.min_group:
        raise NoDataError(
            f"value jump needs at least {cfg.min_group} users in each group; found {int(reached.sum())} with "
            f"{cfg.reached_orders}+ orders and {int((~reached).sum())} stuck at {cfg.stuck_orders}",
            code="value_jump_small_group",
        )
    events, event_index = np.unique(cols["event"].astype(str), return_inverse=True)
    row = np.searchsorted(users, cols["user_id"])
    matrix = np.zeros((len(users), len(events)))
    np.add.at(matrix, (row, event_index), cols["c"])
    keep = (matrix.sum(axis=0) > 0) & (events != "")
    names = [f"events:{e}" for e in events[keep]] + ["distinct_categories", "period_days"]
    extra = np.column_stack([cols["categories"][first], cols["days"][first]])
    matrix = np.hstack([matrix[:, keep], extra])
    rows = _compare(matrix[reached], matrix[~reached], names)
    return {"reached_users": int(reached.sum()), "stuck_users": int((~reached).sum()), "behaviours": rows}


def _compare(a: Any, b: Any, names: list[str]) -> list[dict[str, Any]]:
    from scipy.stats import false_discovery_control, ttest_ind_from_stats

    na, nb = a.shape[0], b.shape[0]
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    va, vb = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
    pooled = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    d = np.divide(ma - mb, pooled, out=np.zeros_like(ma), where=pooled > 0)
    with np.errstate(all="ignore"):
        _, p = ttest_ind_from_stats(ma, np.sqrt(va), na, mb, np.sqrt(vb), nb, equal_var=False)
    p = np.where(np.isfinite(p), p, 1.0)
    q = false_discovery_control(p)
    order = np.argsort(-np.abs(d), kind="stable")
    return [
        {"behaviour": names[i], "mean_reached": float(ma[i]), "mean_stuck": float(mb[i]),
         "std_diff": float(d[i]), "p_value": float(p[i]), "q_value": float(q[i])}
        for i in order
    ]  # fmt: skip
