"""Funnels: how many people go through a series of steps, where they drop off, and how long it takes.

A funnel is 2 to 40 steps (an event or ``$any`` with filters), an ``order``, a conversion ``window``, optional
``exclusions`` and a ``breakdown``. The definitions below are exact; ``tests/query/reference_funnel.py`` restates
them in plain Python and the property tests hold the SQL to them.

**Events a funnel sees.** A person's events are totally ordered by ``(time, event_id)``; "after" means later in
that order, so two events at the same instant are still ordered. The global ``filters`` apply to every event the
funnel uses (steps, exclusions, and the "other events" of the strict order). Step 1 must fall inside the date
range (local days of the project's time zone); later steps may fall after the range's end as long as they are
within the window, so the scan reads events from the range's first local midnight to the end of the range plus
the window.

**Attempts (``sequential`` and ``strict``).** An attempt reaching step ``k`` is a chain of distinct events
``e1 < e2 < … < ek`` (in the order above) where ``ei`` matches its step, ``e1`` is a step-1 event in the date
range and ``time(ek) − time(e1) ≤ window``. One event never fills two steps of one attempt (the chain is strictly
increasing), though it may fill different steps of different attempts. An ``optional`` step may be left out: the
step after it may then follow the previous required step directly (the first and last steps are required).
``strict`` adds: each event of the chain is the very next event of the person after the previous one, i.e. no
other event passing the global filters lies between them. Each person counts at step ``k`` when some attempt
reaches step ``k``; the person's *depth* is the deepest step any attempt reaches.

**Any order.** Steps must be different events (so one event matches at most one step). An attempt starts at any
event ``e0`` of a step inside the date range and includes, for every step, the first event of that step at or
after ``e0`` whose time is at most ``time(e0) + window``; its level is the number of steps it includes. Result
step ``k`` counts the people with an attempt of level ``k`` or more ("completed k of the steps").

**The attempt used for times and attribution.** For every person and step ``k`` the funnel uses one attempt that
reaches ``k``: the shortest (``time(ek) − time(e1)``); among equally short ones the one whose step-``k`` event
comes first; then the latest possible start and, going back from step ``k``, each earlier step's event as late
as possible (for ``any`` order: the shortest, then the earliest start). ``avg/median_time_from_first`` of step
``k`` summarise that attempt's duration over the people reaching ``k``, ``avg/median_time_from_previous`` the gap
between its last two events. The person's *chosen attempt* is the one for their depth; the breakdown value
comes from it: ``first_touch`` is the value on its first event (its step-1 event; in any order whichever step
started it), ``last_touch`` on its last event, ``{"step": k}`` on its step-``k`` event (``$none`` when the
attempt has no step ``k``). Time to convert (the histogram and the series' averages) is the duration of the
attempt reaching the last step.

**Exclusions** (ordered funnels only; ``from_step`` and ``to_step`` are required steps). A person is removed from
the funnel entirely (counted nowhere) when their chosen attempt reaches ``from_step`` and an excluded event comes
after its ``from_step`` event and before its ``to_step`` event, or, when the attempt stops before ``to_step``, at
most ``window`` after the attempt's start. This is PostHog's rule of removing people who did the excluded event
between the steps, applied to the one attempt the funnel reports for the person.

**Counts.** Step ``k``'s ``count`` is the people reaching it; ``conversion_from_previous`` and ``dropped`` compare
with the previous *required* step (an optional step never loses people for the step after it). Breakpoints
(:mod:`.breakpoints`): overall, the required step with the highest drop-off rate (DOMAIN §6 item 3: the step where
most people are lost); in each breakdown series, the steps where that value converts significantly (two-proportion
z-test, Benjamini–Hochberg q ≤ 1%) and materially (drop-off ≥ 2× and ≥ 5 points) worse than the other values
pooled; each flagged step says why in ``breakpoint``.
``people`` lists who reached a step (``converted``) or reached the previous required step but not this one
(``dropped``). The conversion ``trend`` puts each person in the bucket of their first step-1 event in the range
and counts them as converted when they reached the last step (with any attempt starting in the range).
``trend_partial`` lists the trend buckets that are not whole finished periods (cut by the range, or running), and
``partial`` says the range itself reaches into today (:mod:`userloop.query.periods`).

How it runs: one statement of CTEs (:mod:`.statement`). One scan of the events (the date range plus the window) with
a bit per step and exclusion (:mod:`.scan`); then the attempts, by the builder of the funnel's order —
:mod:`.sequential_plain` (sequential without optional steps, exclusions or an event breakdown: the latest-start
recurrence; on DuckDB folded outside SQL by :mod:`.fold`), :mod:`.sequential` (sequential in general: chains, one
window pass per step), :mod:`.strict` (one ``lag`` pass, then hash joins) or :mod:`.unordered` (any order:
``first_value`` windows looking forward); the chains the ordered builders carry are in :mod:`.chains`. The rest are
hash aggregates over one row per person and step: the best attempt per person and step and the chosen attempt
(:mod:`.attempts`), breakdown values (:mod:`.breakdown`), and the outputs — :mod:`.steps`, :mod:`.time_to_convert`,
:mod:`.people`, :mod:`.trend` — shaped into a :class:`FunnelResult` by :mod:`.shaping`. :func:`funnel_levels`
(:mod:`.levels`) gives other analyses each person's depth.
"""

from userloop.query.kinds.funnel.levels import funnel_levels
from userloop.query.kinds.funnel.query import FunnelQuery
from userloop.query.kinds.funnel.results import (
    Breakpoint,
    FunnelPeople,
    FunnelResult,
    FunnelSeries,
    FunnelStepResult,
    FunnelTrendPoint,
    TimeBin,
)
from userloop.query.kinds.funnel.spec import (
    ConversionWindow,
    Exclusion,
    FunnelStep,
    PeopleRequest,
    StepAttribution,
)

__all__ = [
    "Breakpoint",
    "ConversionWindow",
    "Exclusion",
    "FunnelPeople",
    "FunnelQuery",
    "FunnelResult",
    "FunnelSeries",
    "FunnelStep",
    "FunnelStepResult",
    "FunnelTrendPoint",
    "PeopleRequest",
    "StepAttribution",
    "TimeBin",
    "funnel_levels",
]
