"""Attribution: how much of each conversion (and of its value) each touch channel earned.

Multi-touch attribution as Google Analytics (attribution models: first click, last click, linear, position based,
time decay) and Sensors (归因分析: 首次触点, 末次触点, 线性, 位置, 时间衰减) describe it. The exact rules used here:

**Conversions.** Every ``target`` event in the date range (passing the global ``filters``) is one conversion.
``partial: true`` says the range reaches into today, a day still running (:mod:`userloop.query.periods`).

**Touches.** Each entry of ``touches`` is a channel, labelled by its ``name`` or its event. An event that matches
several entries belongs to the first of them. A conversion's touches are the person's touch events strictly before
it in ``(time, event_id)`` order and no more than ``lookback`` before it (``conversion time − touch time ≤
lookback``); they pass the global ``filters`` too and may lie before the date range. A conversion without touches
counts under ``$none`` (unattributed), with full credit in every model.

**Models**, for a conversion with touches ``t1 … tm`` in time order (each conversion's credits sum to 1):

- ``first``: all to ``t1``; ``last``: all to ``tm``; ``linear``: ``1/m`` each;
- ``position`` (U-shaped, 40/20/40): ``t1`` and ``tm`` get 0.4 each and the middle touches share 0.2 equally; one
  touch gets 1, two touches 0.5 each;
- ``time_decay``: weight ``2^(−Δt / half_life)`` where Δt is the time from the touch to the conversion, normalised
  so the weights sum to 1 (GA's time-decay model; ``half_life`` defaults to 7 days);
- ``all``: the five models side by side.

A channel's credit is the sum of its touches' shares; its ``value`` credit is the same shares of the conversion's
``value_property`` (a numeric event property of the target event; a conversion without a value counts 0);
``share`` is credit / conversions. ``touched_conversions`` counts conversions in which the channel has at least one
touch (assisted conversions).

SQL shape: one scan of target and touch events (from range start − lookback); one window pass in ``(time,
event_id)`` order over those events plus one marker row per conversion at ``time − lookback`` (sorted before any
event at that instant) that numbers each person's touches, so a conversion's touches are the consecutive numbers
``lo+1 … hi`` (``lo`` read at its marker, ``hi`` at itself); those numbers are unnested and equi-joined to the
touches. Rows never exceed conversions × touches in their lookback (all of them are needed even for first/last
touch, to count ``touched_conversions``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, col, literal, or_, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.periods import running
from userloop.query.spec import NONE, EventRef, Name, Spec
from userloop.schema.types import PropertyType

Model = Literal["first", "last", "linear", "position", "time_decay"]
MODELS: tuple[Model, ...] = ("first", "last", "linear", "position", "time_decay")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
MAX_DAYS = 366


class Duration(Spec):
    """A length of time: ``{"value": 7, "unit": "day"}``."""

    value: int = Field(ge=1)
    unit: Literal["minute", "hour", "day", "week"] = "day"

    @model_validator(mode="after")
    def _not_too_long(self) -> Duration:
        if self.seconds > MAX_DAYS * 86_400:
            raise ValueError(f"at most {MAX_DAYS} days")
        return self

    @property
    def seconds(self) -> int:
        return self.value * UNIT_SECONDS[self.unit]


class AttributionQuery(Analysis):
    """Credit for each conversion spread over the touch channels that came before it."""

    kind: Literal["attribution"] = "attribution"
    target: EventRef = Field(description="The conversion event, e.g. order_paid.")
    touches: list[EventRef] = Field(min_length=1, max_length=20, description="Touch channels, one per entry.")
    lookback: Duration = Field(default_factory=lambda: Duration(value=7, unit="day"))
    model: Model | Literal["all"] = "last"
    half_life: Duration | None = Field(None, description="For time_decay: a touch this old gets half the weight.")
    value_property: Name | None = Field(None, description="A numeric property of the target event to credit.")

    @model_validator(mode="after")
    def _consistent(self) -> AttributionQuery:
        labels = [t.label for t in self.touches]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"touches {twice} appear more than once; give each a distinct 'name'")
        if NONE in labels:
            raise ValueError(f"{NONE!r} is the label of unattributed conversions; name the touch differently")
        if self.half_life is not None and self.model not in ("time_decay", "all"):
            raise ValueError(f"'half_life' applies to the time_decay model, not {self.model!r}; remove it")
        return self

    @property
    def models(self) -> list[Model]:
        return list(MODELS) if self.model == "all" else [self.model]

    @property
    def half_life_seconds(self) -> int:
        return self.half_life.seconds if self.half_life is not None else 7 * 86_400

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        models = self.models
        timed = "time_decay" in models
        return {
            "attribution": sql(
                _TEMPLATE,
                events=ctx.table("events"),
                **self._scan(ctx),
                value=self._value(ctx),
                lookback=exp.Interval(this=exp.Literal.string(str(self.lookback.seconds)), unit=exp.var("SECOND")),
                last_touch=sql(_LAST_TOUCH) if timed else exp.cast(exp.null(), exp.DataType.Type.TIMESTAMP),
                **self._credit(models),
                totals=_totals_select(models),
            )
        }

    def _scan(self, ctx: Context) -> dict[str, exp.Expr]:
        """The scan's filter, the conversion flag and the channel number (the first touch entry that matches)."""
        first, last = ctx.days(self.date_range)
        lo, hi = ctx.utc_bounds(first, last)
        target = ctx.event_cond(self.target)
        touches = [ctx.event_cond(t) for t in self.touches]
        column = col("time", "e")
        where = and_(
            [
                exp.GTE(this=column, expression=literal(lo - timedelta(seconds=self.lookback.seconds))),
                exp.LT(this=column, expression=literal(hi)),
                ctx.filters_cond(self.filters),
                or_([target, *touches]),
            ]
        )
        return {
            "where": where,
            "target": exp.and_(target, exp.GTE(this=column, expression=literal(lo))),
            "channel": exp.Case(ifs=[exp.If(this=c, true=exp.Literal.number(i)) for i, c in enumerate(touches)]),
        }

    def _credit(self, models: list[Model]) -> dict[str, exp.Expr]:
        """Each touch's weight under each model, summed per (channel, conversion), then per channel."""
        decay = sql(_DECAY, h=float(self.half_life_seconds))
        weighted = sql("SELECT user_id, conv_id, v, ch FROM pairs").select(  # type: ignore[attr-defined]
            *(exp.alias_(sql(_WEIGHTS[m], decay=decay), m, quoted=True) for m in models), append=True
        )
        per = sql("SELECT ch, user_id, conv_id, any_value(v) AS v FROM weighted GROUP BY ch, user_id, conv_id")
        per = per.select(  # type: ignore[attr-defined]
            *(exp.alias_(exp.func("sum", col(m)), m, quoted=True) for m in models), append=True
        )
        return {"weighted": weighted, "per": per, "credit": _credit_select(models)}

    def _value(self, ctx: Context) -> exp.Expr:
        if self.value_property is None:
            return exp.cast(exp.null(), exp.DataType.Type.DOUBLE)
        ctx.require_pii(self.value_property, "a measure over")
        if ctx.prop_type("event", self.value_property) != PropertyType.NUMBER:
            raise ValidationError(
                f"value_property {self.value_property!r} is not a numeric event property; choose a NUMBER property"
            )
        return exp.cast(col(self.value_property, "e"), exp.DataType.Type.DOUBLE)

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> AttributionResult:
        rows = list(data["attribution"].dicts())
        totals = next(r for r in rows if r["ch"] is None)
        conversions = int(totals["touched"])
        with_value = self.value_property is not None
        per_channel = {int(r["ch"]): r for r in rows if r["ch"] is not None}
        models = self.models

        def credit(count: float, value: float) -> ChannelCredit:
            return ChannelCredit(
                conversions=count,
                value=value if with_value else None,
                share=count / conversions if conversions else None,
            )

        channels = []
        for i, touch in enumerate(self.touches):
            row = per_channel.get(i)
            channels.append(
                AttributionChannel(
                    channel=touch.label,
                    touched_conversions=int(row["touched"]) if row else 0,
                    credit={
                        m: credit(float(row[m]) if row else 0.0, float(row[f"{m}_value"] or 0.0) if row else 0.0)
                        for m in models
                    },
                )
            )
        none_n, none_v = int(totals["none_n"] or 0), float(totals["none_value"] or 0.0)
        channels.append(
            AttributionChannel(
                channel=NONE, touched_conversions=none_n, credit={m: credit(float(none_n), none_v) for m in models}
            )
        )
        return AttributionResult(
            models=models,
            conversions=conversions,
            converters=int(totals["users"] or 0),
            attributed=conversions - none_n,
            value=float(totals["value"] or 0.0) if with_value else None,
            channels=channels,
            partial=running(ctx.days(self.date_range)[1], ctx.today),
        )


class ChannelCredit(Result):
    conversions: float = Field(description="Conversions credited to the channel (fractions add up).")
    value: float | None = Field(description="The same shares of the conversions' value_property.")
    share: float | None = Field(description="conversions / all conversions; None when there are none.")


class AttributionChannel(Result):
    channel: str
    touched_conversions: int = Field(description="Conversions with at least one touch of this channel.")
    credit: dict[str, ChannelCredit] = Field(description="By model.")


class AttributionResult(Result):
    models: list[Model]
    conversions: int
    converters: int = Field(description="Distinct people with a conversion.")
    attributed: int = Field(description="Conversions with at least one touch.")
    value: float | None
    channels: list[AttributionChannel] = Field(description="In the order of 'touches', then $none.")
    partial: bool = Field(
        default=False, description="The date range reaches into a period still running (it ends today or later)."
    )


# Weight of one touch: ``r`` is its rank (1…m) among the conversion's ``m`` touches, ``age`` its age in seconds when
# the conversion's youngest touch happened.
_WEIGHTS: dict[Model, str] = {
    "first": "CAST(r = 1 AS DOUBLE)",
    "last": "CAST(r = m AS DOUBLE)",
    "linear": "1.0 / m",
    "position": """CAST(CASE WHEN m = 1 THEN 1.0 WHEN m = 2 THEN 0.5 WHEN r = 1 OR r = m THEN 0.4
                   ELSE 0.2 / (m - 2) END AS DOUBLE)""",
    "time_decay": "$decay / sum($decay) OVER (PARTITION BY user_id, conv_id)",
}
# 2^(−Δt/half_life), with Δt counted from the youngest touch instead of the conversion (the same after normalising),
# so the largest weight is 1 and a long lookback with a short half-life cannot underflow to 0/0.
_DECAY = "pow(2.0, -age / $h)"
_LAST_TOUCH = """max(CASE WHEN ch IS NOT NULL THEN time END)
  OVER (PARTITION BY user_id ORDER BY time, real, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"""


def _credit_select(models: list[Model]) -> exp.Select:
    """One row per channel: conversions touched, then each model's credit and credited value."""
    cols: list[exp.Expr] = [exp.column("ch"), exp.alias_(sql("count(*)"), "touched")]
    for m in models:
        cols.append(exp.alias_(exp.func("sum", col(m)), m, quoted=True))
        cols.append(exp.alias_(sql("sum($w * v)", w=col(m)), f"{m}_value", quoted=True))
    cols += [exp.alias_(exp.null(), name) for name in ("users", "value", "none_n", "none_value")]
    return exp.select(*cols).from_("per").group_by("ch")


def _totals_select(models: list[Model]) -> exp.Select:
    """The one row with a NULL channel: conversions (in ``touched``), people, value, and the unattributed."""
    cols: list[exp.Expr] = [
        exp.alias_(exp.cast(exp.null(), exp.DataType.Type.INT), "ch"),
        exp.alias_(sql("count(*)"), "touched"),
    ]
    for m in models:
        cols += [exp.alias_(exp.null(), m, quoted=True), exp.alias_(exp.null(), f"{m}_value", quoted=True)]
    cols += [
        exp.alias_(sql("count(DISTINCT user_id)"), "users"),
        exp.alias_(sql("sum(v)"), "value"),
        exp.alias_(sql("count(*) FILTER (WHERE hi = lo)"), "none_n"),
        exp.alias_(sql("sum(v) FILTER (WHERE hi = lo)"), "none_value"),
    ]
    return exp.select(*cols).from_("conv")


# ev: targets in range and touches from range start − lookback, with their channel (first matching touch entry).
# marked: those events, plus one marker per conversion at time − lookback, sorted before real events at that instant.
# seq: ``before`` = the person's touches strictly before the row in (time, marker first, event_id) order; a touch is
#      number before + 1, a conversion's touches are numbers lo + 1 … hi (lo at its marker, hi at itself).
_TEMPLATE = """
WITH ev AS MATERIALIZED (
  SELECT e.user_id AS user_id, e.time AS time, e.event_id AS event_id,
         coalesce($target, FALSE) AS conv, $channel AS ch, $value AS v
  FROM $events AS e WHERE $where
),
marked AS (
  SELECT user_id, time, 1 AS real, event_id, conv, ch, v, CAST(NULL AS VARCHAR) AS of FROM ev
  UNION ALL
  SELECT user_id, time - $lookback, 0, event_id, FALSE, NULL, NULL, event_id FROM ev WHERE conv
),
seq AS MATERIALIZED (
  SELECT user_id, time, event_id, conv, ch, v, of,
         count(ch) OVER (PARTITION BY user_id ORDER BY time, real, event_id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before,
         $last_touch AS last_touch
  FROM marked
),
touch AS (
  SELECT user_id, before + 1 AS k, time, ch FROM seq WHERE ch IS NOT NULL AND of IS NULL
),
conv AS MATERIALIZED (
  SELECT c.user_id AS user_id, c.event_id AS event_id, c.time AS time, coalesce(c.v, 0.0) AS v,
         coalesce(m.before, 0) AS lo, coalesce(c.before, 0) AS hi, c.last_touch AS last_touch
  FROM seq AS c JOIN seq AS m ON m.user_id = c.user_id AND m.of = c.event_id
  WHERE c.conv AND c.of IS NULL
),
pairs AS (
  SELECT c.user_id AS user_id, c.event_id AS conv_id, c.v AS v, c.hi - c.lo AS m, t.k - c.lo AS r, t.ch AS ch,
         epoch(c.last_touch - t.time) AS age
  FROM (SELECT *, unnest(generate_series(lo + 1, hi)) AS k FROM conv) AS c
  JOIN touch AS t ON t.user_id = c.user_id AND t.k = c.k
),
weighted AS (SELECT * FROM ($weighted) AS w0),
per AS (SELECT * FROM ($per) AS p0)
SELECT * FROM ($credit) AS a UNION ALL SELECT * FROM ($totals) AS b
"""


__all__ = ["AttributionQuery", "AttributionResult", "Duration"]
