"""Sequential funnels without optional steps, exclusions or an event-property breakdown: the latest-start
recurrence, one window pass per step over a shrinking row set and no joins.

The attempts are those of **Attempts** in :mod:`userloop.query.kinds.funnel` (sequential order). Such a funnel
needs no chain payload: every output follows from each step event's latest start and previous step's time.
``r{k}`` holds the rows still useful after step ``k``: those that end an attempt at step ``k`` within the window
(``l``: the latest start of a chain ending there; ``p``: the time of that chain's step ``k−1`` event) and those
matching a later step. For a step-``k`` row the latest start is the last ``l`` among the strictly earlier rows (in
``(time, event_id)`` order) that end an attempt at ``k−1`` — ``l`` never decreases along a person's rows, so the
last is the largest — and the latest step ``k−1`` event of that chain is that same row: the attempt the funnel
chooses. These are the rows the general passes of :mod:`.sequential` produce, without carrying chains (ClickHouse's
``windowFunnel`` keeps the same "latest start per level" state, in one per-person scan).
"""

from __future__ import annotations

from sqlglot import exp

from userloop.query.compile import col, literal, or_, sql
from userloop.query.kinds.funnel.attempts import ReachBuilder, best_attempts
from userloop.query.kinds.funnel.context import qualify
from userloop.query.kinds.funnel.ctes import union_all


class SequentialPlainReach(ReachBuilder):
    def build(self) -> None:
        fc = self.fc
        later = {k: or_([fc.step_bit(j, "s") for j in range(k + 1, fc.n + 1)]) for k in range(1, fc.n + 1)}
        first = exp.and_(fc.step_bit(1, "s"), exp.LT(this=col("t", "s"), expression=literal(fc.hi_us)))
        self.ctes.add("r1", self._first_rows(first, later[1]))  # read once (by r2): inlined, not stored
        for k in range(2, fc.n + 1):
            self.ctes.add(f"r{k}", self._rows(k, qualify(later[k], "w") if k < fc.n else exp.false()), shared=True)
        self.ctes.add("reach", union_all([self._reach_row(k) for k in range(2, fc.n + 1)]))
        self.ctes.add("best", exp.union(self._entered(first), best_attempts("reach"), distinct=False), shared=True)

    def _first_rows(self, first: exp.Expr, later: exp.Expr) -> exp.Expr:
        """``r1``: the step-1 rows in the date range, each the start of its own attempt, and the later steps' rows."""
        return sql(
            """SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.m AS m,
                 CASE WHEN $first THEN s.t END AS l, CAST(NULL AS BIGINT) AS p
               FROM scan AS s WHERE $first OR $later""",
            first=first,
            later=later,
        )

    def _rows(self, k: int, later: exp.Expr) -> exp.Expr:
        """``r{k}``: the rows of ``r{k-1}`` with, for step-``k`` rows, the latest start and step ``k−1`` time of
        the last row strictly before them that ends an attempt at ``k−1``; kept when they end an attempt within
        the window or match a step after ``k``."""
        ends = sql("$is_k AND w.t - w.cl <= $window", is_k=self.fc.step_bit(k, "w"), window=self.fc.w_us)
        return sql(
            """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.m AS m,
                 CASE WHEN $ends THEN w.cl END AS l, CASE WHEN $ends THEN w.cp END AS p
               FROM (SELECT s.user_id, s.t, s.eid, s.m,
                       last_value(s.l IGNORE NULLS) OVER (PARTITION BY s.user_id ORDER BY s.t, s.eid
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS cl,
                       last_value(CASE WHEN s.l IS NOT NULL THEN s.t END IGNORE NULLS) OVER (
                         PARTITION BY s.user_id ORDER BY s.t, s.eid
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS cp
                     FROM $prev AS s) AS w
               WHERE $ends OR $later""",
            ends=ends,
            later=later,
            prev=exp.to_identifier(f"r{k - 1}"),
        )

    def _reach_row(self, k: int) -> exp.Expr:
        """The attempts ending at step ``k`` (``k`` ≥ 2) in the common shape of ``reach``."""
        return sql(
            """SELECT r.user_id AS user_id, $k AS k, r.t - r.l AS d, r.t AS o1, r.eid AS o2, r.t - r.p AS g,
                 CAST(NULL AS VARCHAR) AS bv, r.t AS lt, FALSE AS xs
               FROM $r AS r WHERE r.l IS NOT NULL""",
            k=k,
            r=exp.to_identifier(f"r{k}"),
        )

    def _entered(self, first: exp.Expr) -> exp.Expr:
        """Step 1's best attempts: every attempt is one event (duration 0) and the chosen one is the person's
        first, so a plain ``min(time)`` per person replaces the struct minimum over every step-1 row."""
        return sql(
            """SELECT s.user_id AS user_id, 1 AS k,
                 {'d': CAST(0 AS BIGINT), 'o1': min(s.t), 'o2': CAST(NULL AS VARCHAR), 'g': CAST(NULL AS BIGINT),
                  'bv': CAST(NULL AS VARCHAR), 'lt': min(s.t), 'xs': FALSE} AS s
               FROM scan AS s WHERE $first GROUP BY s.user_id""",
            first=first,
        )
