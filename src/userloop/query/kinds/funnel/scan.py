"""The funnel's one scan of the events (``scan``): the date range from its first local midnight to its end plus
the window, the global filters applied (see **Events a funnel sees** in :mod:`userloop.query.kinds.funnel`), with a
bit per step and exclusion in ``m``, the time as epoch microseconds ``t``, the event id ``eid`` that breaks ties,
the event breakdown value ``v`` and the row id ``rid`` the chains point at. Strict order keeps every event (the
"other events" between steps matter); the other orders only those matching a step or exclusion."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import and_, col, literal, or_, sql

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext


def scan(fc: FunnelContext) -> exp.Expr:
    ctx, q = fc.ctx, fc.q
    conds = [ctx.event_cond(s, "e") for s in q.steps] + [ctx.event_cond(x, "e") for x in q.exclusions]
    mask: exp.Expr = exp.Literal.number(0)
    for i, cond in enumerate(conds):
        mask = exp.Add(this=mask, expression=sql("CASE WHEN $c THEN $bit ELSE 0 END", c=cond, bit=1 << i))
    scan_end = fc.hi + timedelta(seconds=q.window.seconds)
    parts = [
        exp.GTE(this=col("time", "e"), expression=literal(fc.lo)),
        exp.LT(this=col("time", "e"), expression=literal(scan_end)),
        ctx.filters_cond(q.filters, "e"),
    ]
    if q.order != "strict":
        parts.append(exp.paren(or_(conds)))
    value: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
    b = q.breakdown
    if b is not None and b.source == "event":
        value = exp.cast(ctx.prop("event", b.property, "e"), exp.DataType.Type.VARCHAR)
    return sql(
        """SELECT e.user_id AS user_id, epoch_us(e.time) AS t, e.event_id AS eid, $value AS v,
             CAST($mask AS BIGINT) AS m, e.rowid AS rid
           FROM $events AS e WHERE $where""",
        value=value,
        mask=mask,
        events=ctx.table("events"),
        where=and_(parts),
    )
