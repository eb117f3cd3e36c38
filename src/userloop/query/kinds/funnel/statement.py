"""The funnel's one statement: the scan, the attempts of the funnel's order, the people and their breakdown
values as CTEs, then the outputs asked for joined by ``UNION ALL`` (rows tagged by ``section``). The builder of
each order is chosen here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import Context
from userloop.query.kinds.base import Staged
from userloop.query.kinds.funnel.attempts import ReachBuilder, persons
from userloop.query.kinds.funnel.breakdown import labelled, members
from userloop.query.kinds.funnel.context import FunnelContext
from userloop.query.kinds.funnel.ctes import Ctes, union_all
from userloop.query.kinds.funnel.fold import RELATION, FoldedReach, fold_best, fold_source, id_lookup
from userloop.query.kinds.funnel.people import people_sections
from userloop.query.kinds.funnel.scan import scan
from userloop.query.kinds.funnel.sequential import SequentialReach
from userloop.query.kinds.funnel.sequential_plain import SequentialPlainReach
from userloop.query.kinds.funnel.steps import steps_section
from userloop.query.kinds.funnel.strict import StrictReach
from userloop.query.kinds.funnel.time_to_convert import time_to_convert_section
from userloop.query.kinds.funnel.trend import trend_section
from userloop.query.kinds.funnel.unordered import UnorderedReach
from userloop.store.backend import Capability

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.query import FunnelQuery


@dataclass
class FunnelStatement:
    ctx: Context
    q: FunnelQuery
    ctes: Ctes = field(default_factory=Ctes)
    #: ``best`` comes from the fold's table (:mod:`.fold`) instead of the scan and the reach passes.
    folded: bool = False

    def __post_init__(self) -> None:
        self.fc = FunnelContext.of(self.ctx, self.q)

    def statement(self) -> exp.Expr:
        """Every output the definition asks for, over all the CTEs."""
        self._build()
        parts = [steps_section(self.fc), time_to_convert_section(self.fc, self.ctes)]
        if self.q.people is not None:
            parts.extend(people_sections(self.fc))
        if self.q.trend_interval is not None:
            parts.append(trend_section(self.fc))
        return self.ctes.attach(union_all(parts), self.ctes.names())

    def staged(self) -> exp.Expr | Staged:
        """The statement, with ``best`` folded outside SQL (:mod:`.fold`) where the funnel is plain sequential and
        the backend runs such a stage; else :meth:`statement`."""
        plain = self.statement()
        if not self.plain_sequential() or Capability.ARROW_STAGE not in self.ctx.capabilities:
            return plain
        fc = self.fc
        then = FunnelStatement(self.ctx, self.q, folded=True).statement()
        fold = partial(fold_best, n=fc.n, w_us=fc.w_us, hi_us=fc.hi_us)
        return Staged(
            plain=plain,
            source=fold_source(scan(fc), fc.n),
            fold=fold,
            lookup=id_lookup(self.ctx.table("events")),
            relation=RELATION,
            then=then,
        )

    def with_ctes(self, query: exp.Expr, upto: str) -> exp.Expr:
        """``query`` over the CTEs up to and including ``upto``."""
        self._build()
        names = self.ctes.names()
        return self.ctes.attach(query, names[: names.index(upto) + 1])

    def plain_sequential(self) -> bool:
        """A sequential funnel without optional steps, exclusions or an event-property breakdown needs no chain
        payload (:mod:`.sequential_plain`)."""
        q = self.q
        return (
            q.order == "sequential"
            and not q.exclusions
            and not any(step.optional for step in q.steps)
            and not self.fc.event_breakdown
        )

    def _reach(self) -> ReachBuilder:
        if self.folded:
            return FoldedReach(self.fc, self.ctes)
        if self.plain_sequential():
            return SequentialPlainReach(self.fc, self.ctes)
        if self.q.order == "any":
            return UnorderedReach(self.fc, self.ctes)
        if self.q.order == "strict":
            return StrictReach(self.fc, self.ctes)
        return SequentialReach(self.fc, self.ctes)

    def _build(self) -> None:
        if self.ctes:
            return
        if not self.folded:
            self.ctes.add("scan", scan(self.fc), shared=self.q.order != "strict")
        self._reach().build()
        self.ctes.add("persons", persons())
        self.ctes.add("members", members(self.fc), shared=True)
        self.ctes.add("lab", labelled(self.fc), shared=True)
