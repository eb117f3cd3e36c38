"""Delivery rules: hash assignment, frequency caps, quiet hours, rate limits.

Caps, windows and quiet hours are checked against brute-force references that only use zoneinfo directly (convert
each instant to local time; scan minute by minute), on random instants biased towards each zone's DST transitions.
Every instant is given explicitly: nothing reads the clock or the machine's zone.
"""

from __future__ import annotations

import math
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from tests.conftest import examples
from userloop.core.errors import ValidationError
from userloop.engage.rules import (
    CapRule,
    QuietHours,
    RateLimiter,
    bucket,
    cap_windows,
    capped,
    in_global_control,
    next_allowed,
    quiet,
    resolve_local,
    split,
)

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

# Each zone with the UTC instants of some of its transitions (2026 unless said), so random instants land near them.
ZONES: dict[str, list[datetime]] = {
    "America/New_York": [datetime(2026, 3, 8, 7), datetime(2026, 11, 1, 6)],
    "Europe/London": [datetime(2026, 3, 29, 1), datetime(2026, 10, 25, 1)],
    "Asia/Shanghai": [datetime(2026, 1, 1), datetime(1991, 9, 14, 15)],  # no DST since 1991
    "Pacific/Kiritimati": [datetime(1994, 12, 31, 10)],  # -10 → +14: local 1994-12-31 never happened
    "America/Adak": [datetime(2026, 3, 8, 12), datetime(2026, 11, 1, 11)],
    "Australia/Lord_Howe": [datetime(2026, 4, 4, 15), datetime(2026, 10, 3, 15, 30)],  # 30-minute DST
    "America/Santiago": [datetime(2026, 4, 5, 3), datetime(2026, 9, 6, 4)],  # midnight in the gap; 24:00 → 23:00
}


def local(at: datetime, tz: str) -> datetime:
    """Reference: the wall clock in ``tz`` at naive-UTC ``at``, straight from zoneinfo."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


@st.composite
def zone_and_instant(draw: st.DrawFn) -> tuple[str, datetime]:
    """A zone and a minute-aligned naive-UTC instant: uniform over 1990–2040, or within 3 days of a transition."""
    tz = draw(st.sampled_from(sorted(ZONES)))
    if draw(st.booleans()):
        base = draw(st.sampled_from(ZONES[tz]))
        at = base + draw(st.integers(-3 * 1440, 3 * 1440)) * MIN
    else:
        at = datetime(1990, 1, 1) + draw(st.integers(0, 50 * 365 * 1440)) * MIN
    return tz, at


# ------------------------------------------------------------------------------------------------------ assignment


def test_bucket_is_pinned_across_versions() -> None:
    # SHA-256("seed\x1f1"), first 8 bytes, top 53 bits: if these change, every running split reshuffles
    assert bucket("seed", 1) == 0.9659190824445335
    assert bucket("seed", 2) == 0.4437627013830666
    assert bucket("journey:42", 123456789) == 0.4673408725355396
    assert bucket("", 0) == 0.06658568442417656
    assert [split("exp", p, [("a", 50), ("b", 30), ("control", 20)]) for p in range(10)] == [
        "a", "a", "control", "control", "a", "b", "a", "control", "a", "b",
    ]  # fmt: skip


def test_bucket_is_uniform_chi_square() -> None:
    n, bins = 100_000, 100
    counts = [0] * bins
    for person in range(n):
        b = bucket("uniformity", person)
        assert 0.0 <= b < 1.0
        counts[int(b * bins)] += 1
    expected = n / bins
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    # 99 degrees of freedom: the 0.999 quantile is 148.23 (scipy.stats.chi2.ppf(0.999, 99)); fixed data, so fixed
    assert chi2 < 148.23, chi2
    # and not suspiciously perfect either (0.001 quantile: 61.9)
    assert chi2 > 61.9, chi2


def test_buckets_of_different_seeds_are_independent() -> None:
    n = 100_000
    xs = [bucket("journey:1", p) for p in range(n)]
    ys = [bucket("journey:2", p) for p in range(n)]
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / n
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs) / n)
    sy = math.sqrt(sum((y - my) ** 2 for y in ys) / n)
    r = cov / (sx * sy)
    assert abs(r) < 0.015, r  # sd of r under independence is 1/√n ≈ 0.0032: 4.7 sd
    # the global control and a journey's split do not line up either: control is ~10% of each branch
    weights = [("a", 50.0), ("b", 50.0)]
    for branch in ("a", "b"):
        people = [p for p in range(20_000) if split("journey:7", p, weights) == branch]
        share = sum(in_global_control("global", p, 0.10) for p in people) / len(people)
        assert abs(share - 0.10) < 0.015, (branch, share)


def test_global_control_is_monotone_and_of_the_right_size() -> None:
    people = range(20_000)
    previous: set[int] = set()
    for share in (0.0, 0.01, 0.05, 0.05, 0.10, 0.2, 0.5, 1.0):
        group = {p for p in people if in_global_control("gc-salt", p, share)}
        assert previous <= group, share
        assert abs(len(group) / len(people) - share) < 0.01
        previous = group
    assert len(previous) == len(people)
    for bad in (-0.1, 1.01, math.nan, True):
        with pytest.raises(ValidationError):
            in_global_control("gc-salt", 1, bad)  # type: ignore[arg-type]


@given(st.text(max_size=20), st.integers(0, 2**63), st.floats(0, 1), st.floats(0, 1))
@settings(max_examples=examples(200))
def test_global_control_monotone_for_any_person(salt: str, person: int, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert not in_global_control(salt, person, lo) or in_global_control(salt, person, hi)


def test_split_follows_the_weights() -> None:
    weights = [("a", 50.0), ("b", 30.0), ("control", 20.0), ("never", 0.0)]
    n = 50_000
    counts = dict.fromkeys(("a", "b", "control", "never"), 0)
    for p in range(n):
        counts[split("exp-9", p, weights)] += 1
    assert counts["never"] == 0
    for name, weight in weights[:3]:
        assert abs(counts[name] / n - weight / 100) < 0.01, counts
    assert {split("s", p, [("only", 100)]) for p in range(1000)} == {"only"}
    # weights off from 100 by at most 1e-9 are accepted; the sliver left goes to the last branch with weight
    assert split("s", 1, [("a", 50), ("b", 50 - 1e-10)]) in {"a", "b"}


@pytest.mark.parametrize(
    ("weights", "words"),
    [
        ([], "at least one branch"),
        ([("a", 50.0), ("b", 49.0)], "99"),
        ([("a", 60.0), ("b", 50.0)], "110"),
        ([("a", 100.0), ("b", -0.0001)], "negative"),
        ([("a", 50.0), ("a", 50.0)], "twice"),
        ([("", 100.0)], "non-empty name"),
        ([("a", math.nan)], "weight"),
        ([("a", math.inf)], "weight"),
        ([("a", 50.0), ("b", 50.0 + 2e-9)], "100"),
    ],
)
def test_split_refuses_bad_weights(weights: list[tuple[str, float]], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        split("s", 1, weights)
    assert words in err.value.message
    assert err.value.field == "weights"


# -------------------------------------------------------------------------------------------------- cap windows


def ref_bounds(at: datetime, tz: str, same: Callable[[date], bool]) -> tuple[datetime, datetime]:
    """Reference: scan from ``at`` backwards and forwards (by hours, then by minutes) to where ``same`` of the
    local date stops holding. Valid where the local date never goes backwards (true of the zones tested)."""
    start = at
    while same(local(start - HOUR, tz).date()):
        start -= HOUR
    while same(local(start - MIN, tz).date()):
        start -= MIN
    end = at
    while same(local(end + HOUR, tz).date()):
        end += HOUR
    while same(local(end, tz).date()):
        end += MIN
    return start, end


@given(zone_and_instant())
@settings(max_examples=examples(150))
@example(("America/New_York", datetime(2026, 3, 8, 12)))
@example(("America/New_York", datetime(2026, 11, 1, 12)))
@example(("Australia/Lord_Howe", datetime(2026, 10, 3, 20)))
@example(("Pacific/Kiritimati", datetime(1995, 1, 1, 0)))
def test_cap_windows_match_a_minute_scan(zone_at: tuple[str, datetime]) -> None:
    tz, at = zone_at
    day = local(at, tz).date()
    week = day.isocalendar()[:2]
    assert cap_windows(at, tz) == (
        ref_bounds(at, tz, lambda d: d == day),
        ref_bounds(at, tz, lambda d: d.isocalendar()[:2] == week),
    )


@pytest.mark.parametrize(
    ("tz", "at", "hours"),
    [
        ("America/New_York", datetime(2026, 3, 8, 12), 23),
        ("America/New_York", datetime(2026, 11, 1, 12), 25),
        ("America/New_York", datetime(2026, 11, 2, 12), 24),
        ("Europe/London", datetime(2026, 3, 29, 12), 23),
        ("Europe/London", datetime(2026, 10, 25, 12), 25),
        ("America/Adak", datetime(2026, 3, 8, 20), 23),
        ("America/Adak", datetime(2026, 11, 1, 20), 25),
        ("Australia/Lord_Howe", datetime(2026, 10, 3, 20), 23.5),
        ("Australia/Lord_Howe", datetime(2026, 4, 4, 20), 24.5),
        ("America/Santiago", datetime(2026, 9, 6, 12), 23),  # the day starts at 01:00, when the gap ends
        ("America/Santiago", datetime(2026, 4, 4, 12), 25),
        ("Asia/Shanghai", datetime(2026, 3, 8, 12), 24),
        ("Pacific/Kiritimati", datetime(2026, 3, 8, 12), 24),
    ],
)
def test_dst_days_have_23_or_25_hours(tz: str, at: datetime, hours: float) -> None:
    (start, end), (wstart, wend) = cap_windows(at, tz)
    assert end - start == timedelta(hours=hours)
    assert start <= at < end
    assert local(start - timedelta(microseconds=1), tz).date() < local(start, tz).date() == local(at, tz).date()
    assert local(end - timedelta(microseconds=1), tz).date() < local(end, tz).date()
    assert local(wstart, tz).weekday() == 0 and local(wstart - timedelta(microseconds=1), tz).weekday() == 6
    assert wstart <= start and end <= wend
    assert 7 * 24 - 1 <= (wend - wstart) / HOUR <= 7 * 24 + 1


def test_cap_windows_are_in_the_person_zone() -> None:
    at = datetime(2026, 6, 1, 18)  # 02:00 on 2 June in Shanghai, 14:00 on 1 June in New York
    assert cap_windows(at, "Asia/Shanghai")[0] == (datetime(2026, 6, 1, 16), datetime(2026, 6, 2, 16))
    assert cap_windows(at, "America/New_York")[0] == (datetime(2026, 6, 1, 4), datetime(2026, 6, 2, 4))
    assert cap_windows(at, "Pacific/Kiritimati")[0] == (datetime(2026, 6, 1, 10), datetime(2026, 6, 2, 10))
    # 2 June 2026 is a Tuesday in Shanghai; its week began on Monday 1 June, 00:00 +08:00
    assert cap_windows(at, "Asia/Shanghai")[1] == (datetime(2026, 5, 31, 16), datetime(2026, 6, 7, 16))
    with pytest.raises(ValidationError, match="time zone"):
        cap_windows(at, "Mars/Olympus")


# ----------------------------------------------------------------------------------------------------- capping


def ref_capped(sent: list[datetime], at: datetime, tz: str, rule: CapRule) -> bool:
    day = local(at, tz).date()
    days = [local(s, tz).date() for s in sent]
    same_day = sum(d == day for d in days)
    same_week = sum(d.isocalendar()[:2] == day.isocalendar()[:2] for d in days)
    return (rule.per_day is not None and same_day >= rule.per_day) or (
        rule.per_week is not None and same_week >= rule.per_week
    )


rules = st.builds(
    CapRule,
    channel=st.sampled_from(["*", "email", "sms"]),
    per_day=st.none() | st.integers(1, 4),
    per_week=st.none() | st.integers(1, 10),
)


@given(zone_and_instant(), st.lists(st.integers(-10 * 1440, 10 * 1440), max_size=25), rules)
@settings(max_examples=examples(300))
def test_capped_matches_counting_local_dates(zone_at: tuple[str, datetime], offsets: list[int], rule: CapRule) -> None:
    tz, at = zone_at
    sent = [at + o * MIN for o in offsets]
    assert capped(sent, at, tz, rule) == ref_capped(sent, at, tz, rule)
    # and the windows say the same thing as the local dates, in these zones
    (ds, de), (ws, we) = cap_windows(at, tz)
    day, week = local(at, tz).date(), local(at, tz).date().isocalendar()[:2]
    for s in sent:
        assert (ds <= s < de) == (local(s, tz).date() == day)
        assert (ws <= s < we) == (local(s, tz).date().isocalendar()[:2] == week)


def test_capped_on_dst_days_and_zone_matters() -> None:
    once_a_day = CapRule(channel="*", per_day=1)
    # New York, 2026-11-01 (25 hours): 00:30 EDT (04:30Z) and 23:30 EST (2026-11-02 04:30Z) are the same day
    assert capped([datetime(2026, 11, 1, 4, 30)], datetime(2026, 11, 2, 4, 30), "America/New_York", once_a_day)
    # 2026-03-08 (23 hours): 23:30 EDT is 03:30Z next day; 00:30 EST was 05:30Z: same day, 22 hours apart
    assert capped([datetime(2026, 3, 8, 5, 30)], datetime(2026, 3, 9, 3, 30), "America/New_York", once_a_day)
    assert not capped([datetime(2026, 3, 8, 4, 30)], datetime(2026, 3, 9, 3, 30), "America/New_York", once_a_day)
    # a zone-blind cap would count in UTC days: 23:00 and 00:30 in Shanghai are two days, the same UTC day
    sends = [datetime(2026, 6, 1, 15)]  # 23:00 on 1 June in Shanghai
    at = datetime(2026, 6, 1, 16, 30)  # 00:30 on 2 June in Shanghai
    assert not capped(sends, at, "Asia/Shanghai", once_a_day)
    assert capped(sends, at, "UTC", once_a_day)
    # Kiritimati (+14) and Adak (-10/-9) see the same two instants as different days and the same day
    assert not capped([datetime(2026, 6, 1, 9)], datetime(2026, 6, 1, 11), "Pacific/Kiritimati", once_a_day)
    assert capped([datetime(2026, 6, 1, 9)], datetime(2026, 6, 1, 11), "America/Adak", once_a_day)


def test_weekly_cap_starts_on_monday_local() -> None:
    twice_a_week = CapRule(channel="email", per_week=2)
    tz = "Asia/Shanghai"
    sunday_late = datetime(2026, 6, 7, 15, 30)  # Sunday 23:30 local
    monday_early = datetime(2026, 6, 7, 16, 30)  # Monday 00:30 local
    assert capped([sunday_late - HOUR, sunday_late - 2 * HOUR], sunday_late, tz, twice_a_week)
    assert not capped([sunday_late - HOUR, sunday_late], monday_early, tz, twice_a_week)
    assert capped([monday_early, monday_early + HOUR], monday_early + 2 * HOUR, tz, twice_a_week)
    assert not capped([], monday_early, tz, CapRule(channel="*"))
    assert twice_a_week.applies("email") and not twice_a_week.applies("sms")
    assert CapRule(channel="*", per_day=3).applies("sms")


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "*", "per_day": 0},
        {"channel": "*", "per_week": -1},
        {"channel": "*", "per_day": "3"},
        {"channel": "*", "per_day": 1.5},
        {"channel": "*", "per_day": True},
        {"channel": "", "per_day": 1},
        {"channel": "*", "per_day": 1, "per_month": 9},
    ],
)
def test_cap_rule_refuses_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(PydanticValidationError):
        CapRule.model_validate(fields)


# -------------------------------------------------------------------------------------------------- quiet hours


def ref_quiet(at: datetime, tz: str, start: time, end: time) -> bool:
    m = local(at, tz)
    minute, s, e = m.hour * 60 + m.minute, start.hour * 60 + start.minute, end.hour * 60 + end.minute
    return s <= minute < e if s < e else (minute >= s or minute < e)


def ref_next_allowed(at: datetime, tz: str, start: time, end: time) -> datetime:
    x = at
    for _ in range(3 * 1440):
        if not ref_quiet(x, tz, start, end):
            return x
        x += MIN
    raise AssertionError("no allowed minute in three days")


minute_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]) | st.integers(0, 59))


@given(zone_and_instant(), minute_times, minute_times)
@settings(max_examples=examples(300))
@example(("America/New_York", datetime(2026, 3, 8, 6, 30)), time(1), time(2, 30))  # end in the gap
@example(("America/New_York", datetime(2026, 11, 1, 6, 10)), time(0), time(1, 30))  # second 01:10
@example(("America/New_York", datetime(2026, 11, 1, 5, 10)), time(0), time(1, 30))  # first 01:10
@example(("Australia/Lord_Howe", datetime(2026, 10, 3, 15)), time(22), time(2, 15))  # 30-minute gap
@example(("Australia/Lord_Howe", datetime(2026, 4, 4, 15, 5)), time(1, 40), time(1, 50))  # 30-minute fold
@example(("Pacific/Kiritimati", datetime(1994, 12, 31, 9)), time(22), time(8))  # a skipped day
@example(("America/Adak", datetime(2026, 3, 8, 11, 59)), time(1, 59), time(2, 1))
def test_quiet_and_next_allowed_match_a_minute_scan(zone_at: tuple[str, datetime], start: time, end: time) -> None:
    tz, at = zone_at
    if start == end:
        end = (datetime.combine(date(2000, 1, 1), end) + MIN).time()
    q = QuietHours(start=start, end=end)
    assert quiet(at, tz, q) == ref_quiet(at, tz, start, end)
    allowed = next_allowed(at, tz, q)
    assert allowed == ref_next_allowed(at, tz, start, end)
    assert not quiet(allowed, tz, q)


def test_next_allowed_known_cases() -> None:
    night = QuietHours(start=time(22), end=time(8))
    # 23:00 in Shanghai (15:00Z) waits for 08:00 local (00:00Z); in New York 11:00 EDT is not quiet at all
    assert next_allowed(datetime(2026, 6, 1, 15), "Asia/Shanghai", night) == datetime(2026, 6, 2, 0)
    assert next_allowed(datetime(2026, 6, 1, 15), "America/New_York", night) == datetime(2026, 6, 1, 15)
    assert quiet(datetime(2026, 6, 1, 15), "Asia/Shanghai", night)
    assert not quiet(datetime(2026, 6, 1, 15), "UTC", night)  # the zone is what makes it quiet
    # the end time 02:30 does not exist on 2026-03-08 in New York: the first real instant after is 03:00 EDT
    early = QuietHours(start=time(1), end=time(2, 30))
    assert next_allowed(datetime(2026, 3, 8, 6, 30), "America/New_York", early) == datetime(2026, 3, 8, 7)
    # 2026-11-01 01:00–02:00 happens twice in New York: quiet until 01:30 each time
    fold = QuietHours(start=time(0), end=time(1, 30))
    assert next_allowed(datetime(2026, 11, 1, 5, 10), "America/New_York", fold) == datetime(2026, 11, 1, 5, 30)
    assert not quiet(datetime(2026, 11, 1, 5, 45), "America/New_York", fold)
    assert next_allowed(datetime(2026, 11, 1, 6, 10), "America/New_York", fold) == datetime(2026, 11, 1, 6, 30)
    # Kiritimati skipped 1994-12-31: from 23:00 on the 30th (-10) to 08:00 on 1 January 1995 (+14)
    assert next_allowed(datetime(1994, 12, 31, 9), "Pacific/Kiritimati", night) == datetime(1994, 12, 31, 18)
    # seconds and microseconds are kept when allowed, and the end is exact when not
    at = datetime(2026, 6, 1, 3, 0, 7, 123)
    assert next_allowed(at, "Asia/Shanghai", night) == at
    assert next_allowed(datetime(2026, 6, 1, 23, 59, 59), "Asia/Shanghai", night) == datetime(2026, 6, 2, 0)


def test_resolve_local_gaps_and_folds() -> None:
    assert resolve_local(datetime(2026, 3, 8, 2, 30), "America/New_York") == datetime(2026, 3, 8, 7)
    assert resolve_local(datetime(2026, 11, 1, 1, 30), "America/New_York") == datetime(2026, 11, 1, 5, 30)
    assert resolve_local(datetime(2026, 10, 4, 2, 15), "Australia/Lord_Howe") == datetime(2026, 10, 3, 15, 30)
    assert resolve_local(datetime(2026, 4, 5, 1, 45), "Australia/Lord_Howe") == datetime(2026, 4, 4, 14, 45)
    assert resolve_local(datetime(1994, 12, 31, 12), "Pacific/Kiritimati") == datetime(1994, 12, 31, 10)
    assert resolve_local(datetime(2026, 9, 6), "America/Santiago") == datetime(2026, 9, 6, 4)  # midnight missing
    assert resolve_local(datetime(2026, 4, 4, 23, 30), "America/Santiago") == datetime(2026, 4, 5, 2, 30)


@pytest.mark.parametrize(
    "fields",
    [
        {"start": "22:00", "end": "22:00"},
        {"start": "22:00", "end": "08:00", "policy": "later"},
        {"start": "22:00", "end": "08:00", "until": "09:00"},
        {"start": "22:00+08:00", "end": "08:00+08:00"},
        {"start": "25:00", "end": "08:00"},
    ],
)
def test_quiet_hours_refuse_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(PydanticValidationError):
        QuietHours.model_validate(fields)


def test_quiet_hours_policy() -> None:
    assert QuietHours(start=time(22), end=time(8)).policy == "defer"
    assert QuietHours.model_validate({"start": "12:00", "end": "13:30", "policy": "drop"}).policy == "drop"


# -------------------------------------------------------------------------------------------------- rate limits

T0 = datetime(2026, 1, 1, 12)


def test_rate_limiter_lets_a_burst_through_then_spaces() -> None:
    limiter = RateLimiter(per_second=2, burst=3)
    times = [limiter.reserve(T0) for _ in range(6)]
    s = timedelta(seconds=1)
    assert times == [T0, T0, T0, T0 + s / 2, T0 + s, T0 + 3 * s / 2]
    # after a long pause the bucket is full again
    later = T0 + 60 * s
    assert [limiter.reserve(later) for _ in range(4)] == [later, later, later, later + s / 2]
    # a request in the middle of the queue waits behind it, never before its own time
    assert limiter.reserve(later + s / 4) == later + s


def test_rate_limiter_reserve_many_equals_one_by_one() -> None:
    a, b = RateLimiter(per_second=7.3, burst=5), RateLimiter(per_second=7.3, burst=5)
    at = T0
    for k in range(200):
        at += timedelta(milliseconds=(k * 37) % 400)
        n = k % 7
        assert a.reserve_many(at, n) == [b.reserve(at) for _ in range(n)]


@given(st.floats(0.01, 1000), st.integers(1, 20), st.lists(st.integers(0, 5_000_000), min_size=1, max_size=60))
@settings(max_examples=examples(150))
def test_rate_limiter_never_exceeds_the_rate_and_never_drops(rate: float, burst: int, gaps: list[int]) -> None:
    limiter = RateLimiter(per_second=rate, burst=burst)
    arrivals, at = [], T0
    for gap in gaps:
        at += timedelta(microseconds=gap)
        arrivals.append(at)
    sends = [limiter.reserve(a) for a in arrivals]
    assert len(sends) == len(arrivals)
    assert all(s >= a for s, a in zip(sends, arrivals, strict=True))
    assert sends == sorted(sends)
    # conformance (GCRA): within any span of length L at most burst + L·rate sends (+1 µs rounding per send)
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            span = (sends[j] - sends[i]).total_seconds()
            assert j - i + 1 <= burst + (span + 1e-6) * rate + 1e-9
    # and exactly when a token bucket of `burst` tokens refilled at `rate` lets each send go (the reference, in
    # exact arithmetic over microseconds; the limiter rounds each time up to the microsecond)
    per_us = Fraction(rate) / 10**6
    tokens, last = Fraction(burst), Fraction(us(arrivals[0]))
    for s, a in zip(sends, arrivals, strict=True):
        t = max(Fraction(us(a)), last)
        tokens = min(Fraction(burst), tokens + (t - last) * per_us)
        if tokens < 1:
            t += (1 - tokens) / per_us
            tokens = Fraction(1)
        tokens -= 1
        last = t
        assert us(s) == math.ceil(t), (s, t)


def us(at: datetime) -> int:
    return (at - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def test_rate_limiter_broadcast_of_100k_is_fast() -> None:
    limiter = RateLimiter(per_second=50, burst=100)
    started = clock.perf_counter()
    times = limiter.reserve_many(T0, 100_000)
    elapsed = clock.perf_counter() - started
    assert len(times) == 100_000
    assert times[:100] == [T0] * 100
    assert times[100] == T0 + timedelta(milliseconds=20)
    assert times[-1] == T0 + timedelta(seconds=(100_000 - 100) / 50)
    assert elapsed < 2.0, elapsed
    assert limiter.reserve(T0) == T0 + timedelta(seconds=(100_000 - 99) / 50)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (math.inf, 1), (math.nan, 1), (1, 0), (1, 1.5)])
def test_rate_limiter_refuses_bad_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValidationError):
        RateLimiter(per_second=rate, burst=burst)
    with pytest.raises(ValidationError):
        RateLimiter(1, 1).reserve_many(T0, -1)
