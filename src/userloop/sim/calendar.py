"""The local calendar: day boundaries, weekly rhythm, holidays and the hour-of-day profile.

Chinese retail peaks on fixed-date festivals (New Year's Day, Labour Day, 618, National Day, Double 11,
Double 12) and on two lunar festivals (Spring Festival, Mid-Autumn), whose Gregorian dates come from a table;
outside the table's years the lunar festivals are left out. Every multiplier is a plain Python float so the
activity curve is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from userloop.core.clock import local_midnight_utc_ms

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

#: Lunar new year (正月初一) by Gregorian year.
SPRING_FESTIVAL: dict[int, date] = {
    y: date(y, m, d)
    for y, m, d in (
        (2015, 2, 19), (2016, 2, 8), (2017, 1, 28), (2018, 2, 16), (2019, 2, 5), (2020, 1, 25),
        (2021, 2, 12), (2022, 2, 1), (2023, 1, 22), (2024, 2, 10), (2025, 1, 29), (2026, 2, 17),
        (2027, 2, 6), (2028, 1, 26), (2029, 2, 13), (2030, 2, 3), (2031, 1, 23), (2032, 2, 11),
        (2033, 1, 31), (2034, 2, 19), (2035, 2, 8),
    )
}  # fmt: skip
#: Mid-Autumn festival (八月十五) by Gregorian year.
MID_AUTUMN: dict[int, date] = {
    y: date(y, m, d)
    for y, m, d in (
        (2015, 9, 27), (2016, 9, 15), (2017, 10, 4), (2018, 9, 24), (2019, 9, 13), (2020, 10, 1),
        (2021, 9, 21), (2022, 9, 10), (2023, 9, 29), (2024, 9, 17), (2025, 10, 6), (2026, 9, 25),
        (2027, 9, 15), (2028, 10, 3), (2029, 9, 22), (2030, 9, 12),
    )
}  # fmt: skip

#: Activity multiplier per weekday (Monday first): weekends are the peak of a grocery app.
WEEKDAY_FACTOR = (0.92, 0.90, 0.92, 0.95, 1.03, 1.22, 1.18)

#: Relative weight of each local hour as a session start: breakfast, lunch and the evening peak. No session
#: starts in the last hour, so a session never crosses the window's end.
HOUR_WEIGHTS = (
    0.4, 0.2, 0.1, 0.1, 0.2, 0.6, 2.0, 4.5, 5.5, 4.5, 4.0, 5.0,
    5.5, 4.0, 3.5, 3.5, 4.0, 5.5, 7.0, 8.0, 8.5, 7.0, 3.0, 0.0,
)  # fmt: skip


def _fixed_date_holidays(year: int) -> list[tuple[date, str, float]]:
    found = [(date(year, 1, 1), "new_year", 1.3)]
    found += [(date(year, 5, d), "labour_day", 1.3) for d in range(1, 6)]
    found += [(date(year, 6, 16), "618_warmup", 1.3), (date(year, 6, 17), "618_warmup", 1.4)]
    found += [(date(year, 6, 18), "618", 1.8)]
    found += [(date(year, 10, d), "national_day", 1.4) for d in range(1, 8)]
    found += [(date(year, 11, 10), "double_11_eve", 1.4), (date(year, 11, 11), "double_11", 2.0)]
    found += [(date(year, 12, 12), "double_12", 1.5)]
    return found


def _lunar_holidays(year: int) -> list[tuple[date, str, float]]:
    found: list[tuple[date, str, float]] = []
    if year in SPRING_FESTIVAL:
        new_year = SPRING_FESTIVAL[year]
        # The week before the festival is the year's biggest grocery run; the first days are quieter but
        # still above an ordinary day for an app that delivers.
        found += [(new_year - timedelta(days=k), "spring_festival_shopping", 1.6) for k in range(1, 8)]
        found += [(new_year + timedelta(days=k), "spring_festival", 1.15) for k in range(4)]
    if year in MID_AUTUMN:
        festival = MID_AUTUMN[year]
        found += [(festival - timedelta(days=1), "mid_autumn_eve", 1.3), (festival, "mid_autumn", 1.5)]
    return found


def holidays_between(first: date, last: date) -> dict[date, tuple[str, float]]:
    """Holidays (name, activity multiplier) on the days from ``first`` to ``last`` inclusive.

    When two rules fall on one day (National Day and Mid-Autumn), the larger multiplier wins.
    """
    found: dict[date, tuple[str, float]] = {}
    for year in range(first.year, last.year + 1):
        for day, name, factor in _fixed_date_holidays(year) + _lunar_holidays(year):
            if first <= day <= last and factor > found.get(day, ("", 0.0))[1]:
                found[day] = (name, factor)
    return found


@dataclass(frozen=True)
class Calendar:
    """The window's local days.

    Attributes
    ----------
    dates
        Local date of each day.
    day_start_ms
        Epoch milliseconds of each local midnight, plus the end of the window (length ``days + 1``).
    weekday
        Weekday of each day, Monday = 0.
    holiday
        Holiday name of each day, ``""`` on ordinary days.
    activity
        Multiplier of sessions and purchases per day (weekday × holiday), normalised to mean 1 over the window
        so that the latent purchase rate λ stays the long-run rate.
    """

    dates: tuple[date, ...]
    day_start_ms: np.ndarray
    weekday: np.ndarray
    holiday: tuple[str, ...]
    activity: np.ndarray

    @classmethod
    def build(cls, first: date, days: int, timezone: str) -> Calendar:
        dates = tuple(first + timedelta(days=k) for k in range(days))
        edges = [*dates, first + timedelta(days=days)]
        day_start = np.array([local_midnight_utc_ms(d, timezone) for d in edges], dtype=np.int64)
        holidays = holidays_between(dates[0], dates[-1])
        raw = [WEEKDAY_FACTOR[d.weekday()] * holidays.get(d, ("", 1.0))[1] for d in dates]
        mean = sum(raw) / len(raw)
        return cls(
            dates=dates,
            day_start_ms=day_start,
            weekday=np.array([d.weekday() for d in dates], dtype=np.int8),
            holiday=tuple(holidays.get(d, ("", 1.0))[0] for d in dates),
            activity=np.array([r / mean for r in raw], dtype=np.float64),
        )

    @property
    def days(self) -> int:
        return len(self.dates)

    @property
    def start_ms(self) -> int:
        return int(self.day_start_ms[0])

    @property
    def end_ms(self) -> int:
        """First millisecond after the window."""
        return int(self.day_start_ms[-1])

    def draw_times(self, rng: np.random.Generator, day: np.ndarray, size: int) -> np.ndarray:
        """Session start times (epoch ms) on local ``day`` (an index or an array of them), by hour profile."""
        hour = np.searchsorted(_HOUR_CUM, rng.random(size), side="right")
        within = rng.integers(0, HOUR_MS, size=size)
        return self.day_start_ms[day] + hour * HOUR_MS + within

    def draw_times_after(self, rng: np.random.Generator, day: np.ndarray, after_ms: np.ndarray) -> np.ndarray:
        """Times on ``day`` drawn by hour profile, but never before ``after_ms`` (e.g. the install time).

        A draw that falls before ``after_ms`` is moved uniformly into what remains of the day's active hours,
        which keeps the result inside the day's active hours unless ``after_ms`` itself is later.
        """
        times = self.draw_times(rng, day, len(day))
        early = np.flatnonzero(times < after_ms)
        after = after_ms[early]
        last = self.day_start_ms[day[early]] + LAST_START_MS
        moved = after + (rng.random(len(early)) * np.maximum(last - after, 1)).astype(np.int64)
        times[early] = np.maximum(after, np.minimum(moved, last))
        return times


#: Sessions start at the latest at 23:00 local (the last hour's weight is zero).
LAST_START_MS = 23 * HOUR_MS - 1
_HOUR_CUM = np.cumsum(np.array(HOUR_WEIGHTS[:-1], dtype=np.float64) / sum(HOUR_WEIGHTS))
_HOUR_CUM[-1] = 1.0
