"""Breakdowns of a funnel: the value each person is counted under and the ``limit`` most frequent values.

An event-property value comes from the person's chosen attempt (``first_touch``, ``last_touch`` or a step's event;
see **The attempt used for times and attribution** in :mod:`userloop.query.kinds.funnel`), carried as ``bv`` by
the attempt builders; a profile property is the person's current value. ``members`` holds one row per person left
after exclusions with their value, ``lab`` the same rows with values outside the top ``limit`` as ``$other`` and
no value as ``$none``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.compile import Context, sql
from userloop.query.spec import NONE, OTHER
from userloop.schema.types import PropertyType

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.context import FunnelContext
    from userloop.query.kinds.funnel.query import FunnelQuery


def check_breakdown(ctx: Context, q: FunnelQuery) -> None:
    """The checks that need the project's schema: funnels break down by single property values."""
    b = q.breakdown
    if b is None:
        return
    ptype = ctx.prop_type(b.source, b.property)
    if b.bins is not None:
        raise ValidationError("funnels break down by property values; remove 'bins' from the breakdown")
    if ptype == PropertyType.LIST:
        raise ValidationError(f"{b.property!r} is a list; break down by a single-valued property")


def members(fc: FunnelContext) -> exp.Expr:
    """``members``: the people not excluded, with depth, reached-steps mask, entry time, the time of their chosen
    attempt's last event and their breakdown value."""
    b = fc.q.breakdown
    if b is not None and b.source == "user":
        value = exp.cast(fc.ctx.prop("user", b.property, "u"), exp.DataType.Type.VARCHAR)
        return sql(
            """SELECT p.user_id AS user_id, p.depth AS depth, p.rm AS rm, p.entry AS entry,
                 struct_extract(p.c, 'lt') AS lt, $value AS bd
               FROM persons AS p LEFT JOIN $users AS u ON u.user_id = p.user_id
               WHERE NOT struct_extract(p.c, 'xs')""",
            value=value,
            users=fc.ctx.table("users"),
        )
    return sql(
        """SELECT p.user_id AS user_id, p.depth AS depth, p.rm AS rm, p.entry AS entry,
             struct_extract(p.c, 'lt') AS lt, struct_extract(p.c, 'bv') AS bd
           FROM persons AS p WHERE NOT struct_extract(p.c, 'xs')"""
    )


def counted(fc: FunnelContext, query: exp.Expr) -> exp.Expr:
    """``query`` (a ``SELECT`` over ``best AS b``) over the best attempts of the people counted: ``best`` joined
    to their labels ``lab AS m``. Where nothing is broken down and nobody can be excluded, every person in ``best``
    is in ``lab`` once with no label, and the join is left out (at 20M events it took 0.25 of the funnel's
    0.7 s)."""
    if fc.q.breakdown is None and not fc.q.exclusions:
        return query
    assert isinstance(query, exp.Select)
    return query.join(exp.to_table("lab").as_("m"), on=sql("m.user_id = b.user_id"), copy=False)


def labelled(fc: FunnelContext) -> exp.Expr:
    """``lab``: the members with their value folded into the top ``limit``, ``$other`` and ``$none``."""
    if fc.q.breakdown is None:
        return sql(
            "SELECT m.user_id AS user_id, m.depth AS depth, m.rm AS rm, m.entry AS entry, "
            "CAST(NULL AS VARCHAR) AS bd FROM members AS m"
        )
    return sql(
        """SELECT m.user_id AS user_id, m.depth AS depth, m.rm AS rm, m.entry AS entry,
             CASE WHEN m.bd IS NULL THEN $none
                  WHEN m.bd IN (SELECT top.bd FROM (
                    SELECT x.bd AS bd FROM members AS x WHERE x.bd IS NOT NULL
                    GROUP BY x.bd ORDER BY count(*) DESC, x.bd LIMIT $limit) AS top) THEN m.bd
                  ELSE $other END AS bd
           FROM members AS m""",
        none=NONE,
        other=OTHER,
        limit=fc.q.breakdown.limit,
    )
