"""Funnels in any order: an attempt starts at any event of a step inside the date range and includes, for every
step, the first event of that step at or after it within the window; its level is the number of steps it
includes (see **Any order** in :mod:`userloop.query.kinds.funnel`). One pass of ``first_value`` windows looking
forward gives every row the next event of each step (``nxt``), ``att`` the level and step times of the attempt
starting there, and ``reach`` one row per attempt and level reached.
"""

from __future__ import annotations

from sqlglot import exp

from userloop.query.compile import col, sql
from userloop.query.kinds.funnel.attempts import ReachBuilder, best_attempts
from userloop.query.kinds.funnel.spec import StepAttribution
from userloop.query.kinds.funnel.structs import field, greatest

#: A time later than any event, for list slots that are not used.
_NEVER = 2**62


class UnorderedReach(ReachBuilder):
    def build(self) -> None:
        self.ctes.add("nxt", self._next_events())
        self.ctes.add("att", self._attempts())
        self.ctes.add(
            "reach",
            sql(
                """SELECT a.user_id AS user_id, a.k AS k, a.ts[a.k] - a.t AS d, a.t AS o1, a.eid AS o2,
                     CASE WHEN a.k > 1 THEN a.ts[a.k] - a.ts[a.k - 1] END AS g, a.bv AS bv, a.ts[a.k] AS lt,
                     FALSE AS xs
                   FROM (SELECT att.*, unnest(generate_series(1, att.level)) AS k FROM att WHERE att.level > 0) AS a"""
            ),
        )
        self.ctes.add("best", best_attempts("reach"), shared=True)

    @property
    def _last_touch(self) -> bool:
        return self.fc.event_breakdown and self.fc.q.breakdown_attribution == "last_touch"

    @property
    def _step_touch(self) -> bool:
        return self.fc.event_breakdown and isinstance(self.fc.q.breakdown_attribution, StepAttribution)

    def _next_events(self) -> exp.Expr:
        """``nxt``: every scanned row with ``n{k}``, the first step-``k`` event at or after it — its time, or
        with the identity and value the breakdown needs."""
        select = sql("SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.v AS v FROM scan AS s")
        assert isinstance(select, exp.Select)
        a = self.fc.q.attribution_step()
        for k in range(1, self.fc.n + 1):
            if self._last_touch:
                value: exp.Expr = sql("{'t': s.t, 'e': s.eid, 'v': s.v}")
            elif self._step_touch and k == a:
                value = sql("{'t': s.t, 'v': s.v}")
            else:
                value = col("t", "s")
            nxt = sql(
                """first_value(CASE WHEN $cond THEN $value END IGNORE NULLS) OVER (
                     PARTITION BY s.user_id ORDER BY s.t, s.eid ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)""",
                cond=self.fc.step_bit(k, "s"),
                value=value,
            )
            select = select.select(exp.alias_(nxt, f"n{k}"))
        return select

    def _time_of(self, k: int) -> exp.Expr:
        n = col(f"n{k}", "w")
        return field(n, "t") if self._last_touch or (self._step_touch and k == self.fc.q.attribution_step()) else n

    def _attempts(self) -> exp.Expr:
        """``att``: the attempt starting at each row in the date range — its level, the sorted times of the steps
        it includes (``_NEVER`` for the others) and its breakdown value."""
        incs = [
            sql("coalesce($n - w.t <= $window, FALSE)", n=self._time_of(k), window=self.fc.w_us)
            for k in range(1, self.fc.n + 1)
        ]
        level: exp.Expr = exp.Literal.number(0)
        for inc in incs:
            level = exp.Add(this=level, expression=exp.cast(exp.paren(inc), exp.DataType.Type.INT))
        times = exp.Array(
            expressions=[
                sql("CASE WHEN $inc THEN $n ELSE $never END", inc=inc, n=self._time_of(k), never=_NEVER)
                for k, inc in enumerate(incs, start=1)
            ]
        )
        return sql(
            """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, $level AS level, list_sort($times) AS ts,
                 $bv AS bv
               FROM nxt AS w WHERE w.t < $hi""",
            level=level,
            times=times,
            bv=self._breakdown_value(incs),
            hi=self.fc.hi_us,
        )

    def _breakdown_value(self, incs: list[exp.Expr]) -> exp.Expr:
        """The attempt's value: on its latest included event (last touch), on the chosen step's event, or on its
        first event, whichever step that is (first touch)."""
        if not self.fc.event_breakdown:
            return exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
        if self._last_touch:
            included = [
                sql("CASE WHEN $inc THEN $n END", inc=inc, n=col(f"n{k}", "w")) for k, inc in enumerate(incs, start=1)
            ]
            return field(greatest(included), "v")
        if self._step_touch:
            a = self.fc.q.attribution_step()
            assert a is not None
            return sql("CASE WHEN $inc THEN struct_extract($n, 'v') END", inc=incs[a - 1], n=col(f"n{a}", "w"))
        return col("v", "w")
