"""Value tiers and the value jump (DOMAIN §4: value is frequency × unit price × recency, business-defined).

The value score is an expression over named per-customer metrics, written in a tiny arithmetic language (no
SQL): numbers, the metric names, ``+ - * / **``, and ``log, log1p, exp, sqrt, abs, min, max``. The default is
``frequency * unit_price * recency_weight`` with ``recency_weight = 0.5 ** (recency_days / half_life_days)``.
Tiers come from tie-safe mid-rank percentiles of the score (``high`` from ``tier_cuts[1]``, ``medium`` from
``tier_cuts[0]``), so equal scores share a tier.

The value jump (CLTV 跃迁) is in :mod:`userloop.models.value_jump`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator
from scipy.stats import rankdata

from userloop.models.base import ModelConfig, NoDataError, Outputs, RunContext, UserModel, fetch_columns
from userloop.models.purchases import PurchaseSource, require_rows
from userloop.models.value_jump import ValueJumpConfig, value_jump
from userloop.store.sqlbuild import sql

__all__ = ["METRICS", "ValueConfig", "ValueModel", "evaluate_expression"]

#: Metrics an expression may name.
METRICS = ("frequency", "monetary", "unit_price", "recency_days", "recency_weight", "tenure_days")
TIERS = ("low", "medium", "high")
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": np.log, "log1p": np.log1p, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs,
    "min": np.minimum, "max": np.maximum,
}  # fmt: skip
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power,
}  # fmt: skip


def _check_node(node: ast.AST) -> None:
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load, *_OPS)
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, int | float) or isinstance(node.value, bool):
            raise ValueError(f"only numbers are allowed as constants, not {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id not in METRICS:
            raise ValueError(f"unknown metric {node.id!r}; use one of {', '.join(METRICS)}")
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
            raise ValueError(f"only the functions {', '.join(_FUNCTIONS)} may be called")
        for arg in node.args:
            _check_node(arg)
        return
    elif not isinstance(node, allowed):
        raise ValueError(f"{type(node).__name__} is not allowed in a value expression")
    for child in ast.iter_child_nodes(node):
        _check_node(child)


def parse_expression(text: str) -> ast.Expression:
    """Parse and check a value expression; raises ``ValueError`` naming what is not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"value expression {text!r} is not valid: {exc.msg}") from exc
    _check_node(tree)
    return tree


def evaluate_expression(text: str, metrics: dict[str, npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """Evaluate a checked value expression over metric arrays (non-finite results become 0).

    Examples
    --------
    >>> evaluate_expression("frequency * 2 + max(monetary, 1)", {"frequency": np.array([1.0]),
    ...                     "monetary": np.array([0.5])}).tolist()
    [3.0]
    """

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)  # type: ignore[arg-type]
        if isinstance(node, ast.Name):
            return metrics[node.id]
        if isinstance(node, ast.UnaryOp):
            return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(walk(a) for a in node.args))

    n = len(next(iter(metrics.values()))) if metrics else 0
    with np.errstate(all="ignore"):
        out = np.broadcast_to(np.asarray(walk(parse_expression(text)), dtype=np.float64), (n,))
    return np.where(np.isfinite(out), out, 0.0)


class ValueConfig(ModelConfig):
    """Purchases and window, the score expression and the tier cuts (percentiles)."""

    purchases: PurchaseSource = PurchaseSource()
    window_days: int = Field(default=365, ge=1, le=3650)
    half_life_days: float = Field(default=90.0, gt=0)
    expression: str = "frequency * unit_price * recency_weight"
    tier_cuts: tuple[float, float] = (0.5, 0.8)
    jump: ValueJumpConfig | None = ValueJumpConfig()

    @field_validator("expression")
    @classmethod
    def _valid_expression(cls, value: str) -> str:
        parse_expression(value)
        return value

    @model_validator(mode="after")
    def _cuts_ordered(self) -> ValueConfig:
        if not 0 < self.tier_cuts[0] < self.tier_cuts[1] < 1:
            raise ValueError(f"tier_cuts must satisfy 0 < medium < high < 1, got {self.tier_cuts}")
        return self


class ValueModel(UserModel[ValueConfig]):
    """Per customer: the metrics, ``value_score`` and ``value_tier`` (low / medium / high)."""

    name = "value"
    version = "value-1"
    config_class: ClassVar[type[ModelConfig]] = ValueConfig

    @property
    def output_name(self) -> str:
        return "value" + self.config.purchases.suffix()

    def compute(self, ctx: RunContext) -> Outputs:
        """Metrics from one aggregation, the expression in numpy, tiers from mid-rank percentiles."""
        cfg = self.config
        src = cfg.purchases
        src.validate_in(ctx)
        stmt = sql(
            "SELECT user_id, count(*)::DOUBLE AS frequency, sum($money)::DOUBLE AS monetary, "
            "$recency::DOUBLE AS recency_days, $tenure::DOUBLE AS tenure_days "
            "FROM $events WHERE $purchases GROUP BY user_id ORDER BY user_id",
            money=src.amount(),
            recency=ctx.days_ago(sql("max(time)")),
            tenure=ctx.days_ago(sql("min(time)")),
            events=ctx.events(),
            purchases=src.where(ctx.window_start(cfg.window_days), ctx.end),
        )
        cols = fetch_columns(ctx.project, stmt)
        require_rows(len(cols["user_id"]), f"{src.event} purchases in the window", ctx)
        user_id = cols.pop("user_id")
        cols["unit_price"] = cols["monetary"] / cols["frequency"]
        cols["recency_weight"] = 0.5 ** (cols["recency_days"] / cfg.half_life_days)
        score = evaluate_expression(cfg.expression, cols)
        percentile = (rankdata(score) - 0.5) / len(score)
        tier = np.searchsorted(np.asarray(cfg.tier_cuts), percentile, side="right")
        columns = {**cols, "value_score": score, "value_tier": np.array(TIERS)[tier]}
        share = np.bincount(tier, weights=score, minlength=3) / max(float(score.sum()), 1e-12)
        report = {
            "customers": len(score),
            "tiers": {
                t: {"users": int((tier == i).sum()), "score_share": float(share[i])} for i, t in enumerate(TIERS)
            },
        }
        if cfg.jump is not None:
            report["value_jump"] = _jump_or_reason(ctx, cfg.jump)
        return Outputs(user_id, columns, report)


def _jump_or_reason(ctx: RunContext, cfg: ValueJumpConfig) -> dict[str, Any]:
    """The value-jump comparison, or why there is none (too few users in a group) as a neutral result."""
    try:
        return value_jump(ctx, cfg)
    except NoDataError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
