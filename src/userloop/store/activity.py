"""The rule "an event is active" as SQL: one condition builder for every statement that counts activity.

Which names are passive is the project's (its ``event_names`` registry, :mod:`userloop.schema.activity`); this
module turns that list into the condition on an ``event`` column. The analyses' ``$any`` and DAU, the loader's
first and last seen, restamping them when a flag changes, the user 360 summary and the user models all use
:func:`active_cond`, so they cannot disagree on what "active" means, and none writes the list in its own way.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from userloop.store.sqlbuild import col, literal


def active_cond(passive: Iterable[str], table: str | None = None) -> exp.Expr:
    """The condition that the ``event`` column (of ``table``, an alias, when given) names an active event, given
    the project's ``passive`` event names: ``NOT "event" IN ('a', 'b', …)``, and ``TRUE`` when nothing is passive.

    Each name enters the tree as a literal node (never as text), in sorted order without repeats, so the same set
    of names gives the same statement: a caller that caches statements keys them by that set (the loader keys its
    batch statements by the batch's passive names). An empty set is ``TRUE`` rather than an empty list (which
    cannot be written) or a placeholder name; ``event`` is never NULL in stored rows."""
    names = sorted(set(passive))
    if not names:
        return exp.true()
    return exp.Not(this=exp.In(this=col("event", table), expressions=[literal(n) for n in names]))
