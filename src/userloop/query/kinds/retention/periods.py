"""Local periods for the analyses over periods (retention, lifecycle, stickiness): days, weeks (Monday to Sunday)
or calendar months in the project's time zone (see **Periods** in :mod:`userloop.query.kinds.retention`), the
index of the period an event falls in as a cheap SQL expression, and the UTC bounds a scan of periods reads."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlglot import exp

from userloop.query.compile import Context, bucket_of, literal, sql

PeriodInterval = Literal["day", "week", "month"]

_US_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class PeriodGrid:
    """``count`` consecutive local periods of one interval; period 0 starts on ``first`` (a period start)."""

    interval: PeriodInterval
    first: date
    count: int

    @classmethod
    def covering(cls, interval: PeriodInterval, first_day: date, last_day: date) -> PeriodGrid:
        """The periods that overlap the local days ``first_day``…``last_day``."""
        first = bucket_of(first_day, interval)
        return cls(interval, first, period_number(interval, first, bucket_of(last_day, interval)) + 1)

    def start(self, i: int) -> date:
        """The first local day of period ``i`` (any integer, also outside the grid)."""
        if self.interval == "day":
            return self.first + timedelta(days=i)
        if self.interval == "week":
            return self.first + timedelta(days=7 * i)
        months = self.first.year * 12 + self.first.month - 1 + i
        return date(months // 12, months % 12 + 1, 1)

    def end(self, i: int) -> date:
        """The last local day of period ``i``."""
        return self.start(i + 1) - timedelta(days=1)

    def index(self, day: date) -> int:
        """The period a local day falls in."""
        return period_number(self.interval, self.first, bucket_of(day, self.interval))

    def extended(self, extra: int) -> PeriodGrid:
        return PeriodGrid(self.interval, self.first, self.count + extra)


def period_number(interval: PeriodInterval, first: date, start: date) -> int:
    """How many periods after the period starting on ``first`` the period starting on ``start`` is."""
    if interval == "day":
        return (start - first).days
    if interval == "week":
        return (start - first).days // 7
    return (start.year - first.year) * 12 + start.month - first.month


def period_index(ctx: Context, column: exp.Expr, grid: PeriodGrid) -> exp.Expr:
    """The grid index of the local period that ``column`` (naive UTC) falls in, for times inside the grid.

    Local time is UTC plus the zone's offset, and the offset is a ``CASE`` over the instants where it changes in
    the grid (none for most zones, two a year under daylight saving): a few comparisons per row instead of a
    per-row time-zone conversion, which costs 30 times more on DuckDB. Days and weeks are then integer division
    of local microseconds; months are a month difference of the local date.
    """
    origin = (grid.first - _EPOCH).days * _US_PER_DAY
    lo = midnight_utc(grid.first, ctx.timezone) - timedelta(days=1)
    hi = midnight_utc(grid.start(grid.count), ctx.timezone) + timedelta(days=1)
    pieces = zone_offsets(ctx.timezone, lo, hi)
    width = {"day": _US_PER_DAY, "week": 7 * _US_PER_DAY}.get(grid.interval)
    # days and weeks: fold the origin into the offsets so each row costs one add and one division
    shift = -origin if width is not None else 0
    offset: exp.Expr = exp.convert(pieces[0][1] * 1_000_000 + shift)
    if len(pieces) > 1:
        case = exp.Case()
        for (_, off), (until, _) in itertools.pairwise(pieces):
            case = case.when(
                exp.LT(this=column.copy(), expression=literal(until)), exp.convert(off * 1_000_000 + shift)
            )
        offset = case.else_(exp.convert(pieces[-1][1] * 1_000_000 + shift))
    local_us = exp.Add(this=exp.func("epoch_us", column.copy()), expression=offset)
    if width is not None:
        return exp.IntDiv(this=exp.paren(local_us), expression=exp.convert(width))
    return sql("date_diff('month', $first, CAST(make_timestamp($us) AS DATE))", first=grid.first, us=local_us)


@functools.lru_cache(maxsize=256)
def zone_offsets(timezone: str, lo: datetime, hi: datetime) -> tuple[tuple[datetime, int], ...]:
    """The zone's UTC offset (seconds) over the naive UTC span ``lo``…``hi``: ``((from, offset), …)``, where
    each piece holds from its instant (the first piece from ``lo``) up to the next piece's."""
    zone = ZoneInfo(timezone)

    def offset_at(second: int) -> int:
        delta = datetime.fromtimestamp(second, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = int(lo.replace(tzinfo=UTC).timestamp())
    stop = int(hi.replace(tzinfo=UTC).timestamp())
    pieces = [(lo, offset_at(start))]
    at = start
    while at < stop:
        step = min(at + 86_400, stop)
        if offset_at(step) != offset_at(at):
            low, high = at, step  # offset_at(low) is the old offset, offset_at(high) the new one
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if offset_at(mid) == offset_at(at) else (low, mid)
            pieces.append((datetime.fromtimestamp(high, UTC).replace(tzinfo=None), offset_at(high)))
        at = step
    return tuple(pieces)


def midnight_utc(day: date, timezone: str) -> datetime:
    """The naive UTC instant of local midnight starting ``day``."""
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def scan_bounds(ctx: Context, grid: PeriodGrid, first: int, last: int) -> tuple[datetime, datetime]:
    """Naive UTC bounds of periods ``first``…``last`` of the grid, never past the end of today."""
    end_day = min(grid.end(last), ctx.today)
    lo = midnight_utc(grid.start(first), ctx.timezone)
    return lo, max(lo, midnight_utc(end_day + timedelta(days=1), ctx.timezone))
