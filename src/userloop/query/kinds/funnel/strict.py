"""Strict funnels: each event of an attempt is the very next event of the person after the previous one (no other
event passing the global filters lies between them; see **Attempts** in :mod:`userloop.query.kinds.funnel`).

The previous event of every row comes from one ``lag`` pass (``seq``), so each step is hash joins only: a
step-``k`` event continues the chain of the event right before it, if that event finished one of the steps that
may come right before ``k`` (chains as in :mod:`.chains`).
"""

from __future__ import annotations

from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.funnel.chains import ChainReach


class StrictReach(ChainReach):
    def build(self) -> None:
        self.ctes.add("seq", self._seq(), shared=True)
        super().build()

    def _seq(self) -> exp.Expr:
        """Strict order: the scanned events that match a step or exclusion, each with a pointer to the previous
        event of the same person (any event) and, per exclusion, the next excluded event after it."""
        select = sql(
            """SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v, s.m AS m, s.rid AS rid,
                 lag(s.rid) OVER (PARTITION BY s.user_id ORDER BY s.t, s.eid) AS prid
               FROM scan AS s"""
        )
        assert isinstance(select, exp.Select)
        for i in range(len(self.fc.q.exclusions)):
            nx = sql(
                """first_value(CASE WHEN $cond THEN {'t': s.t, 'e': s.eid} END IGNORE NULLS) OVER (
                     PARTITION BY s.user_id ORDER BY s.t, s.eid ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)""",
                cond=self.fc.excl_bit(i, "s"),
            )
            select = select.select(exp.alias_(nx, f"nx{i}"))
        return sql("SELECT z.* FROM ($all) AS z WHERE z.m <> 0", all=select)

    def step_pass(self, k: int) -> exp.Expr:
        """A step-``k`` event continues the chain of the event right before it, if that event finished one of the
        steps that may come right before ``k``."""
        starting = self.starting(k)
        if k == 1:
            return sql(
                "SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl, "
                "CAST(NULL AS BIGINT) AS pt FROM seq AS w WHERE $cond AND w.t < $hi",
                pl=self.payload(1, None, {i: exp.column(f"nx{i}", "w") for i in starting}, "w"),
                cond=self.fc.step_bit(1, "w"),
                hi=self.fc.hi_us,
            )
        targets = sql("SELECT r.* FROM seq AS r WHERE $cond", cond=self.fc.step_bit(k, "r"))
        preds = self.fc.q.predecessors(k)
        return self.join_candidates(k, targets, {j: exp.column("prid", "r") for j in preds}, starting)
