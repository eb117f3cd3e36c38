"""RFM: recency, frequency and monetary value of each customer, as 8 classes and as 5×5×5 scores.

Hughes (1994), *Strategic Database Marketing*, scores customers by quintiles of Recency, Frequency and
Monetary value (125 cells); the practice of DOMAIN §4 splits each at the median into 8 named classes. Both are
computed here over purchases in a window of local days ending ``as_of``:

* ``recency_days``: local days from the last purchase to ``as_of`` (0 = bought that day);
* ``frequency``: purchases (events) in the window; ``monetary``: their summed amount (a missing or NaN
  amount counts as 0 and is counted in the report).

Classes: a letter is H when the customer is strictly better than the median (more recent, more often, more
money); see :func:`~userloop.models.scores.above_median`. Scores: quintiles of the mid-rank percentile, so
equal values always share a score (:func:`~userloop.models.scores.mid_rank_scores`).

Example::

    run = RFMModel(RFMConfig(window_days=180)).run(project, date(2026, 6, 30), timezone="Asia/Shanghai")
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from userloop.models.base import ModelConfig, NoDataError, Outputs, RunContext, UserModel, fetch_columns
from userloop.models.purchases import PurchaseSource, require_rows
from userloop.models.scores import above_median, mid_rank_scores
from userloop.store.sqlbuild import sql

__all__ = ["RFM_CLASSES", "RFMConfig", "RFMModel", "rfm_class_index", "rfm_cube"]

#: The 8 classes by bit pattern of (R, F, M), H = better than the median; (zh, en) names, pinned here only.
RFM_CLASSES: dict[str, tuple[str, str]] = {
    "HHH": ("重要价值", "Important value"),
    "HLH": ("重要发展", "Important development"),
    "LHH": ("重要保持", "Important retention"),
    "LLH": ("重要挽留", "Important win-back"),
    "HHL": ("一般价值", "General value"),
    "HLL": ("一般发展", "General development"),
    "LHL": ("一般保持", "General retention"),
    "LLL": ("一般挽留", "General win-back"),
}


class RFMConfig(ModelConfig):
    """RFM over the last ``window_days`` local days of ``purchases``."""

    window_days: int = Field(default=365, ge=1, le=3650)
    purchases: PurchaseSource = PurchaseSource()


def _bits(code: str) -> int:
    return sum(1 << (2 - i) for i, letter in enumerate(code) if letter == "H")


#: Position in :data:`RFM_CLASSES` of each bit pattern ``4 r + 2 f + m``.
_POSITION_OF_BITS = np.array([[_bits(c) for c in RFM_CLASSES].index(b) for b in range(8)])


def rfm_class_index(
    r_high: npt.NDArray[np.bool_], f_high: npt.NDArray[np.bool_], m_high: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Position in :data:`RFM_CLASSES` of each customer's class, from the three median splits."""
    bits = 4 * r_high.astype(np.int64) + 2 * f_high.astype(np.int64) + m_high.astype(np.int64)
    return np.asarray(_POSITION_OF_BITS[bits], dtype=np.int64)


class RFMModel(UserModel[RFMConfig]):
    """Recency, frequency, monetary per customer: 8 median-split classes and 5×5×5 quintile scores.

    Outputs (table ``model_rfm`` or ``model_rfm_<line>``): ``recency_days, frequency, monetary, rfm_class``
    (e.g. ``HLH``), ``class_zh, class_en, r_score, f_score, m_score, rfm_cell`` (``100 r + 10 f + m``).
    """

    name = "rfm"
    version = "rfm-1"
    config_class: ClassVar[type[ModelConfig]] = RFMConfig

    @property
    def output_name(self) -> str:
        return "rfm" + self.config.purchases.suffix()

    def compute(self, ctx: RunContext) -> Outputs:
        """Read per-customer R, F, M with one aggregation and classify them with numpy."""
        src = self.config.purchases
        src.validate_in(ctx)
        cols = read_rfm(ctx, src, self.config.window_days)
        require_rows(len(cols["user_id"]), f"{src.event} purchases in the {self.config.window_days}-day window", ctx)
        missing = int(cols.pop("missing_money").sum())
        if missing == int(cols["frequency"].sum()):
            raise NoDataError(
                f"none of the {missing} purchases has a finite {src.money_name!r}; check the money property",
                code="model_no_money",
            )
        out = classify(cols["recency_days"], cols["frequency"], cols["monetary"])
        columns = {k: cols[k] for k in ("recency_days", "frequency", "monetary")} | out
        return Outputs(cols["user_id"], columns, _report(columns, missing))


def read_rfm(ctx: RunContext, src: PurchaseSource, window_days: int) -> dict[str, npt.NDArray[Any]]:
    """Per-customer ``recency_days, frequency, monetary, missing_money`` in the window, sorted by user."""
    stmt = sql(
        "SELECT user_id, $recency::BIGINT AS recency_days, count(*)::BIGINT AS frequency, "
        "sum($money)::DOUBLE AS monetary, $missing::BIGINT AS missing_money "
        "FROM $events WHERE $purchases GROUP BY user_id ORDER BY user_id",
        recency=ctx.days_ago(sql("max(time)")),
        money=src.amount(),
        missing=src.missing_amount(),
        events=ctx.events(),
        purchases=src.where(ctx.window_start(window_days), ctx.end),
    )
    return fetch_columns(ctx.project, stmt)


def classify(recency: npt.NDArray[Any], frequency: npt.NDArray[Any], monetary: npt.NDArray[Any]) -> dict[str, Any]:
    """8-class codes and names plus tie-safe 1..5 scores for R (recent is high), F and M."""
    index = rfm_class_index(
        above_median(recency, higher_is_better=False), above_median(frequency), above_median(monetary)
    )
    codes = np.array(list(RFM_CLASSES))
    zh = np.array([v[0] for v in RFM_CLASSES.values()])
    en = np.array([v[1] for v in RFM_CLASSES.values()])
    r = mid_rank_scores(recency, higher_is_better=False)
    f = mid_rank_scores(frequency)
    m = mid_rank_scores(monetary)
    cell = 100 * r.astype(np.int16) + 10 * f.astype(np.int16) + m.astype(np.int16)
    return {"rfm_class": codes[index], "class_zh": zh[index], "class_en": en[index],
            "r_score": r, "f_score": f, "m_score": m, "rfm_cell": cell}  # fmt: skip


def _report(columns: dict[str, Any], missing_money: int) -> dict[str, Any]:
    codes, counts = np.unique(columns["rfm_class"], return_counts=True)
    by_class = dict(zip(codes.tolist(), counts.tolist(), strict=True))
    return {
        "customers": len(columns["frequency"]),
        "medians": {k: float(np.median(columns[k])) for k in ("recency_days", "frequency", "monetary")},
        "classes": [
            {"class": c, "zh": zh, "en": en, "users": by_class.get(c, 0)} for c, (zh, en) in RFM_CLASSES.items()
        ],
        "purchases_missing_money": missing_money,
        "cube": rfm_cube(columns["rfm_cell"]),
    }


def rfm_cube(cells: npt.NDArray[Any]) -> list[dict[str, int]]:
    """Customers per occupied cell of the 5×5×5 cube, from the ``rfm_cell`` codes (``100 r + 10 f + m``).

    Returns
    -------
    list of dict
        ``{"r", "f", "m", "users"}`` per cell holding anyone, in code order; the users add up to the customers.

    Examples
    --------
    >>> rfm_cube(np.array([512, 333, 512]))
    [{'r': 3, 'f': 3, 'm': 3, 'users': 1}, {'r': 5, 'f': 1, 'm': 2, 'users': 2}]
    """
    codes, counts = np.unique(np.asarray(cells, dtype=np.int64), return_counts=True)
    return [
        {"r": code // 100, "f": code // 10 % 10, "m": code % 10, "users": n}
        for code, n in zip(codes.tolist(), counts.tolist(), strict=True)
    ]
