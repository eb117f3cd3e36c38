"""Trends: how a measure of one or more event series moves over time (DOMAIN §11, §12).

Each series is an event (or ``$any``) with filters and a ``math``:

- ``total`` (events), ``users`` (unique people in the bucket);
- ``per_user_avg|min|max|median|p90|p95|p99``: each person's event count in the bucket, summarised over people;
- ``sum|avg|min|max|median|p90|p95|p99`` of a numeric event property;
- ``dau``, ``wau``, ``mau``: people active on the bucket's last day, or in the 7 or 30 days ending on it.

Several series combine with a ``formula`` over their letters (``A/B*100``), evaluated per bucket. A breakdown
splits every series by an event or profile property (top values, the rest as ``$other``; or numeric bins).
``compare: true`` runs the previous period of the same length too; it is refused (``partial_period``) when the
range reaches today, so a running period is never set against a finished one. ``partial`` lists the buckets that
are not whole finished periods (cut by the range, or still running: today, the current week or month).

The ``total`` of a series is its measure over the whole range (unique people over the range for ``users``), not a
sum of buckets, except for counts and sums where the two agree.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import date, timedelta
from math import fsum
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, and_, bucket_of, buckets, col, next_bucket, sql
from userloop.query.kinds.base import Analysis, Frame, Result
from userloop.query.periods import partial_buckets, refuse_partial
from userloop.query.spec import NONE, OTHER, Breakdown, EventRef, Interval, Name
from userloop.schema.types import PropertyType

Math = Literal[
    "total",
    "users",
    "per_user_avg",
    "per_user_min",
    "per_user_max",
    "per_user_median",
    "per_user_p90",
    "per_user_p95",
    "per_user_p99",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "p90",
    "p95",
    "p99",
    "dau",
    "wau",
    "mau",
]
#: Maths whose measure over the range follows from the buckets' values.
#: Sums use ``math.fsum``: correctly rounded whatever the order the engine's threads returned the buckets in, so the
#: same data always gives the same total to the last digit.
_ADDITIVE: dict[str, Callable[[list[float]], float]] = {"total": fsum, "sum": fsum, "min": min, "max": max}
_PROPERTY_MATHS = {"sum", "avg", "min", "max", "median", "p90", "p95", "p99"}
#: One row per matching event: person, bucket, breakdown value, measured value (with the person's profile joined
#: when the breakdown is a profile property).
_ROWS = "SELECT e.user_id AS user_id, $bucket AS bucket, $bd AS bd, $value AS v FROM $events AS e WHERE $where"
_ROWS_WITH_USERS = (
    "SELECT e.user_id AS user_id, $bucket AS bucket, $bd AS bd, $value AS v "
    "FROM $events AS e LEFT JOIN $users AS u ON u.user_id = e.user_id WHERE $where"
)
_ROLLING_DAYS = {"dau": 1, "wau": 7, "mau": 30}
_QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Series(EventRef):
    math: Math = "total"
    property: Name | None = Field(None, description="The numeric event property that sum/avg/min/… measure.")

    @model_validator(mode="after")
    def _property_when_needed(self) -> Series:
        if self.math in _PROPERTY_MATHS and self.property is None:
            raise ValueError(f"math {self.math!r} needs a numeric 'property'")
        if self.math not in _PROPERTY_MATHS and self.property is not None:
            raise ValueError(f"math {self.math!r} takes no 'property'")
        return self


class TrendsQuery(Analysis):
    kind: Literal["trends"] = "trends"
    series: list[Series] = Field(min_length=1, max_length=len(LETTERS))
    interval: Interval = "day"
    breakdown: Breakdown | None = None
    formula: str | None = Field(None, max_length=200, description="e.g. 'A/B*100' over the series' letters.")
    compare: bool = False

    @model_validator(mode="after")
    def _formula_parses(self) -> TrendsQuery:
        if self.formula is not None:
            Formula(self.formula, len(self.series))
        if self.interval == "hour" and any(s.math in _ROLLING_DAYS for s in self.series):
            raise ValueError("dau, wau and mau are daily measures; use interval day, week or month")
        return self

    # statements ----------------------------------------------------------------------------------------------
    def statements(self, ctx: Context) -> dict[str, exp.Expr]:
        first, last = ctx.days(self.date_range)
        if self.interval == "hour" and (last - first).days > 31:
            raise ValidationError("hourly trends cover at most 31 days; narrow the date range or use 'day'")
        out = {f"s{i}": self._series_sql(ctx, s, first, last) for i, s in enumerate(self.series)}
        if self.compare:
            refuse_partial("the range", first, last, ctx.today, field="date_range")
            p_first, p_last = previous_period(first, last)
            out |= {f"p{i}": self._series_sql(ctx, s, p_first, p_last) for i, s in enumerate(self.series)}
        return out

    def _series_sql(self, ctx: Context, s: Series, first: date, last: date) -> exp.Expr:
        lookback = _ROLLING_DAYS.get(s.math, 1) - 1
        scan_first = first - timedelta(days=lookback)
        day_math = s.math in _ROLLING_DAYS
        bucket = ctx.bucket(col("time", "e"), "day" if day_math else self.interval, scan_first, last)
        where = and_([ctx.time_cond(scan_first, last), ctx.event_cond(s), ctx.filters_cond(self.filters)])
        value = exp.null() if s.property is None else self._numeric(ctx, s.property)
        bd, join_users = self._breakdown_expr(ctx)
        rows = sql(
            _ROWS_WITH_USERS if join_users else _ROWS,
            bucket=bucket,
            bd=bd,
            value=value,
            events=ctx.table("events"),
            users=ctx.table("users"),
            where=where,
        )
        rows = exp.select("*").from_(exp.Subquery(this=rows, alias="r0"))
        if self.breakdown is not None:
            rows = _fold_breakdown(rows, self.breakdown)
        if day_math:
            return _rolling(rows, _ROLLING_DAYS[s.math], first, last)
        return _measure(rows, s)

    def _numeric(self, ctx: Context, name: str) -> exp.Expr:
        ctx.require_pii(name, "a measure over")
        if ctx.prop_type("event", name) != PropertyType.NUMBER:
            raise ValidationError(f"{name!r} is not a numeric event property; sum/avg/… need a NUMBER property")
        return col(name, "e")

    def _breakdown_expr(self, ctx: Context) -> tuple[exp.Expr, bool]:
        b = self.breakdown
        if b is None:
            return exp.null(), False
        alias = "e" if b.source == "event" else "u"
        column = ctx.prop(b.source, b.property, alias)
        ptype = ctx.prop_type(b.source, b.property)
        if b.bins is not None:
            ctx.require_pii(b.property, "numeric bins of")
            if ptype != PropertyType.NUMBER:
                raise ValidationError(f"numeric bins need a NUMBER property; {b.property!r} is {ptype.value}")
            return exp.cast(column, exp.DataType.Type.DOUBLE), b.source == "user"
        if ptype == PropertyType.LIST:
            raise ValidationError(f"{b.property!r} is a list; break down by a single-valued property")
        return exp.cast(column, exp.DataType.Type.VARCHAR), b.source == "user"

    # shaping -------------------------------------------------------------------------------------------------
    def shape(self, ctx: Context, data: dict[str, Frame]) -> TrendsResult:
        first, last = ctx.days(self.date_range)
        result = TrendsResult(
            interval=self.interval,
            buckets=[_label(b) for b in buckets(self.interval, first, last)],
            series=self._shape_period(data, "s", first, last),
            partial=partial_buckets(self.interval, first, last, ctx.today),
        )
        if self.compare:
            p_first, p_last = previous_period(first, last)
            result.compare_buckets = [_label(b) for b in buckets(self.interval, p_first, p_last)]
            result.compare_partial = partial_buckets(self.interval, p_first, p_last, ctx.today)
            result.compare = self._shape_period(data, "p", p_first, p_last)
        return result

    def _shape_period(self, data: dict[str, Frame], prefix: str, first: date, last: date) -> list[TrendsLine]:
        labels = [_label(b) for b in buckets(self.interval, first, last)]
        index = {b: i for i, b in enumerate(labels)}
        per_series: list[dict[str, TrendsLine]] = []
        for i, s in enumerate(self.series):
            lines: dict[str, TrendsLine] = {}
            seen: dict[str, list[float | None]] = {}  # the values rows brought, per line
            frame = data[f"{prefix}{i}"]
            for bucket, bd, value in frame.rows:
                key = _bd_label(bd)
                line = lines.get(key)
                if line is None:
                    line = lines[key] = TrendsLine(
                        series=LETTERS[i],
                        label=s.label,
                        breakdown=key if self.breakdown else None,
                        data=[0.0 if s.math in ("total", "users", "dau", "wau", "mau") or s.math == "sum" else None]
                        * len(labels),
                    )
                seen.setdefault(key, []).append(_num(value))
                if bucket is None:
                    line.total = _num(value)
                else:
                    at = _bucket_of_row(bucket, self.interval, s.math, last)
                    if at is not None and _label(at) in index:
                        line.data[index[_label(at)]] = _num(value)
            if s.math in _ROLLING_DAYS:
                for line in lines.values():
                    line.total = None
            if s.math in _ADDITIVE:
                for key, line in lines.items():
                    line.total = _combine(s.math, seen.get(key, []))
            if not lines:
                zero = 0.0 if s.math in ("total", "users", "sum", "dau", "wau", "mau") else None
                lines[""] = TrendsLine(series=LETTERS[i], label=s.label, data=[zero] * len(labels), total=zero)
            per_series.append(lines)
        out = [line for lines in per_series for line in _ordered(lines)]
        if self.formula is not None:
            out = self._apply_formula(per_series, len(labels))
        return out

    def _apply_formula(self, per_series: list[dict[str, TrendsLine]], n: int) -> list[TrendsLine]:
        formula = Formula(self.formula or "", len(self.series))
        keys = sorted({k for lines in per_series for k in lines})
        out = []
        for key in keys:

            def at(i: int, j: int | None, key: str = key) -> float | None:
                line = per_series[i].get(key)
                if line is None:
                    return 0.0
                return line.total if j is None else line.data[j]

            data = [formula.evaluate(lambda i, j=j: at(i, j)) for j in range(n)]
            total = formula.evaluate(lambda i: at(i, None))
            out.append(
                TrendsLine(series="formula", label=self.formula or "", breakdown=key or None, data=data, total=total)
            )
        return out


class TrendsLine(Result):
    series: str
    label: str
    breakdown: str | None = None
    data: list[float | None]
    total: float | None = None


class TrendsResult(Result):
    interval: Interval
    buckets: list[str]
    series: list[TrendsLine]
    compare_buckets: list[str] | None = None
    compare: list[TrendsLine] | None = None
    partial: list[str] = Field(
        default_factory=list, description="Buckets that are not whole finished periods (cut by the range, or running)."
    )
    compare_partial: list[str] | None = None


# SQL pieces ------------------------------------------------------------------------------------------------------
def _fold_breakdown(rows: exp.Select, b: Breakdown) -> exp.Select:
    """Keep the ``limit`` most frequent values (by events), fold the rest into ``$other``; or bin numbers."""
    if b.bins is not None:
        return sql(
            """WITH r AS ($rows), lim AS (SELECT min(bd) AS lo, max(bd) AS hi FROM r)
            SELECT r.user_id, r.bucket, r.v,
              CASE WHEN r.bd IS NULL THEN NULL
                   WHEN lim.hi = lim.lo THEN round(lim.lo, 4)::VARCHAR || '..' || round(lim.hi, 4)::VARCHAR
                   ELSE round(lim.lo + least(floor((r.bd - lim.lo) / ((lim.hi - lim.lo) / $bins)), $bins - 1)
                           * ((lim.hi - lim.lo) / $bins), 4)::VARCHAR || '..'
                        || round(lim.lo + (least(floor((r.bd - lim.lo) / ((lim.hi - lim.lo) / $bins)), $bins - 1) + 1)
                           * ((lim.hi - lim.lo) / $bins), 4)::VARCHAR
              END AS bd
            FROM r, lim""",
            rows=rows,
            bins=float(b.bins),
        )  # type: ignore[return-value]
    # NOT MATERIALIZED: the top values come from a second, narrow scan instead of a copy of every row
    return sql(
        """WITH r AS NOT MATERIALIZED ($rows),
           top AS (SELECT bd FROM r WHERE bd IS NOT NULL GROUP BY bd ORDER BY count(*) DESC, bd LIMIT $limit)
        SELECT r.user_id, r.bucket, r.v,
          CASE WHEN r.bd IS NULL THEN NULL WHEN r.bd IN (SELECT bd FROM top) THEN r.bd ELSE $other END AS bd
        FROM r""",
        rows=rows,
        limit=b.limit,
        other=OTHER,
    )  # type: ignore[return-value]


def _measure(rows: exp.Select, s: Series) -> exp.Expr:
    """One row per (bucket, breakdown) plus one per breakdown with bucket NULL: the measure over the range."""
    agg: exp.Expr
    if s.math.startswith("per_user_"):
        stat = s.math.removeprefix("per_user_")
        agg = _agg(stat, exp.column("n"))
        return sql(
            """WITH r AS ($rows),
              per AS (SELECT user_id, bucket, bd, count(*) AS n FROM r
                      GROUP BY GROUPING SETS ((user_id, bucket, bd), (user_id, bd)))
            SELECT bucket, bd, $agg AS value FROM per GROUP BY bucket, bd""",
            rows=rows,
            agg=agg,
        )
    if s.math in _ADDITIVE:
        # the measure over the range follows from the buckets' (sum, min, max): no second grouping
        agg = exp.Count(this=exp.Star()) if s.math == "total" else _agg(s.math, exp.column("v"))
        return sql("WITH r AS ($rows) SELECT bucket, bd, $agg AS value FROM r GROUP BY bucket, bd", rows=rows, agg=agg)
    if s.math == "users":
        agg = exp.Count(this=exp.Distinct(expressions=[exp.column("user_id")]))
    else:
        agg = _agg(s.math, exp.column("v"))
    return sql(
        """WITH r AS ($rows)
        SELECT bucket, bd, $agg AS value FROM r GROUP BY GROUPING SETS ((bucket, bd), (bd))""",
        rows=rows,
        agg=agg,
    )


def _agg(stat: str, value: exp.Expr) -> exp.Expr:
    if stat in _QUANTILES:
        return exp.func("quantile_cont", value, exp.convert(_QUANTILES[stat]))
    if stat == "avg":
        return exp.func("avg", value)
    return exp.func(stat, value)


def _rolling(rows: exp.Select, days: int, first: date, last: date) -> exp.Expr:
    """People active in the ``days`` local days ending on each day (one day for DAU)."""
    return sql(
        """WITH r AS ($rows),
          ud AS (SELECT DISTINCT user_id, bucket AS day, bd FROM r),
          spread AS (SELECT user_id, (day + CAST(k AS INTEGER)) AS day, bd FROM ud, range($days) AS t(k))
        SELECT day AS bucket, bd, count(DISTINCT user_id) AS value FROM spread
        WHERE day BETWEEN $first AND $last GROUP BY day, bd""",
        rows=rows,
        days=days,
        first=first,
        last=last,
    )


# helpers ----------------------------------------------------------------------------------------------------------
def previous_period(first: date, last: date) -> tuple[date, date]:
    n = (last - first).days + 1
    return first - timedelta(days=n), first - timedelta(days=1)


def _bucket_of_row(value: Any, interval: Interval, math: str, last: date) -> Any:
    """The bucket a result row belongs to. Rolling maths come per day; with a coarser interval a bucket shows
    the value on its last day (or on the range's last day, for the current bucket)."""
    if math not in _ROLLING_DAYS or interval == "day":
        return value
    if interval == "hour":
        return None
    start = bucket_of(value, interval)
    end = min(next_bucket(start, interval) - timedelta(days=1), last)
    return start if value == end else None


def _combine(math: str, values: list[float | None]) -> float | None:
    """The measure over the range from the buckets' values: a bucket with events but no property values is
    None, and so is the range when every bucket is; no events at all is 0 for counts and sums."""
    known = [v for v in values if v is not None]
    if known:
        return float(_ADDITIVE[math](known))
    if values or math in ("min", "max"):
        return None
    return 0.0


def _label(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _bd_label(value: Any) -> str:
    if value is None:
        return NONE
    return str(value)


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _ordered(lines: dict[str, TrendsLine]) -> list[TrendsLine]:
    """Breakdown lines by total, largest first; ``$other`` and ``$none`` last."""
    return sorted(
        lines.values(),
        key=lambda line: (line.breakdown in (OTHER, NONE), -(line.total or 0.0), line.breakdown or ""),
    )


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class Formula:
    """Arithmetic over series letters (``(A+B)/C*100``): numbers, letters, + − × ÷ and parentheses only.

    Parsed with Python's ``ast`` and walked here; nothing is ever evaluated as code. Division by zero and any
    missing operand give ``None`` (an empty point on the chart), not an error.
    """

    def __init__(self, text: str, n_series: int) -> None:
        try:
            self.tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise ValidationError(f"formula {text!r} is not valid arithmetic") from exc
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                if len(node.id) != 1 or node.id not in LETTERS[:n_series]:
                    raise ValidationError(
                        f"formula {text!r} names {node.id!r}; use the letters A–{LETTERS[n_series - 1]} of the series"
                    )
            elif not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Constant, ast.Load, ast.USub, ast.UAdd, *_OPS)) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, int | float)
            ):
                raise ValidationError(f"formula {text!r} may use only letters, numbers, + - * / and parentheses")

    def evaluate(self, value_of: Any) -> float | None:
        return _eval(self.tree, value_of)


def _eval(node: ast.expr, value_of: Any) -> float | None:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, int | float)  # Formula admits only numeric constants
        return float(node.value)
    if isinstance(node, ast.Name):
        v = value_of(LETTERS.index(node.id))
        return None if v is None else float(v)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, value_of)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left, value_of), _eval(node.right, value_of)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Div) and right == 0:
        return None
    return float(_OPS[type(node.op)](left, right))


__all__ = ["Formula", "Series", "TrendsQuery", "TrendsResult"]
