"""Visits: which sessions happen on a day, of which kind, on which device, when.

The latent plan of the day (purchases, registrations, logins, pushes, coupons) becomes anchored sessions; on
top of it come the visits that do not change the latent state: browsing (a rate that follows engagement,
the day's activity, and decays to almost nothing after dropout), daily check-ins of habitual users, and
abandoned checkouts. Abandoned checkouts are drawn per step and per ``$os`` so that the payment funnel's step
conversions match the configuration, including the planted breakpoint (DOMAIN §6.3): far fewer Android users
get past the password step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

import numpy as np

from userloop.sim.config import SimConfig
from userloop.sim.timeline import PUSH_SPREAD_MS, DayPlan, Timeline
from userloop.sim.world import World, stream

#: After dropout, browsing decays with this half-life (days) to a floor of occasional visits.
DECAY_HALF_LIFE_DAYS = 7.0
DECAY_FLOOR = 0.03
CHECK_IN_CHANCE = 0.8
SECOND_DEVICE_SHARE_OF_VISITS = 0.4
#: Step conversions of the payment funnel that are not planted: cart → checkout, checkout → confirm_payment,
#: enter_password → order_paid.
CART_TO_CHECKOUT = 0.6
CHECKOUT_TO_CONFIRM = 0.85
PASSWORD_TO_PAID = 0.95


class Kind(IntEnum):
    """Kinds of session; server-side records (pushes, coupons sent) are one-event sessions."""

    INSTALL = 0
    BROWSE = 1
    CHECK_IN = 2
    PURCHASE = 3
    ABANDON = 4
    PUSH_OPEN = 5
    REGISTER = 6
    REG_INLINE = 7
    SECOND_DEVICE = 8
    PUSH_RECEIVED = 9
    COUPON_RECEIVED = 10


SERVER_KINDS = (Kind.PUSH_RECEIVED, Kind.COUPON_RECEIVED)


@dataclass(frozen=True)
class Sessions:
    """A batch of sessions, one array element per session.

    ``anchor_ms`` is the time of the session's anchor event (order_paid of a purchase, register, login), equal
    to ``start_ms`` when the session is anchored at its start. ``ref`` and ``ref2`` depend on the kind:
    purchase → coupon used (-1 for none) and the person's order number; abandon → the last funnel step
    reached (0 add_to_cart … 3 enter_password); push → campaign; coupon received → coupon and campaign.
    """

    person: np.ndarray
    kind: np.ndarray
    device: np.ndarray
    start_ms: np.ndarray
    anchor_ms: np.ndarray
    ref: np.ndarray
    ref2: np.ndarray

    def __len__(self) -> int:
        return len(self.person)

    @classmethod
    def of(
        cls,
        person: np.ndarray,
        kind: Kind,
        start_ms: np.ndarray,
        anchor_ms: np.ndarray | None = None,
        ref: np.ndarray | int = -1,
        ref2: np.ndarray | int = -1,
        device: np.ndarray | int = 0,
    ) -> Sessions:
        n = len(person)
        return cls(
            person=person.astype(np.int32),
            kind=np.full(n, kind, dtype=np.int8),
            device=np.broadcast_to(np.asarray(device, dtype=np.int8), (n,)).copy(),
            start_ms=start_ms.astype(np.int64),
            anchor_ms=(start_ms if anchor_ms is None else anchor_ms).astype(np.int64),
            ref=np.broadcast_to(np.asarray(ref, dtype=np.int32), (n,)).copy(),
            ref2=np.broadcast_to(np.asarray(ref2, dtype=np.int32), (n,)).copy(),
        )

    @classmethod
    def concat(cls, parts: list[Sessions]) -> Sessions:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def take(self, index: np.ndarray) -> Sessions:
        return Sessions(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def abandon_multipliers(config: SimConfig) -> np.ndarray:
    """Abandoned checkouts per purchase, by last step reached (rows) and ``$os`` (columns).

    With P purchases and A_k sessions that stop right after step k, the conversion of the step after k is
    (P + Σ_{j>k} A_j) / (P + Σ_{j≥k} A_j); solving for A_k from the last step backwards gives the multipliers.
    """
    password = (config.password_conversion_ios, config.password_conversion_android, config.password_conversion_harmony)
    rows = []
    for c_pw in password:
        m3 = (1 - PASSWORD_TO_PAID) / PASSWORD_TO_PAID
        m2 = (1 + m3) * (1 - c_pw) / c_pw
        m1 = (1 + m2 + m3) * (1 - CHECKOUT_TO_CONFIRM) / CHECKOUT_TO_CONFIRM
        m0 = (1 + m1 + m2 + m3) * (1 - CART_TO_CHECKOUT) / CART_TO_CHECKOUT
        rows.append((m0, m1, m2, m3))
    return np.array(rows).T


def _decay_table(days: int) -> np.ndarray:
    return np.array([max(DECAY_FLOOR, 0.5 ** (k / DECAY_HALF_LIFE_DAYS)) for k in range(days + 2)])


class Visits:
    """Draws the sessions of each day from the world, the latent state and the day's plan."""

    def __init__(self, world: World, timeline: Timeline) -> None:
        self.world = world
        self.timeline = timeline
        self.decay = _decay_table(world.calendar.days)
        abandon = abandon_multipliers(world.config)
        self.abandon_total = abandon.sum(axis=0)
        self.abandon_cum = np.cumsum(abandon / self.abandon_total, axis=0)
        self.abandon_cum[-1] = 1.0

    def day(self, plan: DayPlan) -> Sessions:
        rng = stream(self.world.config.seed, "sessions", plan.day)
        parts = [
            self._installs(plan),
            *self._visits(plan, rng),
            *self._planned(plan, rng),
        ]
        sessions = Sessions.concat(parts)
        sessions = self._drop_after_uninstall(sessions)
        return self._pick_devices(sessions, rng)

    def _installs(self, plan: DayPlan) -> Sessions:
        people = self.world.people
        first = int(np.searchsorted(people.install_day, plan.day, side="left"))
        person = np.arange(first, plan.installed, dtype=np.int32)
        return Sessions.of(person, Kind.INSTALL, people.install_ms[person])

    def _visits(self, plan: DayPlan, rng: np.random.Generator) -> list[Sessions]:
        world, people, tl = self.world, self.world.people, self.timeline
        cal, day, n = world.calendar, plan.day, plan.installed
        day_start = int(cal.day_start_ms[day])
        # People are numbered by install time: those who install today are the last ones.
        first_new = int(np.searchsorted(people.install_day, day, side="left"))
        new = slice(first_new, n)
        after_install = people.install_ms[new] + 60_000
        exposure = np.ones(n)
        exposure[new] = np.clip((day_start + 22 * 3_600_000 - after_install) / 79_200_000.0, 0.0, 1.0)
        dead_days = np.clip(day - tl.dropout_day[:n], 0, len(self.decay) - 1)
        alive = tl.dropout_day[:n] >= day
        state = np.where(alive, 1.0, self.decay[dead_days])
        browse_rate = people.engagement[:n] * cal.activity[day] * state * exposure
        browse = np.repeat(np.arange(n, dtype=np.int32), rng.poisson(browse_rate))
        check_chance = people.check_in_habit[:n] * np.where(alive, CHECK_IN_CHANCE, 0.05 * state)
        check_chance[new] = 0.0  # the install visit is enough for the first day
        check = np.flatnonzero(rng.random(n) < check_chance).astype(np.int32)
        abandon, depth = self._abandons(n, day, alive, exposure, rng)
        out = []
        for person, kind, ref in (
            (browse, Kind.BROWSE, -1),
            (check, Kind.CHECK_IN, -1),
            (abandon, Kind.ABANDON, depth),
        ):
            after = np.where(person >= first_new, people.install_ms[person] + 60_000, day_start)
            start = cal.draw_times_after(rng, np.full(len(person), day), after)
            out.append(Sessions.of(person, kind, start, ref=ref))
        return out

    def _abandons(
        self, n: int, day: int, alive: np.ndarray, exposure: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Abandoned checkouts (person, last step reached): a rate tied to the person's purchase rate, the
        step from the per-``$os`` step conversions."""
        people = self.world.people
        buyers = np.flatnonzero(people.purchase_rate[:n] * alive * (exposure > 0) > 0)
        os_ = people.os[buyers]
        activity = self.world.calendar.activity[day]
        lam = people.purchase_rate[buyers] * activity * exposure[buyers] * self.abandon_total[os_]
        abandon = np.repeat(buyers.astype(np.int32), rng.poisson(lam))
        step_cum = self.abandon_cum[:, people.os[abandon]]
        depth = (rng.random(len(abandon))[None, :] >= step_cum).sum(axis=0).astype(np.int32)
        return abandon, depth

    def _planned(self, plan: DayPlan, rng: np.random.Generator) -> list[Sessions]:
        campaigns = self.world.campaigns
        out = [
            Sessions.of(
                plan.buy_person, Kind.PURCHASE, plan.buy_start_ms, plan.buy_paid_ms, plan.buy_coupon, plan.buy_order_no
            )
        ]
        inline = plan.reg_inline
        lead = np.where(inline, rng.integers(5_000, 20_000, len(inline)), rng.integers(30_000, 120_000, len(inline)))
        for which, kind in ((inline, Kind.REG_INLINE), (~inline, Kind.REGISTER)):
            person, at = plan.reg_person[which], plan.reg_ms[which]
            out.append(Sessions.of(person, kind, at - lead[which], at))
        lead = rng.integers(10_000, 60_000, len(plan.login_person))
        out.append(Sessions.of(plan.login_person, Kind.SECOND_DEVICE, plan.login_ms - lead, plan.login_ms, device=1))
        if plan.push_campaign >= 0:
            sent = int(campaigns.push_ms[plan.push_campaign])
            person = plan.push_person
            out.append(
                Sessions.of(
                    person,
                    Kind.PUSH_RECEIVED,
                    sent + rng.integers(0, PUSH_SPREAD_MS, len(person)),
                    ref=plan.push_campaign,
                )
            )
            clicked = plan.push_clicked
            out.append(
                Sessions.of(person[clicked], Kind.PUSH_OPEN, plan.push_click_ms[clicked], ref=plan.push_campaign)
            )
        if plan.coupon_campaign >= 0:
            k = plan.coupon_campaign
            person = plan.coupon_person
            at = int(campaigns.coupon_ms[k]) + rng.integers(0, 120_000, len(person))
            out.append(Sessions.of(person, Kind.COUPON_RECEIVED, at, ref=int(campaigns.coupon_item[k]), ref2=k))
        return out

    def _drop_after_uninstall(self, sessions: Sessions) -> Sessions:
        server = np.isin(sessions.kind, SERVER_KINDS)
        kept = server | (sessions.start_ms < self.timeline.uninstall_ms[sessions.person])
        return sessions if kept.all() else sessions.take(np.flatnonzero(kept))

    def _pick_devices(self, sessions: Sessions, rng: np.random.Generator) -> Sessions:
        """Visits after a second device logged in happen on it part of the time."""
        second_from = self.timeline.signup_ms[1, sessions.person]
        movable = (sessions.start_ms > second_from) & ~np.isin(
            sessions.kind, (Kind.INSTALL, Kind.SECOND_DEVICE, *SERVER_KINDS)
        )
        moved = movable & (rng.random(len(sessions)) < SECOND_DEVICE_SHARE_OF_VISITS)
        sessions.device[moved] = 1
        return sessions
