"""What the ordered funnels (``sequential`` with optional steps, exclusions or an event breakdown, and
``strict``) share: attempts as chains carried from step to step (see **Attempts** and **Exclusions** in
:mod:`userloop.query.kinds.funnel`).

``f{k}`` holds the rows of step ``k`` that end an attempt within the window, each with its chosen chain's payload
``pl`` — its start ``st``/``se``, the attribution value ``av``, per exclusion the next excluded event after its
``from_step`` event ``x{i}n``/``x{i}e`` and whether one came before its ``to_step`` event ``x{i}b`` — and the time
``pt`` of the chain's previous step. Each order finds, for a step-``k`` row, the candidate rows of ``f{j}`` (``j``
a step that may come right before ``k``) it may continue; a hash join on that pointer brings the candidate's chain.
The latest start of a chain ending at a row never decreases along the person's rows of a step, so the last
candidate is the best one; a row whose best chain is longer than the window can never be extended within it and
is dropped for good.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping

from sqlglot import exp

from userloop.query.compile import col, or_, sql
from userloop.query.kinds.funnel.attempts import ReachBuilder, best_attempts
from userloop.query.kinds.funnel.ctes import union_all
from userloop.query.kinds.funnel.structs import field, greatest, struct


class ChainReach(ReachBuilder):
    """Base of the ordered builders: ``f1``…``f{n}`` from :meth:`step_pass`, then ``reach`` and ``best``."""

    def build(self) -> None:
        for k in range(1, self.fc.n + 1):
            self.ctes.add(f"f{k}", self.step_pass(k), shared=True)
        self.ctes.add("reach", union_all([self._reach_row(k) for k in range(1, self.fc.n + 1)]))
        self.ctes.add("best", best_attempts("reach"), shared=True)

    @abstractmethod
    def step_pass(self, k: int) -> exp.Expr:
        """``f{k}``: the rows of step ``k`` that end an attempt within the window, with their chain's payload."""

    def starting(self, k: int) -> list[int]:
        """The exclusions whose span starts at step ``k``."""
        return [i for i in range(len(self.fc.q.exclusions)) if self.fc.q.exclusion_span(i)[0] == k]

    def join_candidates(
        self, k: int, targets: exp.Expr, pointers: Mapping[int, exp.Expr], starting: list[int]
    ) -> exp.Expr:
        """Step-``k`` rows with the chain of the candidate each points at (per candidate step ``j``, the row
        ``pointers[j]`` of ``f{j}``): the candidate with the latest start, then the latest row, then the higher
        step; kept when that attempt fits the window."""
        select = sql("SELECT r.* FROM ($targets) AS r", targets=targets)
        assert isinstance(select, exp.Select)
        cands = []
        for j, pointer in pointers.items():
            alias = exp.to_identifier(f"p{j}")
            select = select.join(
                exp.table_(f"f{j}"),
                on=sql("$a.rid = $pointer", a=alias, pointer=pointer),
                join_type="left",
                join_alias=f"p{j}",
            )
            cands.append(
                sql(
                    """CASE WHEN $a.rid IS NOT NULL THEN
                         {'st': struct_extract($a.pl, 'st'), 'se': struct_extract($a.pl, 'se'), 't': $a.t,
                          'e': $a.eid, 'j': $j, 'pl': $a.pl} END""",
                    a=alias,
                    j=j,
                )
            )
        picked = select.select(exp.alias_(greatest(cands), "bp"))
        return sql(
            """SELECT w.user_id AS user_id, w.t AS t, w.eid AS eid, w.v AS v, w.rid AS rid, $pl AS pl,
                 struct_extract(w.bp, 't') AS pt
               FROM ($picked) AS w
               WHERE w.bp IS NOT NULL AND w.t - struct_extract(w.bp, 'st') <= $window""",
            pl=self.payload(k, exp.column("bp", "w"), {i: exp.column(f"nx{i}", "w") for i in starting}, "w"),
            picked=picked,
            window=self.fc.w_us,
        )

    def payload(self, k: int, bp: exp.Expr | None, nxs: Mapping[int, exp.Expr], alias: str) -> exp.Expr:
        """The chain's payload after step ``k``: its start, the attribution value, per exclusion the next excluded
        event after its ``from_step`` event and whether one came before its ``to_step`` event."""
        row_t, row_e, row_v = col("t", alias), col("eid", alias), col("v", alias)
        prev = None if bp is None else field(bp, "pl")

        def carried(name: str, default: exp.Expr) -> exp.Expr:
            return default if prev is None else field(prev, name)

        fields: list[tuple[str, exp.Expr]] = [
            ("st", row_t if prev is None else field(prev, "st")),
            ("se", row_e if prev is None else field(prev, "se")),
        ]
        a = self.fc.q.attribution_step()
        if self.fc.event_breakdown and a is not None:
            fields.append(("av", row_v if a == k else carried("av", exp.cast(exp.null(), exp.DataType.Type.VARCHAR))))
        for i in range(len(self.fc.q.exclusions)):
            _, t = self.fc.q.exclusion_span(i)
            if i in nxs:
                xn, xe = field(nxs[i], "t"), field(nxs[i], "e")
            else:
                xn = carried(f"x{i}n", exp.cast(exp.null(), exp.DataType.Type.BIGINT))
                xe = carried(f"x{i}e", exp.cast(exp.null(), exp.DataType.Type.VARCHAR))
            if t == k and prev is not None:
                before = sql(
                    "coalesce($xn < $t OR ($xn = $t AND $xe < $e), FALSE)",
                    xn=field(prev, f"x{i}n"),
                    xe=field(prev, f"x{i}e"),
                    t=row_t,
                    e=row_e,
                )
            else:
                before = carried(f"x{i}b", exp.false())
            fields += [(f"x{i}n", xn), (f"x{i}e", xe), (f"x{i}b", before)]
        return struct(fields)

    def _reach_row(self, k: int) -> exp.Expr:
        """The attempts ending at step ``k`` in the common shape of ``reach``."""
        pl = col("pl", "r")
        a = self.fc.q.attribution_step()
        if not self.fc.event_breakdown:
            bv: exp.Expr = exp.cast(exp.null(), exp.DataType.Type.VARCHAR)
        elif a is None:
            bv = col("v", "r")
        else:
            bv = field(pl, "av")
        excluded: list[exp.Expr] = []
        for i in range(len(self.fc.q.exclusions)):
            f, t = self.fc.q.exclusion_span(i)
            if k >= t:
                excluded.append(field(pl, f"x{i}b"))
            elif k >= f:
                excluded.append(
                    sql(
                        "coalesce($xn <= $st + $window, FALSE)",
                        xn=field(pl, f"x{i}n"),
                        st=field(pl, "st"),
                        window=self.fc.w_us,
                    )
                )
        return sql(
            """SELECT r.user_id AS user_id, $k AS k, r.t - struct_extract(r.pl, 'st') AS d, r.t AS o1, r.eid AS o2,
                 r.t - r.pt AS g, $bv AS bv, r.t AS lt, $xs AS xs
               FROM $f AS r""",
            k=k,
            bv=bv,
            xs=or_(excluded),
            f=exp.to_identifier(f"f{k}"),
        )
