"""Delivery rules of the journeys runtime: who is held out, who gets which branch, how often, when, and how fast.

Everything here is pure: it takes explicit naive-UTC datetimes (the form :func:`userloop.core.clock.utcnow` returns
and the stores keep) and IANA zone names, and never reads the clock, so the runtime, the simulator and the tests get
the same answer for the same inputs at any hour on any machine.

* **Assignment** (:func:`bucket`, :func:`in_global_control`, :func:`split`). A person's bucket is a hash of
  ``(seed, person)`` mapped to [0, 1), the approach GrowthBook and PlanOut take (GrowthBook's "hashing" doc: FNV-1a
  32-bit of ``seed + id``, hashed twice in its v2 to remove the bias of v1, modulo 10 000). We use SHA-256 instead
  (first 8 bytes → 53-bit fraction): it is in the standard library, defined byte for byte by FIPS 180-4, so it is
  stable across runs, platforms and Python versions, it avalanches on short inputs (FNV-1a on ``"seed1"``/``"seed2"``
  is measurably correlated) and it resolves 2⁻⁵³ instead of 10⁻⁴. Different seeds give independent buckets.
* **Frequency caps** (:class:`CapRule`, :func:`cap_windows`, :func:`capped`) count sends per person in the person's
  own local calendar day and ISO week (Monday first), so a DST day of 23 or 25 hours is one day.
* **Quiet hours** (:class:`QuietHours`, :func:`quiet`, :func:`next_allowed`) are wall-clock times in the person's
  zone; a deferred send goes at the first real instant after them, also when that wall time falls in a DST gap.
* **Rate limits** (:class:`RateLimiter`) reschedule, never drop: the Generic Cell Rate Algorithm (GCRA, ITU-T
  I.371 / ATM Forum TM 4.0, the "virtual scheduling" form), equivalent to a token bucket of ``burst`` tokens refilled
  at ``per_second``.

Local times follow PEP 495: an ambiguous wall time (a fold, when clocks go back) exists twice, a wall time in a gap
(when clocks go forward) not at all; :func:`resolve_local` maps a wall time to the first real instant at or after it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from userloop.core.errors import ValidationError

__all__ = [
    "CapRule",
    "QuietHours",
    "QuietPolicy",
    "RateLimiter",
    "branch_index",
    "bucket",
    "cap_windows",
    "capped",
    "in_global_control",
    "journey_seed",
    "local_date",
    "next_allowed",
    "quiet",
    "resolve_local",
    "split",
    "split_seed",
]

_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
#: How far the weights of a split may be from 100 (percent) and still be accepted.
WEIGHT_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------------------------------------- zones


@lru_cache(maxsize=512)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValidationError(
            f"unknown time zone {tz!r}; use an IANA name such as 'Asia/Shanghai'", field="timezone"
        ) from exc


def _utc(at: datetime, what: str = "at") -> datetime:
    """``at`` as naive UTC; an aware datetime is converted, so a caller's aware value is never misread."""
    if at.tzinfo is not None:
        return at.astimezone(UTC).replace(tzinfo=None)
    return at


def _local(at: datetime, zone: ZoneInfo) -> datetime:
    """The wall-clock reading (naive, fold set per PEP 495) in ``zone`` at the naive-UTC instant ``at``."""
    return _utc(at).replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def local_date(at: datetime, tz: str) -> date:
    """The person's calendar date in ``tz`` at the naive-UTC instant ``at``."""
    return _local(at, _zone(tz)).date()


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The naive-UTC instants at which clocks in ``zone`` read ``wall``: one, two (a fold) or none (a gap)."""
    found = []
    for fold in (0, 1):
        u = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC).replace(tzinfo=None)
        if _local(u, zone).replace(fold=0) == wall.replace(fold=0) and u not in found:
            found.append(u)
    return sorted(found)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant that skips over ``wall`` (a wall time in a gap): the first real instant after it.

    PEP 495 maps a missing wall time with fold=0 through the offset before the transition and with fold=1 through
    the one after, so the transition lies between the two results; zoneinfo does not expose transitions, so it is
    found by bisection to the second (every transition in the tz database falls on a whole second)."""
    a = wall.replace(tzinfo=zone, fold=0).astimezone(UTC).replace(tzinfo=None)
    b = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(tzinfo=None)
    lo, hi = min(a, b), max(a, b)  # lo reads before the gap, hi after it
    lo_off = lo.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    lo_s, hi_s = int((lo - _EPOCH).total_seconds()), math.ceil((hi - _EPOCH).total_seconds())
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        instant = datetime.fromtimestamp(mid, UTC)
        if instant.astimezone(zone).utcoffset() == lo_off:
            lo_s = mid
        else:
            hi_s = mid
    return _EPOCH + timedelta(seconds=hi_s)


def resolve_local(wall: datetime, tz: str) -> datetime:
    """The first real instant (naive UTC) at or after the wall time ``wall`` in ``tz``.

    A wall time that exists once is that instant; one in a fold (clocks went back) is its first occurrence; one in
    a gap (clocks went forward, e.g. 02:30 on 2026-03-08 in New York) is the moment the gap ends (03:00 EDT)."""
    zone = _zone(tz)
    wall = wall.replace(tzinfo=None)
    found = _instants(wall, zone)
    return found[0] if found else _gap_end(wall, zone)


def _resolve_after(wall: datetime, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant later than ``after`` whose wall time is ``wall`` or, when ``wall`` falls in a gap, the
    instant that ends the gap. After a fold the second occurrence is the one that counts when ``after`` is past the
    first."""
    instants = _instants(wall, zone)
    later = [u for u in instants if u > after]
    if later:
        return later[0]
    if not instants:
        return max(_gap_end(wall, zone), after + timedelta(microseconds=1))
    return after + timedelta(microseconds=1)  # unreachable for the callers here; still moves forward


# ------------------------------------------------------------------------------------------------------ assignment


def bucket(seed: str, person: int) -> float:
    """A person's place in [0, 1) for ``seed``: the first 8 bytes of SHA-256(``seed`` ␟ ``person``) as a 53-bit
    fraction. The same on every run, platform and version; independent across seeds (the module doc says why not
    GrowthBook's FNV-1a)."""
    digest = hashlib.sha256(f"{seed}\x1f{int(person)}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def in_global_control(salt: str, person: int, share: float) -> bool:
    """Whether ``person`` is in the global control group: the stable ``share`` (0–1) of everyone who receives no
    marketing at all, so its outcomes measure what all journeys together add. Raising the share only adds people
    (the group is everyone whose bucket for ``salt`` is below ``share``)."""
    if isinstance(share, bool) or not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
        raise ValidationError(f"the global control share must be between 0 and 1, not {share!r}", field="share")
    return bucket(salt, person) < share


def _check_weights(weights: Sequence[tuple[str, float]]) -> None:
    if not weights:
        raise ValidationError("a split needs at least one branch", field="weights")
    names: set[str] = set()
    for name, weight in weights:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"a split branch needs a non-empty name, not {name!r}", field="weights")
        if name in names:
            raise ValidationError(f"the split names branch {name!r} twice", field="weights")
        names.add(name)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ValidationError(f"branch {name!r} has weight {weight!r}; use a percentage", field="weights")
        if weight < 0:
            raise ValidationError(f"branch {name!r} has a negative weight ({weight})", field="weights")
    total = math.fsum(w for _, w in weights)
    if abs(total - 100.0) > WEIGHT_TOLERANCE:
        raise ValidationError(
            f"the split's weights add up to {total!r}%, not 100% ({', '.join(f'{n}={w}' for n, w in weights)})",
            field="weights",
        )


def branch_index(seed: str, person: int, percents: Sequence[float]) -> int:
    """The index of the branch ``person`` falls in: branches take consecutive ranges of [0, 100) in the order
    given, with widths equal to their ``percents`` (checked by the caller: a journey's split is validated when it
    is saved, :func:`split` checks its own). The one mapping of a bucket to a branch, for the journeys' random
    splits and for experiments (:mod:`userloop.experiment.assignment`)."""
    point = bucket(seed, person) * 100.0
    edge = 0.0
    for i, p in enumerate(percents):
        edge += p
        if point < edge:
            return i
    return max(i for i, p in enumerate(percents) if p > 0)  # rounding left a sliver past the sum


def split(seed: str, person: int, weights: Sequence[tuple[str, float]]) -> str:
    """The branch ``person`` falls in (:func:`branch_index`), by name; the percentages must add up to 100 ± 1e-9.
    A control branch is just another name. Changing only the seed reshuffles everyone; keeping seed and order
    keeps everyone's branch."""
    _check_weights(weights)
    return weights[branch_index(seed, person, [w for _, w in weights])][0]


def journey_seed(journey_id: int) -> str:
    """The seed of a journey's draws; each random split draws with :func:`split_seed` of it and its node."""
    return f"journey:{journey_id}"


def split_seed(journey_seed: str, node: str) -> str:
    """The seed of the random split ``node`` of the journey whose seed is ``journey_seed``: independent draws for
    two splits of one journey, the same draw for a person at one split every time."""
    return f"{journey_seed}:{node}"


# ---------------------------------------------------------------------------------------------- frequency caps


class CapRule(BaseModel):
    """At most ``per_day`` sends per person per local calendar day and ``per_week`` per local ISO week (Monday
    first) on ``channel`` (``"*"``: all channels together). None means no limit of that length."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Annotated[str, Field(min_length=1)]
    per_day: Annotated[int, Field(strict=True, gt=0)] | None = None
    per_week: Annotated[int, Field(strict=True, gt=0)] | None = None

    def applies(self, channel: str) -> bool:
        """Whether sends on ``channel`` count towards this rule."""
        return self.channel in ("*", channel)


def _date_bounds(first: date, days: int, tz: str) -> tuple[datetime, datetime]:
    """The first real instants of local dates ``first`` and ``first + days``."""
    return (
        resolve_local(datetime.combine(first, time()), tz),
        resolve_local(datetime.combine(first + timedelta(days=days), time()), tz),
    )


def cap_windows(at: datetime, tz: str) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """The naive-UTC half-open bounds ``[start, end)`` of the local calendar day and the local week (Monday first)
    in ``tz`` that contain ``at``. Each bound is the first real instant of that local date, so a spring-forward day
    lasts 23 hours, a fall-back day 25, and Lord Howe's 23½ or 24½.

    Where midnight falls in a gap (America/Santiago goes from 00:00 to 01:00) the day starts when the gap ends.
    Should a fold ever cross midnight (say 00:30 → 23:30), :func:`capped` still counts by each send's local date and
    these windows are the contiguous hull of the day."""
    zone = _zone(tz)
    day = _local(at, zone).date()
    monday = day - timedelta(days=day.weekday())
    return _date_bounds(day, 1, tz), _date_bounds(monday, 7, tz)


def capped(sent_at: Sequence[datetime], at: datetime, tz: str, rule: CapRule) -> bool:
    """Whether one more send at ``at`` would break ``rule`` for a person in ``tz``, given the person's other sends
    ``sent_at`` (naive UTC) on the channels the rule covers: each is counted when its local date in ``tz`` is the
    local date of ``at`` (per day) or in the same local Monday-first week (per week)."""
    if rule.per_day is None and rule.per_week is None:
        return False
    zone = _zone(tz)
    day = _local(at, zone).date()
    monday = day - timedelta(days=day.weekday())
    same_day = same_week = 0
    for sent in sent_at:
        d = _local(sent, zone).date()
        if d == day:
            same_day += 1
        if 0 <= (d - monday).days < 7:
            same_week += 1
    return (rule.per_day is not None and same_day + 1 > rule.per_day) or (
        rule.per_week is not None and same_week + 1 > rule.per_week
    )


# -------------------------------------------------------------------------------------------------- quiet hours

QuietPolicy = Literal["defer", "drop"]


class QuietHours(BaseModel):
    """Do-not-disturb hours (勿扰时段) as wall-clock times in the person's zone, ``[start, end)``; ``start`` later
    than ``end`` spans midnight (22:00–08:00). ``policy``: ``defer`` sends at the end, ``drop`` skips the send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time
    policy: QuietPolicy = "defer"

    @model_validator(mode="after")
    def _check(self) -> QuietHours:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are wall-clock times in the person's zone; give them without a zone")
        if self.start == self.end:
            raise ValueError(f"quiet hours start and end at the same time ({self.start}); leave them out instead")
        return self

    def covers(self, wall: time) -> bool:
        """Whether the wall-clock time ``wall`` is inside these quiet hours."""
        wall = wall.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


def quiet(at: datetime, tz: str, q: QuietHours) -> bool:
    """Whether the instant ``at`` (naive UTC) falls in quiet hours ``q`` on the person's wall clock in ``tz``."""
    return q.covers(_local(at, _zone(tz)).time())


def next_allowed(at: datetime, tz: str, q: QuietHours) -> datetime:
    """``at`` when it is outside quiet hours, else the first later instant outside them (naive UTC).

    That is the first occurrence after ``at`` of the wall time ``q.end``; when that wall time does not exist (a
    DST gap) it is the instant the gap ends; after a fold the quiet hours may come round twice, and a day skipped by
    a zone (Kiritimati on 1994-12-31) is skipped here too."""
    zone = _zone(tz)
    at = _utc(at)
    current = at
    for _ in range(8):  # a quiet period ends within two local days; a few rounds cover gaps and folds
        wall = _local(current, zone)
        if not q.covers(wall.time()):
            return current
        end_day = wall.date()
        if q.start > q.end and wall.time().replace(fold=0) >= q.start:
            end_day += timedelta(days=1)
        current = _resolve_after(datetime.combine(end_day, q.end), zone, current)
    raise AssertionError(f"no instant outside quiet hours {q.start}–{q.end} in {tz} after {at}")  # pragma: no cover


# -------------------------------------------------------------------------------------------------- rate limits


class RateLimiter:
    """A per-channel rate limit that reschedules instead of dropping: GCRA (the Generic Cell Rate Algorithm of
    ITU-T I.371, "virtual scheduling"), i.e. a token bucket holding ``burst`` sends refilled at ``per_second``.

    State is one number, the theoretical arrival time (TAT) of the next send, kept exactly as a fraction of a
    microsecond so that 100 000 sends do not drift; a send reserved at ``now`` may go at
    ``max(now, max(TAT, now) − τ)`` with τ = (burst − 1) / per_second, and moves TAT on by 1 / per_second. Returned
    times are rounded up to the microsecond, so the rate is never exceeded. Deterministic in the times passed in."""

    def __init__(self, per_second: float, burst: int = 1) -> None:
        if isinstance(per_second, bool) or not isinstance(per_second, int | float) or not math.isfinite(per_second):
            raise ValidationError(f"a rate limit needs a finite number per second, not {per_second!r}", field="rate")
        if per_second <= 0:
            raise ValidationError(f"a rate limit must allow more than 0 sends per second ({per_second})", field="rate")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValidationError(f"a rate limit's burst must be a whole number ≥ 1, not {burst!r}", field="burst")
        self.per_second = per_second
        self.burst = burst
        self._interval = Fraction(10**6) / Fraction(per_second)  # µs between sends, exact
        self._tolerance = (burst - 1) * self._interval
        self._tat: Fraction | None = None

    @staticmethod
    def _us(at: datetime) -> int:
        delta = _utc(at) - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds

    def reserve(self, now: datetime) -> datetime:
        """Reserve one send at ``now`` (naive UTC); returns when it may go (``now`` if within the burst)."""
        return self.reserve_many(now, 1)[0]

    def reserve_many(self, now: datetime, n: int) -> list[datetime]:
        """Reserve ``n`` sends at ``now`` in one step (a broadcast); returns their times, in order, in O(n)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValidationError(f"cannot reserve {n!r} sends", field="n")
        now_us = self._us(now)
        tat = Fraction(now_us) if self._tat is None or self._tat < now_us else self._tat
        first = tat - self._tolerance
        den = first.denominator * self._interval.denominator // math.gcd(first.denominator, self._interval.denominator)
        a = first.numerator * (den // first.denominator)
        step = self._interval.numerator * (den // self._interval.denominator)
        self._tat = tat + n * self._interval
        out: list[datetime] = []
        append = out.append
        for k in range(n):
            us = -((-(a + k * step)) // den)  # ceil((first + k·interval)) in µs
            append(_EPOCH + timedelta(microseconds=us if us > now_us else now_us))
        return out
