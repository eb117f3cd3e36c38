"""From the attempts every order produces to the ones the funnel reports (see **The attempt used for times and
attribution** in :mod:`userloop.query.kinds.funnel`).

Each order's builder (:mod:`.sequential_plain`, :mod:`.sequential`, :mod:`.strict`, :mod:`.unordered`) adds the
CTEs up to ``best``: ``reach`` holds one row per attempt and step it reaches, in one shape — ``user_id``, ``k``,
duration ``d`` (from step 1 to step ``k``), the order keys ``o1``/``o2`` (time and id of the step-``k`` event),
gap ``g`` from the previous step, breakdown value ``bv``, last event time ``lt`` and whether an exclusion removes
the person ``xs`` — and ``best`` keeps the shortest per person and step. ``persons`` then takes each person's
deepest step and its attempt (the *chosen attempt*).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.funnel.context import FunnelContext
from userloop.query.kinds.funnel.ctes import Ctes


@dataclass
class ReachBuilder(ABC):
    """One order's attempts: adds its CTEs, ending with ``reach`` and ``best``, after the ``scan``."""

    fc: FunnelContext
    ctes: Ctes

    @abstractmethod
    def build(self) -> None: ...


def best_attempts(reach: str) -> exp.Expr:
    """Per person and step, the attempt the module docstring chooses: the shortest, then the earliest step event."""
    return sql(
        """SELECT r.user_id AS user_id, r.k AS k,
             min({'d': r.d, 'o1': r.o1, 'o2': r.o2, 'g': r.g, 'bv': r.bv, 'lt': r.lt, 'xs': r.xs}) AS s
           FROM $reach AS r GROUP BY r.user_id, r.k""",
        reach=exp.to_identifier(reach),
    )


def persons() -> exp.Expr:
    """``persons``: per person the depth, the chosen attempt ``c``, the mask ``rm`` of the steps reached and the
    entry time (of the step-1 event of the best attempt reaching step 1)."""
    return sql(
        """SELECT b.user_id AS user_id, max(b.k) AS depth, arg_max(b.s, b.k) AS c,
             bit_or(CAST(1 AS BIGINT) << (b.k - 1)) AS rm,
             max(CASE WHEN b.k = 1 THEN struct_extract(b.s, 'o1') END) AS entry
           FROM best AS b GROUP BY b.user_id"""
    )
