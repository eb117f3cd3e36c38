"""A funnel's people and their depth, for the analyses and rules that start where a funnel leaves people (paths
after a drop-off, profile rules on funnel steps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import Context, sql
from userloop.query.kinds.funnel.statement import FunnelStatement

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.query import FunnelQuery


def funnel_levels(ctx: Context, funnel: FunnelQuery) -> exp.Select:
    """Every person who entered ``funnel`` (and was not excluded), one row each: ``user_id``, ``level`` (the
    deepest step any attempt reached, 1-based) and ``last_step_time`` (naive UTC time of that step's event in the
    person's chosen attempt — see :mod:`userloop.query.kinds.funnel`). Paths after a drop-off start from
    ``last_step_time``."""
    query = sql(
        "SELECT m.user_id AS user_id, m.depth AS level, make_timestamp(m.lt) AS last_step_time FROM members AS m"
    )
    return FunnelStatement(ctx, funnel).with_ctes(query, upto="members")  # type: ignore[return-value]
