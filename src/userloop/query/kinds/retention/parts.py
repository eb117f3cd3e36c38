"""The pieces every retention statement uses, compiled once from the definition: the scan's bounds (the cohorts
and the ``periods`` after the last one, never past today; see the last paragraphs of
:mod:`userloop.query.kinds.retention`), the start and return conditions, the key ``min()`` keeps over start
events (the time, or the time and the breakdown value on it) and the value property of value retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, col, sql
from userloop.query.kinds.retention.breakdown import breakdown_value
from userloop.query.kinds.retention.clauses import grouped
from userloop.query.kinds.retention.periods import PeriodGrid, period_index, scan_bounds
from userloop.schema.types import PropertyType

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


@dataclass(frozen=True)
class Parts:
    """The pieces both cohort shapes use, compiled once."""

    ctx: Context
    full: PeriodGrid  # the cohorts and the ``periods`` after the last one
    lo: datetime  # start of the first cohort
    chi: datetime  # end of the last cohort (or of today)
    hi: datetime  # end of the last period followed (or of today)
    start: exp.Expr
    ret: exp.Expr
    filters: exp.Expr
    skey: exp.Expr  # what min() over start events keeps: the time, or (time, has no value, value)
    t0: exp.Expr  # the start time out of ``s``
    s_bd: exp.Expr  # the breakdown value out of ``s``
    value: exp.Expr  # the value property of an event row (a typed NULL without value retention)
    value_sum: exp.Expr  # its sum over a group (a typed NULL without value retention)
    events: exp.Expr

    @classmethod
    def of(cls, q: RetentionQuery, ctx: Context, grid: PeriodGrid) -> Parts:
        full = grid.extended(q.periods)
        lo, hi = scan_bounds(ctx, full, 0, full.count - 1)
        event_bd = q.breakdown is not None and q.breakdown.source == "event"
        bd = breakdown_value(ctx, q.breakdown, "e") if event_bd and q.breakdown else exp.null()
        value = value_expr(q, ctx)
        return cls(
            ctx=ctx,
            full=full,
            lo=lo,
            chi=scan_bounds(ctx, grid, 0, grid.count - 1)[1],
            hi=hi,
            start=grouped(ctx.event_cond(q.start)),
            ret=grouped(ctx.event_cond(q.returning)),
            filters=grouped(ctx.filters_cond(q.filters)),
            skey=sql("struct_pack(t := e.time, n := $bd IS NULL, b := $bd)", bd=bd) if event_bd else col("time", "e"),
            t0=sql("struct_extract(s, 't')") if event_bd else exp.column("s"),
            s_bd=sql("struct_extract(s, 'b')") if event_bd else exp.null(),
            value=value,
            value_sum=exp.func("sum", value) if q.value is not None else value,
            events=ctx.table("events"),
        )

    def index_of(self, column: exp.Expr) -> exp.Expr:
        """The index in ``full`` of the local period ``column`` falls in."""
        return period_index(self.ctx, column, self.full)


def value_expr(q: RetentionQuery, ctx: Context) -> exp.Expr:
    """The summed property of value retention as a column of ``e``; a typed NULL without value retention."""
    if q.value is None:
        return exp.cast(exp.null(), exp.DataType.Type.DOUBLE)
    ctx.require_pii(q.value.property, "a measure over")
    ptype = ctx.prop_type("event", q.value.property)
    if ptype != PropertyType.NUMBER:
        raise ValidationError(
            f"value.property {q.value.property!r} is {ptype.value}; value retention sums a NUMBER property"
        )
    return col(q.value.property, "e")
