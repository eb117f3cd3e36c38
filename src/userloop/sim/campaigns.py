"""The operators' calendar of pushes and coupon drops (DOMAIN §6: routine moments and special dates).

Pushes go out on Tuesdays, Thursdays and Saturdays and on every holiday; coupons drop on Mondays and on the eve
of every holiday run. Each campaign reaches a random share of the eligible audience, and a fixed random
share of people is never treated at all (the natural control group of DOMAIN §8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from userloop.sim.calendar import HOUR_MS, Calendar
from userloop.sim.catalogue import Catalogue

PUSH_WEEKDAYS = (1, 3, 5)
COUPON_WEEKDAY = 0
_PUSH_THEMES = ("new_arrivals", "weekday_fresh", "weekend_feast")


@dataclass(frozen=True)
class Campaigns:
    """Campaigns of the window, indexed by day.

    Attributes
    ----------
    push_day, push_ms, push_ids, push_names
        One entry per push message: its local day, send time, ``push_id`` and ``campaign``.
    coupon_day, coupon_ms, coupon_item, coupon_names
        One entry per coupon drop: day, time, the coupon handed out (index into the catalogue's coupons) and
        ``campaign``.
    """

    push_day: np.ndarray
    push_ms: np.ndarray
    push_ids: tuple[str, ...]
    push_names: tuple[str, ...]
    coupon_day: np.ndarray
    coupon_ms: np.ndarray
    coupon_item: np.ndarray
    coupon_names: tuple[str, ...]

    @classmethod
    def build(cls, calendar: Calendar, catalogue: Catalogue) -> Campaigns:
        push_day: list[int] = []
        push_names: list[str] = []
        coupon_day: list[int] = []
        coupon_names: list[str] = []
        for day, when in enumerate(calendar.dates):
            holiday = calendar.holiday[day]
            tomorrow = calendar.holiday[day + 1] if day + 1 < calendar.days else ""
            if holiday or when.weekday() in PUSH_WEEKDAYS:
                push_day.append(day)
                push_names.append(holiday or _PUSH_THEMES[PUSH_WEEKDAYS.index(when.weekday())])
            if (tomorrow and tomorrow != holiday) or when.weekday() == COUPON_WEEKDAY:
                coupon_day.append(day)
                coupon_names.append(f"{tomorrow}_coupon" if tomorrow and tomorrow != holiday else "monday_coupon")
        push = np.array(push_day, dtype=np.int32)
        coupon = np.array(coupon_day, dtype=np.int32)
        n_coupons = len(catalogue.coupon_ids)
        return cls(
            push_day=push,
            push_ms=calendar.day_start_ms[push] + 11 * HOUR_MS,
            push_ids=tuple(f"push_{calendar.dates[d]:%Y%m%d}" for d in push_day),
            push_names=tuple(push_names),
            coupon_day=coupon,
            coupon_ms=calendar.day_start_ms[coupon] + 9 * HOUR_MS + HOUR_MS // 2,
            # Bigger coupons before holidays, the small ones on ordinary Mondays.
            coupon_item=np.array(
                [(k % 3) + (3 if "monday" not in name else 0) for k, name in enumerate(coupon_names)], dtype=np.int16
            )
            % n_coupons,
            coupon_names=tuple(coupon_names),
        )

    def push_on(self, day: int) -> int:
        """Index of the push sent on ``day``, or -1."""
        hit = np.flatnonzero(self.push_day == day)
        return int(hit[0]) if len(hit) else -1

    def coupon_on(self, day: int) -> int:
        """Index of the coupon drop on ``day``, or -1."""
        hit = np.flatnonzero(self.coupon_day == day)
        return int(hit[0]) if len(hit) else -1
