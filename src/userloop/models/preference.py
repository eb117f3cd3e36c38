"""Preferences (DOMAIN §5, §11.3): each user's preferred category, price band, touchpoint, activity type and
time of day, and item associations "bought X also bought Y".

A dimension counts a user's events by a value (a property, a numeric band, the event name, or the local hour
band); the preferred value is the most frequent (ties: the smallest value), ``support`` its count and
``confidence`` its share of the user's events in that dimension. Associations follow Agrawal, Imieliński &
Swami (1993): over baskets (one order's items), ``support(X→Y) = P(X ∧ Y)``, ``confidence = P(Y | X)`` and
``lift = confidence / P(Y)``.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import Field
from sqlglot import exp

from userloop.models.base import NAME_PATTERN, ModelConfig, Outputs, RunContext, UserModel, fetch_columns, write_rows
from userloop.models.purchases import require_rows
from userloop.schema.types import PropertyType
from userloop.store.sqlbuild import col, literal, sql

__all__ = ["AssociationConfig", "PreferenceConfig", "PreferenceModel", "read_associations"]


class PropertyDimension(ModelConfig):
    """Values of a STRING property of one event (e.g. ``order_item.category``)."""

    kind: Literal["property"] = "property"
    name: str = Field(pattern=NAME_PATTERN)
    event: str
    property: str

    def value(self, ctx: RunContext) -> exp.Expr:
        ctx.require_property("events", self.property, PropertyType.STRING)
        return col(self.property)

    def events(self) -> tuple[str, ...]:
        return (self.event,)


class BandDimension(ModelConfig):
    """A NUMBER property cut into bands at ``edges`` (e.g. price bands ``<10, 10-20, …``)."""

    kind: Literal["band"] = "band"
    name: str = Field(pattern=NAME_PATTERN)
    event: str
    property: str
    edges: tuple[float, ...] = Field(min_length=1)

    def value(self, ctx: RunContext) -> exp.Expr:
        ctx.require_property("events", self.property, PropertyType.NUMBER)
        column, edges = col(self.property), sorted(self.edges)
        labels = [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)]
        case = exp.Case().when(sql("$v IS NULL OR isnan($v)", v=column), exp.null())
        for edge, label in zip(edges, labels, strict=True):
            case = case.when(sql("$v < $edge", v=column, edge=float(edge)), literal(label))
        return case.else_(literal(f">={edges[-1]:g}"))

    def events(self) -> tuple[str, ...]:
        return (self.event,)


class EventDimension(ModelConfig):
    """Which of several events a user does most (activity type: check-in, share, comment…)."""

    kind: Literal["event"] = "event"
    name: str = Field(pattern=NAME_PATTERN)
    event_names: tuple[str, ...] = Field(min_length=1)

    def value(self, ctx: RunContext) -> exp.Expr:
        return col("event")

    def events(self) -> tuple[str, ...]:
        return self.event_names


class HourDimension(ModelConfig):
    """Local time of day of an event, in named hour bands (``starts`` are the first hours of each band)."""

    kind: Literal["time_of_day"] = "time_of_day"
    name: str = Field(pattern=NAME_PATTERN)
    event: str
    starts: tuple[int, ...] = (0, 6, 11, 14, 18)
    labels: tuple[str, ...] = ("night", "morning", "noon", "afternoon", "evening")

    def value(self, ctx: RunContext) -> exp.Expr:
        hour = sql("hour(timezone($tz, CAST(time AS TIMESTAMPTZ)))", tz=ctx.timezone)
        case = exp.Case()
        for start, label in sorted(zip(self.starts, self.labels, strict=True), reverse=True):
            case = case.when(sql("$hour >= $start", hour=hour, start=int(start)), literal(label))
        return case

    def events(self) -> tuple[str, ...]:
        return (self.event,)


Dimension = Annotated[PropertyDimension | BandDimension | EventDimension | HourDimension, Field(discriminator="kind")]

DEFAULT_DIMENSIONS: tuple[Dimension, ...] = (
    PropertyDimension(name="category", event="order_item", property="category"),
    BandDimension(name="price_band", event="order_item", property="price", edges=(10, 20, 50, 100)),
    PropertyDimension(name="touchpoint", event="page_view", property="page"),
    EventDimension(
        name="activity_type",
        event_names=("check_in", "share", "like", "comment", "search", "coupon_used", "push_clicked"),
    ),
    HourDimension(name="time_of_day", event="order_paid"),
)


class AssociationConfig(ModelConfig):
    """Baskets: ``event`` rows grouped by ``basket_property`` (an order id), items named by ``item_property``."""

    event: str = "order_item"
    basket_property: str = "order_id"
    item_property: str = "product_id"
    min_pair_baskets: int = Field(default=5, ge=1)
    max_rules: int = Field(default=1000, ge=1, le=1_000_000)


class PreferenceConfig(ModelConfig):
    """The dimensions, the window of local days they read and the association rules."""

    window_days: int = Field(default=180, ge=1, le=3650)
    dimensions: tuple[Dimension, ...] = DEFAULT_DIMENSIONS
    associations: AssociationConfig | None = AssociationConfig()


class PreferenceModel(UserModel[PreferenceConfig]):
    """Per user and dimension ``d``: ``d``, ``d_support``, ``d_confidence`` (empty / 0 without events).

    Association rules go to ``model_preference_associations`` (``item, also_item, baskets, support,
    confidence, lift`` per run date), top rules by lift in the report.
    """

    name = "preference"
    version = "preference-1"
    config_class: ClassVar[type[ModelConfig]] = PreferenceConfig

    def compute(self, ctx: RunContext) -> Outputs:
        """One grouped query per dimension, merged on ``user_id``; then the association rules."""
        start = ctx.window_start(self.config.window_days)
        per_dim = {d.name: _top_values(ctx, d, start) for d in self.config.dimensions}
        users = np.unique(np.concatenate([c["user_id"] for c in per_dim.values()])) if per_dim else np.zeros(0)
        require_rows(len(users), "events in any preference dimension", ctx, code="model_no_data")
        columns: dict[str, Any] = {}
        report: dict[str, Any] = {"users": len(users), "dimensions": {}}
        for name, cols in per_dim.items():
            at = np.searchsorted(users, cols["user_id"])
            value = np.full(len(users), "", dtype=object)
            value[at] = cols["value"]
            support, confidence = np.zeros(len(users), np.int64), np.zeros(len(users))
            support[at], confidence[at] = cols["support"], cols["confidence"]
            columns |= {name: value, f"{name}_support": support, f"{name}_confidence": confidence}
            report["dimensions"][name] = _distribution(cols["value"])
        if self.config.associations is not None:
            rules = read_associations(ctx, self.config.associations, start)
            write_rows(ctx.project, "model_preference_associations", ctx.as_of, self.version, rules)
            report["associations"] = {"rules": rules.num_rows, "top": rules.slice(0, 10).to_pylist()}
        return Outputs(users.astype(np.int64), columns, report)


def _top_values(ctx: RunContext, dim: Any, start: Any) -> dict[str, npt.NDArray[Any]]:
    stmt = sql(
        "SELECT user_id, CAST(value AS VARCHAR) AS value, c::BIGINT AS support, "
        "(c / sum(c) OVER (PARTITION BY user_id))::DOUBLE AS confidence "
        "FROM (SELECT user_id, $value AS value, count(*) AS c FROM $events "
        "WHERE event IN ($names) AND time >= $start AND time < $end GROUP BY ALL HAVING value IS NOT NULL) "
        "QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY c DESC, value) = 1 ORDER BY user_id",
        value=dim.value(ctx),
        events=ctx.events(),
        names=[literal(n) for n in dim.events()],
        start=start,
        end=ctx.end,
    )
    return fetch_columns(ctx.project, stmt)


def _distribution(values: npt.NDArray[Any]) -> dict[str, int]:
    uniq, counts = np.unique(values.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:20]
    return {str(uniq[i]): int(counts[i]) for i in order}


def read_associations(ctx: RunContext, cfg: AssociationConfig, start: Any) -> pa.Table:
    """Rules ``item → also_item`` over baskets in ``[start, end of as_of)`` seen in ``min_pair_baskets``+ baskets.

    Returns
    -------
    pyarrow.Table
        ``item, also_item, baskets, support, confidence, lift``, by lift then support (descending).
    """
    for prop in (cfg.basket_property, cfg.item_property):
        ctx.require_property("events", prop, PropertyType.STRING)
    stmt = sql(
        "WITH b AS (SELECT DISTINCT $basket AS basket, $item AS item FROM $events WHERE event = $event "
        "AND time >= $start AND time < $end AND $basket IS NOT NULL AND $item IS NOT NULL), "
        "n AS (SELECT count(DISTINCT basket)::DOUBLE AS n FROM b), "
        "i AS (SELECT item, count(*)::DOUBLE AS c FROM b GROUP BY item), "
        "p AS (SELECT x.item AS a, y.item AS b, count(*) AS c FROM b x JOIN b y ON x.basket = y.basket "
        "AND x.item <> y.item GROUP BY ALL HAVING count(*) >= $min_baskets) "
        "SELECT p.a AS item, p.b AS also_item, p.c::BIGINT AS baskets, p.c / n AS support, p.c / ia.c AS confidence, "
        "(p.c / ia.c) / (ib.c / n) AS lift FROM p JOIN i ia ON ia.item = p.a JOIN i ib ON ib.item = p.b, n "
        "ORDER BY lift DESC, support DESC, item, also_item LIMIT $max_rules",
        basket=col(cfg.basket_property),
        item=col(cfg.item_property),
        events=ctx.events(),
        event=cfg.event,
        start=start,
        end=ctx.end,
        min_baskets=cfg.min_pair_baskets,
        max_rules=cfg.max_rules,
    )
    cols = fetch_columns(ctx.project, stmt)
    return pa.table({k: pa.array(v.tolist() if v.dtype.kind == "O" else v) for k, v in cols.items()})
