"""Complete and partial periods: which buckets of a result are not whole finished periods, and the refusal to
compare a period still running with a finished one (issue 13, item 2).

A relative range ends on the last complete local day by default (:class:`~userloop.query.spec.DateRange`). A
bucket is **partial** when the range cuts it (a week or month that starts before the range's first day or ends
after its last) or when it is still running (it ends today or later: today's day or hour, the current week or
month). Results by period list their partial buckets (``partial``: trends, lifecycle, LTV cohorts; a funnel's
``trend_partial``), and the text renders mark them with ``*``. Results over the whole range (stickiness,
distribution, interval, attribution, paths, a funnel's totals) carry ``partial: true`` when the range reaches
into a period still running (:func:`running`); their text renders mark the heading with ``*``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from userloop.core.errors import ValidationError
from userloop.query.compile import bucket_of, buckets, next_bucket
from userloop.query.spec import Interval

#: The footnote the text renders print under a table with partial periods.
PARTIAL_NOTE = "* 未完结周期 / partial period"


def bucket_span(start: date | datetime, interval: Interval) -> tuple[date, date]:
    """The first and last local day a bucket covers (an hour covers its day)."""
    if isinstance(start, datetime):
        return start.date(), start.date()
    return start, next_bucket(bucket_of(start, interval), interval) - timedelta(days=1)


def running(last: date, today: date) -> bool:
    """Whether a period (a bucket, or a whole date range) ending on the local day ``last`` is not over by
    ``today``: it ends today or later. Results that aggregate over their whole range report it as ``partial``."""
    return last >= today


def partial_buckets(interval: Interval, first: date, last: date, today: date) -> list[str]:
    """Labels (ISO) of the buckets from ``first`` to ``last`` that are not whole, finished periods.

    An analysis that widens its range to whole periods (lifecycle) passes the widened bounds, so only the
    running periods are partial."""
    out = []
    for start in buckets(interval, first, last):
        lo, hi = bucket_span(start, interval)
        if lo < first or hi > last or running(hi, today):
            out.append(_label(start))
    return out


def refuse_partial(what: str, first: date, last: date, today: date, *, field: str | None = None) -> None:
    """A :class:`ValidationError` (``partial_period``) when ``first..last`` reaches today: comparing a period
    still running with a finished one would read the missing hours as a change."""
    if running(last, today):
        raise ValidationError(
            f"{what} {first}..{last} includes today ({today}), which is not over; comparing it with a complete "
            "period would read the missing hours as a change",
            code="partial_period",
            field=field,
        )


def _label(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


__all__ = ["PARTIAL_NOTE", "bucket_span", "partial_buckets", "refuse_partial", "running"]
