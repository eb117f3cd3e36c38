"""Retention: of the people who did a start event in a period, how many came back in each later period.

Definitions follow PostHog's retention insight (https://posthog.com/docs/product-analytics/retention) and
Mixpanel's (https://docs.mixpanel.com/docs/reports/retention), made exact:

- **Periods** are local days, weeks (Monday to Sunday) or calendar months in the project's time zone. The date
  range is widened to whole periods: the cohorts are every period that overlaps the range, each taken in full.
- **Cohort entries.** ``start_type: "first_time"``: a person enters the cohort of the period holding their first
  ever start event — first in *all* stored data up to today, not just in the date range (so a person whose first
  start event came before the range is in no cohort). ``"recurring"``: a person enters the cohort of every period
  in the range in which they did the start event. An entry's *start time* is its first start event in the
  period (for first-time cohorts, the first ever).
- **Returned in period k** (k = 0…``periods``, counted from the cohort period): the person did the return event
  (by default the start event itself) in the k-th period after the cohort period. For **period 0** the return
  event must come at or after the entry's start time (same instant included), so with the default return event
  period 0 is always 100 %, as in PostHog, and with another return event it is "returned in the same period,
  after starting".
  ``mode: "on"`` counts returns in period k exactly; ``"on_or_after"`` counts a person in period k when they
  returned in period k or any later period up to ``periods`` (PostHog's cumulative retention).
- **Breakdown** by an event property takes the value on the entry's first start event (among start events at the
  same instant, the smallest value; a value beats no value), or by a profile property the person's current value;
  the ``limit`` most frequent values (by cohort entries) are kept, the rest is ``$other``, no value is ``$none``.
- **Incomplete cells.** A cell whose period has not started by today is ``None``; ``complete`` tells whether
  every period the cell depends on (period k; up to period ``periods`` for ``on_or_after``) has ended before
  today. The **average** row weights cohorts by size and uses complete cells only.
- **Value retention** (``value: {"property": "amount", "math": "sum"}``): per cell, the sum of the property over
  the return events that count for that period (period 0: at or after the start time), divided by the cohort's
  size — revenue per cohort member per period.

Return events are looked for up to ``periods`` periods after the last cohort, and never after today.

How it runs (set-based, sized by people and periods, never by events per person): first-time cohorts
(:mod:`.first_time`) scan the start events once grouped by person (the first one), then join the return events of
the people in cohorts to their entry and group by (person, period offset). Recurring cohorts (:mod:`.recurring`)
scan once grouped by (person, period) — first start and last return per period — and join each entry to the same
person's next ``periods`` rows. Both are the work ClickHouse's ``retention()`` aggregate does per person
(https://clickhouse.com/docs/en/sql-reference/aggregate-functions/parametric-functions#retention); on 20M events
and 1M people (weekly, 8 cohorts, 12 periods) they ran in 0.4–0.6× the time of that function under chdb. The
simplest first-time case is one grouping by person (:mod:`.one_pass`). The cohort CTEs (:mod:`.cohorts`) feed the
outputs: :mod:`.cells` and :mod:`.people`, shaped by :mod:`.shaping`.

The period helpers (:mod:`.periods`: :class:`PeriodGrid`, :func:`period_index`), the people behind a cell
(:mod:`.people`) and the ``WITH`` clause helpers (:mod:`.clauses`) are shared with lifecycle and stickiness.
"""

from userloop.query.kinds.retention.clauses import attach_ctes, cte_names, grouped
from userloop.query.kinds.retention.people import MAX_PEOPLE, People, people_from, people_statement
from userloop.query.kinds.retention.periods import (
    PeriodGrid,
    PeriodInterval,
    period_index,
    period_number,
    scan_bounds,
    zone_offsets,
)
from userloop.query.kinds.retention.query import MAX_COHORTS, RetentionQuery
from userloop.query.kinds.retention.results import RetentionAverage, RetentionCohort, RetentionResult
from userloop.query.kinds.retention.spec import RetentionPeople, RetentionValue

__all__ = [
    "MAX_COHORTS",
    "MAX_PEOPLE",
    "People",
    "PeriodGrid",
    "PeriodInterval",
    "RetentionAverage",
    "RetentionCohort",
    "RetentionPeople",
    "RetentionQuery",
    "RetentionResult",
    "RetentionValue",
    "attach_ctes",
    "cte_names",
    "grouped",
    "people_from",
    "people_statement",
    "period_index",
    "period_number",
    "scan_bounds",
    "zone_offsets",
]
