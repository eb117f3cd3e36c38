"""Breakdowns of retention: the value on the entry's first start event (an event property) or the person's
current value (a profile property), the ``limit`` most frequent values by cohort entries kept and the rest folded
into ``$other`` (see **Breakdown** in :mod:`userloop.query.kinds.retention`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, sql
from userloop.query.spec import OTHER, Breakdown
from userloop.schema.types import PropertyType

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def breakdown_value(ctx: Context, b: Breakdown, alias: str) -> exp.Expr:
    """The breakdown property of row ``alias`` (an event or a person), checked: single values only, no bins."""
    if b.bins is not None:
        raise ValidationError("this analysis breaks down by property values; numeric 'bins' are not supported here")
    ptype = ctx.prop_type(b.source, b.property)
    if ptype == PropertyType.LIST:
        raise ValidationError(f"{b.property!r} is a list; break down by a single-valued property")
    return ctx.prop(b.source, b.property, alias)


def fold(q: RetentionQuery, ctx: Context) -> tuple[exp.Expr, exp.Expr]:
    """Entries with their breakdown value, and with values outside the top ``limit`` folded into ``$other``."""
    b = q.breakdown
    if b is None:
        return sql("SELECT user_id, ci, t0, CAST(NULL AS VARCHAR) AS bd FROM en"), sql("SELECT * FROM eb")
    if b.source == "user":
        eb = sql(
            """SELECT en.user_id AS user_id, en.ci AS ci, en.t0 AS t0, CAST($bd AS VARCHAR) AS bd
               FROM en LEFT JOIN $users AS u ON u.user_id = en.user_id""",
            bd=breakdown_value(ctx, b, "u"),
            users=ctx.table("users"),
        )
    else:
        eb = sql("SELECT user_id, ci, t0, CAST(bd AS VARCHAR) AS bd FROM en")
    entries = sql(
        """SELECT user_id, ci, t0,
             CASE WHEN bd IS NULL THEN NULL WHEN bd IN (SELECT bd FROM top) THEN bd ELSE $other END AS bd
           FROM eb""",
        other=OTHER,
    )
    return eb, entries


def top(q: RetentionQuery) -> exp.Expr:
    """``top``: the ``limit`` values with the most cohort entries."""
    assert q.breakdown is not None
    return sql(
        "SELECT bd FROM eb WHERE bd IS NOT NULL GROUP BY bd ORDER BY count(*) DESC, bd LIMIT $limit",
        limit=q.breakdown.limit,
    )
