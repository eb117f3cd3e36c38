"""The cohort CTEs every retention statement but the one-pass shape reads: entries ``(user_id, ci, t0, bd)`` from
the builder of the cohort type (:mod:`.first_time` or :mod:`.recurring`), their breakdown values folded
(:mod:`.breakdown`), and the cells they reached, ``hits (user_id, ci, bd, k, v)`` (one row per entry and period
with a return) — with ``masks`` and ``v0`` where the counting needs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import Context
from userloop.query.kinds.retention.breakdown import fold, top
from userloop.query.kinds.retention.first_time import first_time, masks
from userloop.query.kinds.retention.parts import Parts
from userloop.query.kinds.retention.periods import PeriodGrid
from userloop.query.kinds.retention.recurring import recurring, value_at_start

if TYPE_CHECKING:
    from userloop.query.kinds.retention.query import RetentionQuery


def cohort_ctes(q: RetentionQuery, ctx: Context, grid: PeriodGrid) -> exp.Expr:
    """``WITH … en, [top,] entries, hits[, masks][, v0]``, in front of a placeholder body."""
    parts = Parts.of(q, ctx, grid)
    head = first_time(q, parts) if q.start_type == "first_time" else recurring(q, parts)
    eb, entries = fold(q, ctx)
    ctes = [*head[:-1], ("eb", eb)]
    if q.breakdown is not None:
        ctes.append(("top", top(q)))
    ctes += [("entries", entries), head[-1]]
    if q.masked():
        ctes.append(("masks", masks(q, parts)))
    if q.value0_apart():
        ctes.append(("v0", value_at_start(parts)))
    query = exp.select("1")
    for name, body in ctes:
        query = query.with_(name, as_=body)
    return query
