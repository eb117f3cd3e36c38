"""What every funnel builder derives from the definition, computed once: the local days of the date range, the
scan's UTC bounds, the window in microseconds, and the step and exclusion bits of the scan's mask (PostHog keeps
the same normalised facts in ``funnel_query_context.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlglot import exp

from userloop.query.compile import Context, sql
from userloop.query.kinds.funnel.breakdown import check_breakdown
from userloop.query.kinds.funnel.spec import MICROS

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.query import FunnelQuery


@dataclass(frozen=True)
class FunnelContext:
    ctx: Context
    q: FunnelQuery
    first: date  # first local day of the date range
    last: date  # last local day
    lo: datetime  # naive UTC start of the first day
    hi: datetime  # naive UTC end of the last day: step-1 events come before it
    w_us: int  # the conversion window
    hi_us: int  # ``hi`` in epoch microseconds, as the scan's ``t``
    n: int  # the number of steps

    @classmethod
    def of(cls, ctx: Context, q: FunnelQuery) -> FunnelContext:
        first, last = ctx.days(q.date_range)
        lo, hi = ctx.utc_bounds(first, last)
        fc = cls(ctx, q, first, last, lo, hi, q.window.seconds * MICROS, _epoch_us(hi), len(q.steps))
        check_breakdown(ctx, q)
        return fc

    @property
    def event_breakdown(self) -> bool:
        """The breakdown value comes from an event of the attempt (not from the person's profile)."""
        return self.q.breakdown is not None and self.q.breakdown.source == "event"

    def step_bit(self, k: int, alias: str | None = None) -> exp.Expr:
        """The scan row ``alias`` matches step ``k`` (1-based)."""
        cond = _bit(k - 1)
        return qualify(cond, alias) if alias else cond

    def excl_bit(self, i: int, alias: str | None = None) -> exp.Expr:
        """The scan row ``alias`` matches exclusion ``i`` (0-based)."""
        cond = _bit(self.n + i)
        return qualify(cond, alias) if alias else cond


def _bit(index: int) -> exp.Expr:
    """``m`` has bit ``index`` (0-based: steps first, then exclusions)."""
    return sql("(m & $bit) <> 0", bit=1 << index)


def qualify(cond: exp.Expr, alias: str) -> exp.Expr:
    """``cond`` with every column taken from row ``alias``."""
    for c in cond.find_all(exp.Column):
        c.set("table", exp.to_identifier(alias))
    return cond


def _epoch_us(value: datetime) -> int:
    return (value - datetime(1970, 1, 1)) // timedelta(microseconds=1)
