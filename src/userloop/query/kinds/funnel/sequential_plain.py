"""Sequential funnels without optional steps, exclusions or an event-property breakdown: the latest-start
recurrence, one window pass per step over a shrinking row set, no chain payload.

The attempts are those of **Attempts** in :mod:`userloop.query.kinds.funnel` (sequential order). Such a funnel
needs no chain payload: every output follows from each step event's latest start and previous step's time.
``r{k}`` holds the rows still useful after step ``k``: those that end an attempt at step ``k`` within the window
(``l``: the latest start of a chain ending there; ``p``: the time of that chain's step ``k−1`` event) and those
matching a later step. For a step-``k`` row the latest start is the last ``l`` among the strictly earlier rows (in
``(time, event_id)`` order) that end an attempt at ``k−1`` — ``l`` never decreases along a person's rows, so the
last is the largest — and the latest step ``k−1`` event of that chain is that same row: the attempt the funnel
chooses. These are the rows the general passes of :mod:`.sequential` produce, without carrying chains (ClickHouse's
``windowFunnel`` keeps the same "latest start per level" state, in one per-person scan).

Where the time goes (bench/analytics, 20M events, 3 steps): the window pass of step 2 — DuckDB sorts its rows by
person and time, then evaluates ``last_value`` per person partition, and the evaluation, not the sort, is most of it
(``row_number`` over the same ordering costs under half). Ordering ties by an integer instead of ``event_id``
changed nothing measurable there; reading fewer rows does (see :meth:`SequentialPlainReach._rows`). Still 3.3×
chdb's ``windowFunnel`` in wall time (4.2–4.8× in CPU time) at 20M. A fold in SQL does not close it: a per-person
``list_reduce`` over ``list(… ORDER BY time, event_id)`` gave the same rows but took 3× the window passes' time at
2M. On DuckDB this path is therefore no longer the one that runs: the engine folds the scan's rows outside SQL
(:mod:`.fold`, same results, held to this path by the tests): a compiled per-person pass over the scan's rows,
0.66–0.71 s of CPU for the whole funnel at 20M on the clustered layout against this path's 4.9 s, 0.7× chdb's
``windowFunnel`` (``python -m bench.analytics``). ClickHouse, and
:func:`~userloop.query.kinds.funnel.levels.funnel_levels` inside other analyses, run this path.
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
        the window or match a step after ``k``.

        The window pass (a sort of its rows by person and time) is most of the funnel's time, so it reads only
        the rows that can matter: the step-``k`` rows, and the rows ending an attempt at ``k−1`` that lie between
        the person's first step-``k`` time minus the window and their last step-``k`` time. A row outside that
        span is either after every step-``k`` row, or so early that any step-``k`` row it precedes is beyond the
        window from its start — and from every earlier row's, since ``l`` never decreases — so it never decides
        a step-``k`` row's chain (on the bench's 20M events: 4.0M step-1 rows in, 1.3M kept). Rows matching only
        later steps skip the pass and carry no ``l``. After step 1 a chain's step ``k−1`` time is its start
        (``l`` of a step-1 row is its own time), so the second ``last_value`` is needed from ``k`` = 3 on."""
        fc = self.fc
        is_k = qualify(fc.step_bit(k), "s")
        prev = exp.to_identifier(f"r{k - 1}")
        ends = sql("$is_k AND w.t - w.cl <= $window", is_k=fc.step_bit(k, "w"), window=fc.w_us)
        windows = [exp.alias_(_last_before(col("l", "s")), "cl")]
        if k > 2:
            windows.append(exp.alias_(_last_before(sql("CASE WHEN s.l IS NOT NULL THEN s.t END")), "cp"))
        candidates = sql(
            """SELECT s.user_id, s.t, s.eid, s.m, s.l FROM $prev AS s WHERE $is_k
               UNION ALL
               SELECT s.user_id, s.t, s.eid, s.m, s.l
               FROM $prev AS s
                 JOIN (SELECT s.user_id AS user_id, min(s.t) AS lo, max(s.t) AS hi FROM $prev AS s WHERE $is_k
                       GROUP BY s.user_id) AS b
                   ON b.user_id = s.user_id
               WHERE s.l IS NOT NULL AND NOT $is_k AND s.t >= b.lo - $window AND s.t <= b.hi""",
            prev=prev,
            is_k=is_k,
            window=fc.w_us,
        )
        windowed = sql(
            """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.m AS m,
                 CASE WHEN $ends THEN w.cl END AS l, CASE WHEN $ends THEN $cp END AS p
               FROM (SELECT s.user_id, s.t, s.eid, s.m, $windows FROM ($candidates) AS s) AS w
               WHERE $ends OR ($is_k AND $later)""",
            ends=ends,
            is_k=fc.step_bit(k, "w"),
            later=later,
            cp=col("cl" if k == 2 else "cp", "w"),
            windows=windows,
            candidates=candidates,
        )
        if k == fc.n:
            return windowed
        passed = sql(
            """SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.m AS m, CAST(NULL AS BIGINT) AS l,
                 CAST(NULL AS BIGINT) AS p
               FROM $prev AS s WHERE NOT $is_k AND $later""",
            prev=prev,
            is_k=is_k,
            later=qualify(later.copy(), "s"),
        )
        return exp.union(windowed, passed, distinct=False)

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


def _last_before(value: exp.Expr) -> exp.Expr:
    """The last non-NULL ``value`` among the person's rows strictly before this one, in ``(time, event_id)``
    order."""
    return sql(
        """last_value($value IGNORE NULLS) OVER (PARTITION BY s.user_id ORDER BY s.t, s.eid
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)""",
        value=value,
    )
