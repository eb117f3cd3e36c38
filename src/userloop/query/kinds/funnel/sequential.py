"""Sequential funnels in general (optional steps, exclusions, an event-property breakdown): for each step ``k``
one window pass over only the step-``k`` rows and the finished rows of the steps that may precede ``k``.

The attempts are those of **Attempts** in :mod:`userloop.query.kinds.funnel` (sequential order), carried as
chains (:mod:`.chains`). The pass orders its rows by ``(time, event_id, role)``; each step-``k`` row points
(``last_value … IGNORE NULLS`` over the strictly preceding rows) at the last candidate before it. Without optional
steps each row enters at most two passes (as a step-``k`` row and as a candidate for ``k + 1``), so the cost grows
with the rows, not with steps × rows.
"""

from __future__ import annotations

from sqlglot import exp

from userloop.query.compile import and_, col, literal, sql
from userloop.query.kinds.funnel.chains import ChainReach
from userloop.query.kinds.funnel.ctes import union_all

#: Sorting roles in a pass: an excluded event before the step row of the same event (so "strictly after" skips
#: it), the step row, then the candidate rows (so "strictly before" skips the same event's other steps).
_ROLE_EXCLUDED, _ROLE_TARGET, _ROLE_CANDIDATE = 0, 1, 2


class SequentialReach(ChainReach):
    def step_pass(self, k: int) -> exp.Expr:
        """One window over the step-``k`` rows, the finished rows of the steps that may come right before ``k``
        (candidates) and the excluded events whose span starts at ``k``, ordered by ``(time, event_id, role)``;
        each step-``k`` row points at the last candidate strictly before it (per candidate step), and a hash join
        on that pointer brings the candidate's chain."""
        starting = self.starting(k)
        preds = self.fc.q.predecessors(k) if k > 1 else []
        if k == 1 and not starting:
            return sql(
                "SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM scan AS s WHERE $cond AND s.t < $hi",
                pl=self.payload(k, None, {}, "s"),
                cond=self.fc.step_bit(1, "s"),
                hi=self.fc.hi_us,
            )
        windowed = self._windowed(self._rows(k, preds, starting), preds, starting)
        targets = sql("SELECT r.* FROM ($windowed) AS r WHERE r.role = $role", windowed=windowed, role=_ROLE_TARGET)
        if k == 1:
            nxs = {i: exp.column(f"nx{i}", "w") for i in starting}
            return sql(
                "SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM ($targets) AS w",
                pl=self.payload(k, None, nxs, "w"),
                targets=targets,
            )
        return self.join_candidates(k, targets, {j: exp.column(f"c{j}", "r") for j in preds}, starting)

    def _rows(self, k: int, preds: list[int], starting: list[int]) -> exp.Expr:
        """The pass's rows with their ``role`` and ``j`` (candidate step or exclusion): the step-``k`` rows (of
        people with a candidate), the candidates (of people with a step-``k`` row) and the excluded events."""
        target_where = [self.fc.step_bit(k, "s")]
        if k == 1:
            target_where.append(exp.LT(this=col("t", "s"), expression=literal(self.fc.hi_us)))
        else:
            target_where.append(
                sql("s.user_id IN (SELECT p.user_id FROM $prev AS p)", prev=exp.to_identifier(f"f{preds[0]}"))
            )
        parts = [
            sql(
                "SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.rid AS rid, $role AS role, 0 AS j "
                "FROM scan AS s WHERE $where",
                role=_ROLE_TARGET,
                where=and_(target_where),
            )
        ]
        for j in preds:
            parts.append(
                sql(
                    """SELECT p.user_id, p.t, p.eid, NULL, p.rid, $role, $j FROM $prev AS p
                       WHERE p.user_id IN (SELECT s.user_id FROM scan AS s WHERE $cond)""",
                    role=_ROLE_CANDIDATE,
                    j=j,
                    prev=exp.to_identifier(f"f{j}"),
                    cond=self.fc.step_bit(k, "s"),
                )
            )
        for i in starting:
            x_where = [self.fc.excl_bit(i, "s")]
            if k > 1:
                x_where.append(
                    sql("s.user_id IN (SELECT p.user_id FROM $prev AS p)", prev=exp.to_identifier(f"f{preds[0]}"))
                )
            parts.append(
                sql(
                    "SELECT s.user_id, s.t, s.eid, NULL, s.rid, $role, $i FROM scan AS s WHERE $where",
                    role=_ROLE_EXCLUDED,
                    i=i,
                    where=and_(x_where),
                )
            )
        return union_all(parts)

    def _windowed(self, rows: exp.Expr, preds: list[int], starting: list[int]) -> exp.Select:
        """``rows`` with, per candidate step ``j``, the pointer ``c{j}`` to the last candidate strictly before
        each row, and per exclusion starting here the next excluded event ``nx{i}`` strictly after it."""
        windowed = sql("SELECT q.* FROM ($union) AS q", union=rows)
        assert isinstance(windowed, exp.Select)
        for j in preds:
            pointer = sql(
                """last_value(CASE WHEN q.role = $role AND q.j = $j THEN q.rid END IGNORE NULLS) OVER (
                     PARTITION BY q.user_id ORDER BY q.t, q.eid, q.role
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)""",
                role=_ROLE_CANDIDATE,
                j=j,
            )
            windowed = windowed.select(exp.alias_(pointer, f"c{j}"))
        for i in starting:
            nx = sql(
                """first_value(CASE WHEN q.role = $role AND q.j = $i THEN {'t': q.t, 'e': q.eid} END IGNORE NULLS)
                   OVER (PARTITION BY q.user_id ORDER BY q.t, q.eid, q.role
                         ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)""",
                role=_ROLE_EXCLUDED,
                i=i,
            )
            windowed = windowed.select(exp.alias_(nx, f"nx{i}"))
        return windowed
