"""The latent process, day by day: purchases, dropouts, registrations, devices, uninstalls and treatments.

This is the part of the simulation that the ground truth depends on, kept apart from the (much larger) event
expansion so that :func:`~userloop.sim.truth.ground_truth` can replay it cheaply with the very same draws.

Purchases follow the BG/NBD story (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
alive, a person buys as a Poisson process of rate λ (times the day's activity multiplier); right after each
purchase they drop out for good with probability p. A coupon received or a push clicked adds the person's
latent uplift to their daily purchase probability for the next 7 days. With a membership programme
(:mod:`userloop.sim.membership`) a member's rate is multiplied by their true effect and a sales campaign
multiplies everyone's; without one, nothing here draws or computes differently.

Treatments can also come from outside the simulated business (the rehearsal of :mod:`userloop.experiment.rehearsal`,
where userloop's journeys send): a timeline built with ``external=True`` takes them through :meth:`Timeline.treat`,
and they add their uplift the same way. Without the flag nothing is allocated, drawn or computed differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from userloop.sim.calendar import DAY_MS, HOUR_MS, LAST_START_MS
from userloop.sim.identity import NEVER_MS
from userloop.sim.membership import MemberDay, Membership
from userloop.sim.world import World, stream

UPLIFT_DAYS = 7
#: A push campaign reaches its audience within this long after it is sent.
PUSH_SPREAD_MS = 60_000
#: A purchase needs the app open for a while first: none in the first quarter hour after install.
FIRST_PURCHASE_DELAY_MS = 15 * 60_000
COUPON_USE_CHANCE = 0.8
_EMPTY_I = np.empty(0, dtype=np.int32)
_EMPTY_L = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class DayPlan:
    """What the latent process decided for one day; the event expansion turns it into sessions."""

    day: int
    installed: int  # people [0, installed) have installed by the end of the day
    buy_person: np.ndarray
    buy_start_ms: np.ndarray
    buy_paid_ms: np.ndarray
    buy_coupon: np.ndarray  # coupon index used on the order, -1 for none
    buy_order_no: np.ndarray  # the person's order number (1 for the first order ever)
    reg_person: np.ndarray
    reg_ms: np.ndarray
    reg_inline: np.ndarray  # inside another session (install or first purchase) rather than on its own
    login_person: np.ndarray
    login_ms: np.ndarray
    gone_person: np.ndarray
    gone_ms: np.ndarray
    push_person: np.ndarray
    push_clicked: np.ndarray
    push_click_ms: np.ndarray
    push_campaign: int
    coupon_person: np.ndarray
    coupon_campaign: int
    members: MemberDay | None = None  # the membership programme's events of the day, if there is one


class Timeline:
    """The latent state of every person, advanced one local day at a time.

    Attributes
    ----------
    dropout_ms, dropout_day
        When each person dropped out (after their last purchase); :data:`NEVER_MS` / a day past the window if
        still alive.
    signup_ms
        ``(2, n)``: when each person's first and second device were bound to their login id.
    uninstall_ms
        When each person uninstalls the app (may lie past the window; only fake installs and dropped-out
        people uninstall).
    orders
        Orders placed so far.
    """

    def __init__(self, world: World, *, external: bool = False) -> None:
        self.world = world
        people = world.people
        n = people.size
        self.dropout_ms = np.full(n, NEVER_MS, dtype=np.int64)
        self.dropout_day = np.full(n, world.calendar.days + 1, dtype=np.int32)
        self.signup_ms = np.full((2, n), NEVER_MS, dtype=np.int64)
        self.uninstall_ms = np.where(
            people.is_fake & people.uninstall_if_dropped, people.install_ms + people.uninstall_delay_ms, NEVER_MS
        )
        self.orders = np.zeros(n, dtype=np.int32)
        self.coupon_held = np.full(n, -1, dtype=np.int16)
        self.coupon_window = np.full((2, n), -1, dtype=np.int32)  # first and last day of the coupon's uplift
        self.push_window = np.full((2, n), -1, dtype=np.int32)
        self.next_day = 0
        #: first and last uplift day of the latest outside coupon (rows 0, 1) and nudge (rows 2, 3); None unless
        #: the timeline takes outside treatments
        self.outside = np.full((4, n), -1, dtype=np.int32) if external else None
        programme = world.config.membership
        self.membership = Membership(world, programme) if programme is not None else None

    @property
    def reg_ms(self) -> np.ndarray:
        return self.signup_ms[0]

    def advance(self) -> DayPlan:
        """Decide the next day."""
        day = self.next_day
        self.next_day += 1
        world = self.world
        rng = stream(world.config.seed, "timeline", day)
        installed = int(np.searchsorted(world.people.install_day, day, side="right"))
        # Purchases first: a dropout (and a scheduled uninstall) earlier in the day must be known when the
        # day's push goes out. Treatments start working the next day, so the order costs nothing.
        buys = self._purchases(day, installed, rng)
        push = self._pushes(day, installed, rng)
        coupon_person, coupon_campaign = self._coupons(day, installed, rng)
        regs = self._registrations(day, installed, buys[0], buys[1], rng)
        logins = self._second_devices(day, installed)
        day_start, day_end = world.calendar.day_start_ms[day], world.calendar.day_start_ms[day + 1]
        gone = np.flatnonzero((self.uninstall_ms[:installed] >= day_start) & (self.uninstall_ms[:installed] < day_end))
        buy_person, buy_start, buy_paid, buy_coupon, buy_order_no = buys
        push_person, push_clicked, push_click_ms, push_campaign = push
        members = None
        if self.membership is not None:
            members = self.membership.advance(
                day, installed, buy_person, buy_paid, self.reg_ms, self.uninstall_ms, self.dropout_ms
            )
        return DayPlan(
            day=day,
            installed=installed,
            buy_person=buy_person,
            buy_start_ms=buy_start,
            buy_paid_ms=buy_paid,
            buy_coupon=buy_coupon,
            buy_order_no=buy_order_no,
            reg_person=regs[0],
            reg_ms=regs[1],
            reg_inline=regs[2],
            login_person=logins[0],
            login_ms=logins[1],
            gone_person=gone.astype(np.int32),
            gone_ms=self.uninstall_ms[gone],
            push_person=push_person,
            push_clicked=push_clicked,
            push_click_ms=push_click_ms,
            push_campaign=push_campaign,
            coupon_person=coupon_person,
            coupon_campaign=coupon_campaign,
            members=members,
        )

    def treat(self, person: np.ndarray, kind: str, day: int) -> None:
        """Record treatments from outside received on local ``day``: ``"coupon"`` (a coupon received) adds each
        person's ``coupon_uplift``, ``"push"`` (any other message received) their ``push_uplift``, to their daily
        purchase probability for the :data:`UPLIFT_DAYS` days after ``day``, as the business's own coupons and
        clicked pushes do. A later treatment of the same kind restarts the window. Needs ``external=True``."""
        if self.outside is None:
            raise ValueError("this timeline takes no outside treatments; build it with external=True")
        if kind not in ("coupon", "push"):
            raise ValueError(f"an outside treatment is 'coupon' or 'push', not {kind!r}")
        row = 0 if kind == "coupon" else 2
        self.outside[row, person] = day + 1
        self.outside[row + 1, person] = day + UPLIFT_DAYS

    def _pushes(
        self, day: int, installed: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        campaigns = self.world.campaigns
        k = campaigns.push_on(day)
        if k < 0:
            return _EMPTY_I, np.empty(0, dtype=bool), _EMPTY_L, -1
        people = self.world.people
        sent = int(campaigns.push_ms[k])
        view = slice(0, installed)
        eligible = (
            (people.install_ms[view] < sent)
            & people.push_enabled[view]
            & ~people.never_treated[view]
            & (self.uninstall_ms[view] > sent + PUSH_SPREAD_MS)
        )
        chosen = np.flatnonzero(eligible & (rng.random(installed) < self.world.config.push_share)).astype(np.int32)
        alive = self.dropout_ms[chosen] > sent
        chance = people.click_propensity[chosen] * np.where(alive, 1.0, 0.15)
        clicked = rng.random(len(chosen)) < chance
        delay = np.minimum(rng.exponential(20 * 60_000.0, size=len(chosen)).astype(np.int64), 3 * HOUR_MS)
        self.push_window[0, chosen[clicked]] = day + 1
        self.push_window[1, chosen[clicked]] = day + UPLIFT_DAYS
        return chosen, clicked, sent + 60_000 + delay, k

    def _coupons(self, day: int, installed: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        campaigns = self.world.campaigns
        k = campaigns.coupon_on(day)
        if k < 0:
            return _EMPTY_I, -1
        people = self.world.people
        sent = int(campaigns.coupon_ms[k])
        view = slice(0, installed)
        eligible = (self.reg_ms[view] < sent) & ~people.never_treated[view]
        chosen = np.flatnonzero(eligible & (rng.random(installed) < self.world.config.coupon_share)).astype(np.int32)
        self.coupon_held[chosen] = campaigns.coupon_item[k]
        self.coupon_window[0, chosen] = day + 1
        self.coupon_window[1, chosen] = day + UPLIFT_DAYS
        return chosen, k

    def _purchases(
        self, day: int, installed: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        world, people = self.world, self.world.people
        cal = world.calendar
        view = slice(0, installed)
        day_start = int(cal.day_start_ms[day])
        # Exposure: the share of the day's shopping hours left after the earliest possible purchase (1 on any
        # day after the install day; people installing today are the last ones, being numbered by install).
        first_new = int(np.searchsorted(people.install_day, day, side="left"))
        new = slice(first_new, installed)
        earliest_new = people.install_ms[new] + FIRST_PURCHASE_DELAY_MS
        exposure = np.ones(installed)
        exposure[new] = np.clip((day_start + LAST_START_MS - earliest_new) / (LAST_START_MS + 1.0), 0.0, 1.0)
        alive = self.dropout_ms[view] == NEVER_MS
        rate = people.purchase_rate[view] * cal.activity[day] * exposure * alive
        if self.membership is not None:
            rate = rate * self.membership.rate_factor(day, installed)
        in_coupon = (self.coupon_window[0, view] <= day) & (day <= self.coupon_window[1, view])
        in_push = (self.push_window[0, view] <= day) & (day <= self.push_window[1, view])
        uplift = people.coupon_uplift[view] * in_coupon + people.push_uplift[view] * in_push
        if self.outside is not None:
            out = self.outside[:, view]
            uplift = uplift + people.coupon_uplift[view] * ((out[0] <= day) & (day <= out[1]))
            uplift = uplift + people.push_uplift[view] * ((out[2] <= day) & (day <= out[3]))
        extra = rng.random(installed) < np.minimum(uplift, 1.0) * alive * (exposure > 0)
        count = rng.poisson(rate) + extra
        person = np.repeat(np.arange(installed, dtype=np.int32), count)
        earliest = np.where(person >= first_new, people.install_ms[person] + FIRST_PURCHASE_DELAY_MS, day_start)
        start = cal.draw_times_after(rng, np.full(len(person), day), earliest)
        paid = start + 90_000 + rng.integers(0, 540_000, size=len(person))
        order = np.lexsort((paid, person))
        person, start, paid = person[order], start[order], paid[order]
        person, start, paid = self._apply_dropouts(person, start, paid, rng)
        coupon = self._use_coupons(day, person, start, rng)
        buyers, bought = np.unique(person, return_counts=True)
        self.orders[buyers] += bought.astype(np.int32)
        order_no = self.orders[person] - _rank_from_end(person) if len(person) else _EMPTY_I
        return person, start, paid, coupon, order_no.astype(np.int32)

    def _apply_dropouts(
        self, person: np.ndarray, start: np.ndarray, paid: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cut each person's purchases of the day at the first one after which they drop out."""
        if not len(person):
            return person, start, paid
        people = self.world.people
        dropout = people.dropout_prob[person]
        if self.membership is not None:
            dropout = dropout / self.membership.dropout_divisor(self.next_day - 1, person)
        drops = rng.random(len(person)) < dropout
        group_start = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
        rank = np.arange(len(person)) - np.repeat(group_start, np.diff(np.r_[group_start, len(person)]))
        first_drop = np.minimum.reduceat(np.where(drops, rank, len(person)), group_start)
        keep = rank <= np.repeat(first_drop, np.diff(np.r_[group_start, len(person)]))
        person, start, paid, drops = person[keep], start[keep], paid[keep], drops[keep]
        gone, at = person[drops], paid[drops]
        self.dropout_ms[gone] = at
        self.dropout_day[gone] = self.next_day - 1
        leaves = people.uninstall_if_dropped[gone]
        self.uninstall_ms[gone[leaves]] = at[leaves] + people.uninstall_delay_ms[gone[leaves]]
        return person, start, paid

    def _use_coupons(self, day: int, person: np.ndarray, start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        coupon = np.full(len(person), -1, dtype=np.int16)
        if not len(person):
            return coupon
        first = np.r_[True, person[1:] != person[:-1]]
        held = self.coupon_held[person]
        valid = first & (held >= 0) & (self.coupon_window[1, person] >= day)
        use = valid & (rng.random(len(person)) < COUPON_USE_CHANCE)
        coupon[use] = held[use]
        self.coupon_held[person[use]] = -1
        return coupon

    def _registrations(
        self, day: int, installed: int, buyer: np.ndarray, buy_start: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        world, people = self.world, self.world.people
        cfg, cal = world.config, world.calendar
        day_start = int(cal.day_start_ms[day])
        # Forced: registration is required to order, so a buyer not registered yet signs up inside the
        # purchase session, a little after it starts.
        first = np.r_[True, buyer[1:] != buyer[:-1]] if len(buyer) else np.empty(0, dtype=bool)
        forced = first & (self.reg_ms[buyer] == NEVER_MS)
        f_person = buyer[forced]
        f_ms = buy_start[forced] + rng.integers(20_000, 80_000, size=len(f_person))
        self.reg_ms[f_person] = f_ms
        # Voluntary: during the install session, or on a later day on a visit of its own.
        view = slice(0, installed)
        open_ = (self.reg_ms[view] == NEVER_MS) & (self.uninstall_ms[view] > day_start + DAY_MS)
        new = people.install_day[view] == day
        alive = self.dropout_ms[view] == NEVER_MS
        chance = np.where(new, cfg.register_on_install, cfg.register_daily * alive)
        chance = np.where(people.is_fake[view], np.where(new, 0.03, 0.0), chance)
        joins = np.flatnonzero(open_ & (rng.random(installed) < chance)).astype(np.int32)
        joins_new = new[joins]
        at_install = people.install_ms[joins] + rng.integers(30_000, 300_000, size=len(joins))
        later = cal.draw_times_after(rng, np.full(len(joins), day), np.full(len(joins), day_start + 6 * HOUR_MS))
        v_ms = np.where(joins_new, at_install, later)
        self.reg_ms[joins] = v_ms
        person = np.concatenate([f_person, joins])
        return person, np.concatenate([f_ms, v_ms]), np.concatenate([np.ones(len(f_person), bool), joins_new])

    def _second_devices(self, day: int, installed: int) -> tuple[np.ndarray, np.ndarray]:
        people, cal = self.world.people, self.world.calendar
        view = slice(0, installed)
        reg = self.reg_ms[view]
        has = people.has_second_device[view] & (reg != NEVER_MS)
        target = np.where(has, np.where(has, reg, 0) + people.second_delay_ms[view], NEVER_MS)
        day_start = int(cal.day_start_ms[day])
        due = (target >= day_start) & (target < day_start + DAY_MS) & (self.uninstall_ms[view] > target)
        person = np.flatnonzero(due).astype(np.int32)
        at = np.clip(target[person], day_start + 7 * HOUR_MS, day_start + 22 * HOUR_MS)
        self.signup_ms[1, person] = at
        return person, at


def _rank_from_end(group: np.ndarray) -> np.ndarray:
    """For a sorted group array, how many later elements share each element's group."""
    n = len(group)
    last = np.r_[group[1:] != group[:-1], True]
    end = np.flatnonzero(last)
    sizes = np.diff(np.r_[-1, end])
    return np.repeat(end, sizes) - np.arange(n)
