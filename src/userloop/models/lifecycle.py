"""Lifecycle stages (DOMAIN §4): introduction, growth, maturity, dormancy, churn, on any date.

The stage of a user on ``as_of`` comes from events before the end of that local day only, so it can be
computed for any past date, and :func:`transition_matrix` compares two dates. The rules, first match wins:

1. **churn 流失期**: no purchase for more than ``churn_days`` days (users who never bought: no activity
   for more than ``churn_days``);
2. **dormancy 休眠期**: as above with ``dormant_days``;
3. **introduction 引入期**: has not bought yet (and was active within ``dormant_days``);
4. **maturity 成熟期**: at least ``mature_orders`` purchases in the last ``maturity_window_days`` days and a
   customer for at least ``mature_tenure_days`` days;
5. **growth 成长期**: every other buyer.

"Days" are whole local days between the event's day and ``as_of`` in the project's time zone. Activity is any
event except those in ``passive_events`` (things done *to* the user, such as a push being delivered).

The defaults fit the simulator's ground truth (``tests/models/test_lifecycle_sim.py``): with purchase rates
λ ~ Gamma(0.9, 15) per day, an alive customer goes 60 days without a purchase with probability
``E[exp(-60 λ)]`` ≈ 0.23 and 30 days with ≈ 0.38; the test checks that most "churn" users have really
dropped out and that "maturity" users have higher true purchase rates than "growth" users.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from userloop.core.clock import DEFAULT_TIMEZONE
from userloop.models.base import (
    ModelConfig,
    NoDataError,
    Outputs,
    RunContext,
    UserModel,
    fetch_columns,
    table_exists,
)
from userloop.models.purchases import PurchaseSource
from userloop.store import ProjectStore
from userloop.store.sqlbuild import sql

__all__ = [
    "STAGES",
    "LifecycleConfig",
    "LifecycleModel",
    "TransitionMatrix",
    "assign_stages",
    "count_transitions",
    "stage_index",
    "transition_matrix",
]

#: Stage codes in lifecycle order, with their (zh, en) names.
STAGES: dict[str, tuple[str, str]] = {
    "introduction": ("引入期", "Introduction"),
    "growth": ("成长期", "Growth"),
    "maturity": ("成熟期", "Maturity"),
    "dormancy": ("休眠期", "Dormancy"),
    "churn": ("流失期", "Churn"),
}
_CODES = np.array(list(STAGES))
INTRODUCTION, GROWTH, MATURITY, DORMANCY, CHURN = range(5)


class LifecycleConfig(ModelConfig):
    """Stage rules; see the module docstring for their order."""

    purchases: PurchaseSource = PurchaseSource()
    dormant_days: int = Field(default=30, ge=1)
    churn_days: int = Field(default=60, ge=1)
    mature_orders: int = Field(default=4, ge=1)
    maturity_window_days: int = Field(default=90, ge=1)
    mature_tenure_days: int = Field(default=30, ge=0)
    #: Events that are not activity; None (the default): the project's passive events from its event registry.
    passive_events: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if self.churn_days <= self.dormant_days:
            raise ValueError(f"churn_days ({self.churn_days}) must exceed dormant_days ({self.dormant_days})")
        return self


def assign_stages(
    config: LifecycleConfig,
    *,
    days_since_active: npt.NDArray[Any],
    days_since_purchase: npt.NDArray[Any],
    orders: npt.NDArray[Any],
    recent_orders: npt.NDArray[Any],
    customer_days: npt.NDArray[Any],
) -> npt.NDArray[np.int8]:
    """Stage index (into :data:`STAGES`) of each user from the rule inputs (``-1`` days = never).

    ``days_since_purchase`` and ``customer_days`` are ignored where ``orders`` is 0.
    """
    buyer = orders > 0
    idle = np.where(buyer, days_since_purchase, np.where(days_since_active < 0, 1 << 30, days_since_active))
    mature = (recent_orders >= config.mature_orders) & (customer_days >= config.mature_tenure_days)
    conditions = [idle > config.churn_days, idle > config.dormant_days, ~buyer, mature]
    return np.select(conditions, [CHURN, DORMANCY, INTRODUCTION, MATURITY], GROWTH).astype(np.int8)


class LifecycleModel(UserModel[LifecycleConfig]):
    """Lifecycle stage of every user seen up to ``as_of``.

    Outputs: ``stage`` (code), ``stage_zh``, ``days_since_active``, ``days_since_purchase`` (-1: never),
    ``orders``, ``recent_orders``, ``customer_days`` (days since the first purchase, -1: never).
    """

    name = "lifecycle"
    version = "lifecycle-1"
    config_class: ClassVar[type[ModelConfig]] = LifecycleConfig

    @property
    def output_name(self) -> str:
        return "lifecycle" + self.config.purchases.suffix()

    def compute(self, ctx: RunContext) -> Outputs:
        """One aggregation over the events up to ``as_of``, then the rules in numpy; the report adds the flows
        between stages since the previous run (:meth:`transitions`)."""
        user_id, stage, cols = self.stages(ctx)
        zh = np.array([v[0] for v in STAGES.values()])
        columns = {"stage": _CODES[stage], "stage_zh": zh[stage], **cols}
        counts = np.bincount(stage, minlength=len(STAGES))
        report = {"users": len(user_id), "stages": dict(zip(STAGES, counts.tolist(), strict=True))}
        return Outputs(user_id, columns, report | self.transitions(ctx, user_id, stage))

    def stages(self, ctx: RunContext) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8], dict[str, Any]]:
        """Users seen up to ``ctx.as_of`` (sorted), the index of each one's stage and the rule inputs.

        Raises
        ------
        NoDataError
            ``model_no_users`` when nobody has an event before the end of ``as_of``.
        """
        self.config.purchases.validate_in(ctx)
        cols = read_lifecycle_inputs(ctx, self.config)
        if len(cols["user_id"]) == 0:
            raise NoDataError(f"no users have events before the end of {ctx.as_of}", code="model_no_users")
        user_id = cols.pop("user_id")
        return user_id, assign_stages(self.config, **cols), cols

    def transitions(
        self, ctx: RunContext, user_id: npt.NDArray[np.int64], stage: npt.NDArray[np.int8]
    ) -> dict[str, Any]:
        """The report's flows from each user's stage before to their stage on ``as_of``.

        "Before" is the latest stored run of this model before ``as_of``; without one, the stages computed for
        ``as_of - dormant_days`` (the model's shortest period, in which an idle user turns dormant), as
        :func:`transition_matrix` compares two dates. Users first seen after that day come from ``"new"``.
        When nobody had a stage then, the list is empty and ``transitions_note`` says why.

        Returns
        -------
        dict
            ``transitions`` (``{"from", "to", "users"}`` per non-empty flow, staying put included),
            ``transitions_period`` (``from_date, to_date, source``: ``previous_run`` or ``period_start``) and,
            when there is nothing to compare with, ``transitions_note`` (``{"en", "zh"}``).
        """
        before = _previous_run(ctx, self.output_name, self.version)
        source = "previous_run"
        if before is None:
            source = "period_start"
            before = self._stages_on(ctx, ctx.as_of - timedelta(days=self.config.dormant_days))
        from_day, before_ids, before_stage = before
        period = {"from_date": from_day.isoformat(), "to_date": ctx.as_of.isoformat(), "source": source}
        if before_ids.size == 0:
            return {"transitions": [], "transitions_period": period, "transitions_note": _no_previous_note(from_day)}
        counts = count_transitions(before_ids, before_stage, user_id, stage)
        rows = [*STAGES, "new"]
        flows = [
            {"from": rows[i], "to": _CODES[j].item(), "users": int(counts[i, j])} for i, j in np.argwhere(counts > 0)
        ]
        return {"transitions": flows, "transitions_period": period}

    def _stages_on(self, ctx: RunContext, day: date) -> tuple[date, npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        try:
            user_id, stage, _ = self.stages(RunContext(ctx.project, day, ctx.timezone))
        except NoDataError as exc:
            if exc.code != "model_no_users":
                raise
            return day, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)
        return day, user_id, stage


def _previous_run(
    ctx: RunContext, output_name: str, version: str
) -> tuple[date, npt.NDArray[np.int64], npt.NDArray[np.int8]] | None:
    """The day, users and stage indices of the latest stored run of this version before ``as_of`` (None: none)."""
    table = ctx.project.ref(f"model_{output_name}")
    if not table_exists(ctx.project, f"model_{output_name}"):
        return None
    last = sql("SELECT max(run_date) FROM $outputs WHERE run_date < ? AND model_version = ?", outputs=table)
    day = ctx.project.scalar(last, [ctx.as_of, version])
    if day is None:
        return None
    stmt = sql("SELECT user_id, stage FROM $outputs WHERE run_date = ? ORDER BY user_id", outputs=table)
    cols = fetch_columns(ctx.project, stmt, [day])
    return day, cols["user_id"].astype(np.int64), stage_index(cols["stage"])


def _no_previous_note(day: date) -> dict[str, str]:
    return {
        "en": f"No earlier stages to compare with: this is the first run and nobody had an event by {day}.",
        "zh": f"没有可对比的上一期阶段：这是第一次计算，且截至 {day} 还没有任何用户产生事件。",
    }


def stage_index(codes: npt.NDArray[Any]) -> npt.NDArray[np.int8]:
    """Index into :data:`STAGES` of each stage code (``ValueError`` on a code that is not a stage)."""
    order = np.argsort(_CODES)
    pos = np.clip(np.searchsorted(_CODES[order], codes), 0, len(_CODES) - 1)
    index = order[pos]
    if not np.array_equal(_CODES[index], np.asarray(codes, dtype=_CODES.dtype)):
        raise ValueError(f"unknown lifecycle stage codes in {sorted(set(np.asarray(codes).tolist()))}")
    return index.astype(np.int8)


def count_transitions(
    before_ids: npt.NDArray[np.int64],
    before_stage: npt.NDArray[Any],
    after_ids: npt.NDArray[np.int64],
    after_stage: npt.NDArray[Any],
) -> npt.NDArray[np.int64]:
    """Users by (stage before, stage after): a ``(len(STAGES) + 1) × len(STAGES)`` matrix whose last row is the
    users without a stage before. Both id arrays are sorted; users known before but not after are left out."""
    from_stage = np.full(after_ids.shape[0], len(STAGES), dtype=np.int64)
    if after_ids.size and before_ids.size:
        pos = np.clip(np.searchsorted(after_ids, before_ids), 0, after_ids.shape[0] - 1)
        hit = after_ids[pos] == before_ids
        from_stage[pos[hit]] = before_stage[hit]
    counts = np.zeros((len(STAGES) + 1, len(STAGES)), dtype=np.int64)
    np.add.at(counts, (from_stage, after_stage.astype(np.int64)), 1)
    return counts


def read_lifecycle_inputs(ctx: RunContext, config: LifecycleConfig) -> dict[str, npt.NDArray[Any]]:
    """Per-user rule inputs as of ``ctx.as_of``, sorted by user (days are -1 where there is no such event)."""
    src = config.purchases
    purchase = src.where(None, ctx.end)
    stmt = sql(
        "SELECT user_id, coalesce($since_active, -1)::BIGINT AS days_since_active, "
        "coalesce($since_purchase, -1)::BIGINT AS days_since_purchase, "
        "orders::BIGINT AS orders, recent_orders::BIGINT AS recent_orders, "
        "coalesce($customer_days, -1)::BIGINT AS customer_days "
        "FROM (SELECT user_id, max(time) FILTER (WHERE $active) AS last_active, "
        "max(time) FILTER (WHERE $purchase) AS last_purchase, min(time) FILTER (WHERE $purchase) AS first_purchase, "
        "count(*) FILTER (WHERE $purchase) AS orders, count(*) FILTER (WHERE $recent) AS recent_orders "
        "FROM $events WHERE time < $end GROUP BY user_id) ORDER BY user_id",
        since_active=ctx.days_ago("last_active"),
        since_purchase=ctx.days_ago("last_purchase"),
        customer_days=ctx.days_ago("first_purchase"),
        active=ctx.active(config.passive_events),
        purchase=purchase,
        recent=src.where(ctx.window_start(config.maturity_window_days), ctx.end),
        events=ctx.events(),
        end=ctx.end,
    )
    return fetch_columns(ctx.project, stmt)


class TransitionMatrix(dict[str, Any]):
    """Counts of users by (stage on ``from_date``, stage on ``to_date``); row ``"new"`` is users first seen
    after ``from_date``. Keys: ``from_date, to_date, rows, columns, counts, rates`` (rows sum to 1)."""


def transition_matrix(
    project: ProjectStore,
    from_date: date,
    to_date: date,
    config: LifecycleConfig | None = None,
    *,
    timezone: str = DEFAULT_TIMEZONE,
) -> TransitionMatrix:
    """Stage-to-stage transitions of users between two dates (computed, not read from stored runs).

    Returns
    -------
    TransitionMatrix
        ``counts[i][j]`` users went from row stage ``i`` to column stage ``j``.
    """
    if to_date <= from_date:
        raise NoDataError(f"to_date {to_date} must come after from_date {from_date}", code="model_invalid_dates")
    model = LifecycleModel(config)
    before_ids, before_stage, _ = model.stages(RunContext(project, from_date, timezone))
    after_ids, after_stage, _ = model.stages(RunContext(project, to_date, timezone))
    counts = count_transitions(before_ids, before_stage, after_ids, after_stage)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    return TransitionMatrix(
        from_date=from_date.isoformat(), to_date=to_date.isoformat(), rows=[*STAGES, "new"],
        columns=list(STAGES), counts=counts.tolist(), rates=np.round(rates, 6).tolist(),
    )  # fmt: skip
