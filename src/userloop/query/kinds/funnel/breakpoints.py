"""Which steps of a funnel are breakpoints, and why.

**Without a breakdown** (and for the overall series of a funnel with one) the breakpoint is the required step
with the highest drop-off rate, the earlier step on a tie: DOMAIN §6 item 3, "the funnel step with the highest
drop-off". It says where the funnel loses the most people, not that anything is wrong there; a funnel has one
unless no step loses anyone.

**Per breakdown value** a breakpoint is a step where that value loses people that the other values do not: a
broken payment page on Android shows as Android converting far worse than iOS and HarmonyOS at that one step,
while the step with the highest drop-off is the same for every value (most people are lost at checkout on every
device). For each breakdown value ``v`` and each required step ``k ≥ 2``, the value's step conversion
``count_v(k) / count_v(prev(k))`` is compared with the pooled conversion of every other value at the same step by
the two-proportion z-test (:func:`userloop.stats.proportions.two_proportion_z`; the values partition the people,
so the two samples are disjoint). The p-values of all the (value, step) tests of the funnel are adjusted together
by Benjamini–Hochberg (1995); a (value, step) is a breakpoint when

- its adjusted p-value (q-value) is at most :data:`FDR` (1%): among the flagged steps of many funnels, at most
  about 1% are expected to be noise;
- the value converts *worse* than the others there; and
- the effect is large enough to act on: the value's drop-off rate is at least :data:`MIN_RATIO` (2×) the others'
  and at least :data:`MIN_GAP` (5 percentage points) above it. A significant but small gap on a large sample is
  not a breakpoint.

A value may have several breakpoints, or none (the usual case when nothing is broken). A test needs every
expected count of its 2 × 2 table to be at least 5 (:data:`userloop.stats.proportions.MIN_EXPECTED`); smaller
cells are not tested and do not count in the adjustment. When the breakdown value comes from a step
(``breakdown_attribution: {"step": s}``), everyone with a value reached step ``s`` by definition, so only the
steps after ``s`` are judged and ``$none`` (the people who never reached ``s``) is neither judged nor part of the
others.

Each flagged step carries a :class:`Breakpoint` saying which rule flagged it and the numbers behind it, so a face
can say "Android converts 79% at enter_password against 98% for the other values (q = 1e-40)".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from userloop.query.kinds.funnel.results import Breakpoint, FunnelSeries
from userloop.query.spec import NONE
from userloop.stats.correction import adjust_p
from userloop.stats.proportions import two_proportion_z

if TYPE_CHECKING:
    from userloop.query.kinds.funnel.query import FunnelQuery

#: The false discovery rate at which (value, step) tests are judged, after Benjamini–Hochberg.
FDR = 0.01
#: The value's drop-off rate must be at least this many times the other values' …
MIN_RATIO = 2.0
#: … and at least this much higher (absolute, a share of the people at the previous step).
MIN_GAP = 0.05


def mark_largest_drop(series: FunnelSeries) -> None:
    """Flag the required step with the highest drop-off rate (the earlier one on a tie), if any step loses people."""
    rates = [
        (s.drop_off_rate, -s.step)
        for s in series.steps[1:]
        if not s.optional and s.drop_off_rate is not None and s.drop_off_rate > 0
    ]
    if rates:
        rate, neg_step = max(rates)
        step = series.steps[-neg_step - 1]
        step.is_breakpoint = True
        step.breakpoint = Breakpoint(rule="largest_drop_off", drop_off_rate=rate)


@dataclass(frozen=True)
class _Test:
    value: int  # index into the series list
    step: int  # 1-based step
    conversion: float
    others: float
    p_value: float


def mark_behind_others(q: FunnelQuery, series: list[FunnelSeries]) -> None:
    """Flag, in each breakdown series, the steps where that value converts significantly and materially worse
    than the other values pooled (the rule in the module docstring)."""
    attribution = q.attribution_step()
    # With the value taken at step s > 1, everyone with a value reached s and $none is "never reached s".
    by_step = attribution is not None and attribution > 1
    first_judged = attribution + 1 if attribution is not None and by_step else 2
    judged = [i for i, s in enumerate(series) if not (by_step and s.breakdown == NONE)]
    tests: list[_Test] = []
    for k in range(first_judged, len(q.steps) + 1):
        if q.steps[k - 1].optional:
            continue
        prev = q.previous_required(k)
        reached = {i: series[i].steps[k - 1].count for i in judged}
        before = {i: series[i].steps[prev - 1].count for i in judged}
        all_reached, all_before = sum(reached.values()), sum(before.values())
        for i in judged:
            x_o, n_o = all_reached - reached[i], all_before - before[i]
            test = two_proportion_z(reached[i], before[i], x_o, n_o)
            if test.code is None:
                tests.append(_Test(i, k, test.rate_a, test.rate_b, test.p_value))
    if not tests:
        return
    adjusted = adjust_p([t.p_value for t in tests], "bh")
    for t, q_value in zip(tests, adjusted, strict=True):
        drop, others_drop = 1.0 - t.conversion, 1.0 - t.others
        if q_value <= FDR and drop >= MIN_RATIO * others_drop and drop - others_drop >= MIN_GAP:
            step = series[t.value].steps[t.step - 1]
            step.is_breakpoint = True
            step.breakpoint = Breakpoint(
                rule="behind_other_values",
                drop_off_rate=drop,
                conversion=t.conversion,
                others_conversion=t.others,
                p_value=t.p_value,
                q_value=float(q_value),
            )
