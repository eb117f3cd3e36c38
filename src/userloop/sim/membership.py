"""The membership programme of the simulated business, with a known true effect of membership on purchases.

DOMAIN §9 asks that the member system's value be measured honestly: did a member's contribution grow because of
the membership, and not because member counts grew or a big campaign ran at the same time? To grade such a
measurement (issue 15, item 6: difference-in-differences with matched controls) the simulator plants all three:

- **Selection.** People join on some day with a chance that rises with their paid orders of the last
  :data:`RECENT_DAYS` days, so joiners were better customers before they joined and a naive member vs non-member
  comparison overstates the effect (a naive before/after one is off too: joiners were picked at a high point of
  their own history). The chance depends only on what the records show (those orders, being registered, still
  having the app), so look-alikes matched on them on the join day, among people who had not joined yet, are a
  valid control group (selection on observables).
- **Growth.** Joins go on every day from the launch, so member counts grow through the window.
- **A concurrent campaign.** A sales week multiplies everyone's purchase rate, members and not.

**The true effect.** From the local day after joining, the member's BG/NBD purchase rate λ (Fader, Hardie & Lee
2005) is multiplied by the person's ``membership_effect`` m, and the dropout chance after each purchase is
divided by m. The daily dropout hazard λ·p is then unchanged, so membership changes how much a member buys while
alive and not how long they stay: the expected orders of any post-join period are exactly m times what they
would have been without the membership (for the purchase process; the 7-day coupon and push extras are aside;
exact while p/m ≤ 1, which fails only for the rare member whose effect m is below their dropout chance p).
:func:`membership_att` computes the average effect on the treated from :func:`~userloop.sim.truth.ground_truth`.

Members also check in, earn points on orders and check-ins, rise through levels by growth value (points earned),
redeem points, and react a little to a level-up (more check-ins and redemptions for a week; purchases are left
alone so the planted effect stays exactly m). Everything is drawn from the programme's own random streams, so the
draws of a business without the programme are untouched.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from userloop.sim.columns import constant_of, labels, sparse_labels, sparse_numbers, vocabulary
from userloop.sim.config import MembershipConfig
from userloop.sim.identity import NEVER_MS, counter_ids
from userloop.sim.world import World, stream

#: The programme's events, in the order of their codes. ``points_earned`` and ``member_level_up`` are written by
#: the server (passive); the others are things a member does in the app.
MEMBER_EVENTS: tuple[str, ...] = ("member_join", "check_in", "points_earned", "points_redeemed", "member_level_up")
JOIN, CHECK_IN, EARNED, REDEEMED, LEVEL_UP = range(len(MEMBER_EVENTS))
MEMBER_PASSIVE_EVENTS: tuple[str, ...] = ("points_earned", "member_level_up")
#: Levels by growth value (points earned since joining): name, threshold, multiplier of the points per order.
LEVELS: tuple[tuple[str, int, float], ...] = (
    ("silver", 0, 1.0),
    ("gold", 200, 1.2),
    ("platinum", 800, 1.5),
    ("diamond", 2_000, 2.0),
)
_THRESHOLDS = np.array([level[1] for level in LEVELS], dtype=np.int64)
_MULTIPLIER = np.array([level[2] for level in LEVELS])
#: The join chance counts the paid orders of this many days before the day.
RECENT_DAYS = 28
MAX_JOIN_CHANCE = 0.5
#: A member who has stopped buying for good still checks in and redeems, this much less often.
DROPPED_OUT_FACTOR = 0.1
#: After a level-up: for this many days, extra check-in chance and a multiplier of the redemption chance.
LEVEL_UP_DAYS = 7
LEVEL_UP_CHECK_IN = 0.3
LEVEL_UP_REDEEM = 2.0
#: Check-in points on weekdays and at weekends (as the habitual check-ins of the visits).
CHECK_IN_POINTS = (5, 10)
#: The server writes an order's points this long after the payment.
EARN_DELAY_MS = 1_000
#: ``event_id`` stream of the programme's records (0: events, 1: signups).
EVENT_ID_STREAM = 2
#: The key of every event's ``event_id`` (``records.EVENT_KEY``; that module imports this one, so it is repeated).
_EVENT_KEY = 0x5EED_E7E7


@dataclass(frozen=True)
class MemberDay:
    """The programme's events of one day, one array element per event (not sorted).

    ``level`` is the member's level index after the event (-1 where the event has none) and ``points`` the
    points earned or redeemed (-1 where none).
    """

    event: np.ndarray
    person: np.ndarray
    time_ms: np.ndarray
    level: np.ndarray
    points: np.ndarray

    def __len__(self) -> int:
        return len(self.event)

    @classmethod
    def concat(cls, days: list[MemberDay]) -> MemberDay:
        return cls(
            event=np.concatenate([d.event for d in days]),
            person=np.concatenate([d.person for d in days]),
            time_ms=np.concatenate([d.time_ms for d in days]),
            level=np.concatenate([d.level for d in days]),
            points=np.concatenate([d.points for d in days]),
        )


def _events(
    code: int, person: np.ndarray, time_ms: np.ndarray, level: np.ndarray | int, points: np.ndarray | int
) -> MemberDay:
    n = len(person)
    return MemberDay(
        event=np.full(n, code, dtype=np.int8),
        person=person.astype(np.int32),
        time_ms=time_ms.astype(np.int64),
        level=np.broadcast_to(np.asarray(level, dtype=np.int32), (n,)).copy(),
        points=np.broadcast_to(np.asarray(points, dtype=np.int64), (n,)).copy(),
    )


def campaign_multipliers(config: MembershipConfig, days: int) -> np.ndarray:
    """Per day of the window, the campaign's multiplier of everyone's purchase rate (1 outside the campaign)."""
    factor = np.ones(days)
    factor[config.campaign_day : config.campaign_day + config.campaign_days] = config.campaign_lift
    return factor


class Membership:
    """The programme's state, advanced by the timeline at the end of each local day.

    Attributes
    ----------
    effect
        Every person's true multiplier m of the purchase rate (drawn for everyone; it acts only on members).
    join_day, join_ms
        Day and time of joining; ``days + 1`` and :data:`NEVER_MS` for non-members.
    alive_at_join
        Whether the member was still buying (had not dropped out) at the end of their join day.
    post_orders
        Paid orders on the days after the join day.
    """

    def __init__(self, world: World, config: MembershipConfig) -> None:
        self.world = world
        self.config = config
        n, days = world.people.size, world.calendar.days
        z = stream(world.config.seed, "membership").standard_normal(n)
        spread = config.effect_spread
        self.effect = config.effect_mean * np.exp(spread * z - spread * spread / 2.0)
        self.campaign = campaign_multipliers(config, days)
        self.join_day = np.full(n, days + 1, dtype=np.int32)
        self.join_ms = np.full(n, NEVER_MS, dtype=np.int64)
        self.alive_at_join = np.zeros(n, dtype=bool)
        self.post_orders = np.zeros(n, dtype=np.int32)
        self.recent = np.zeros(n, dtype=np.int32)
        self.recent_buyers: deque[np.ndarray] = deque()
        self.points = np.zeros(n, dtype=np.int64)
        self.growth = np.zeros(n, dtype=np.int64)
        self.level = np.full(n, -1, dtype=np.int8)
        self.level_up_day = np.full(n, -LEVEL_UP_DAYS - 1, dtype=np.int32)

    def rate_factor(self, day: int, installed: int) -> np.ndarray:
        """Multiplier of the purchase rate of people ``[0, installed)`` on ``day``: campaign × member effect."""
        member = self.join_day[:installed] < day
        return self.campaign[day] * np.where(member, self.effect[:installed], 1.0)

    def dropout_divisor(self, day: int, person: np.ndarray) -> np.ndarray:
        """Divisor of the dropout chance after each of the given people's purchases on ``day``."""
        return np.where(self.join_day[person] < day, self.effect[person], 1.0)

    def advance(
        self,
        day: int,
        installed: int,
        buy_person: np.ndarray,
        buy_paid_ms: np.ndarray,
        reg_ms: np.ndarray,
        uninstall_ms: np.ndarray,
        dropout_ms: np.ndarray,
    ) -> MemberDay:
        """Joins, points, check-ins, level-ups and redemptions of ``day``, after its purchases were decided."""
        rng = stream(self.world.config.seed, "membership", day)
        cal = self.world.calendar
        day_start, day_end = int(cal.day_start_ms[day]), int(cal.day_start_ms[day + 1])
        self.post_orders += np.bincount(
            buy_person[self.join_day[buy_person] < day], minlength=len(self.post_orders)
        ).astype(np.int32)
        joins = self._joins(day, installed, day_start, day_end, reg_ms, uninstall_ms, dropout_ms, rng)
        # The recent orders take today's in only after today's join decision.
        np.add.at(self.recent, buy_person, 1)
        self.recent_buyers.append(buy_person)
        if len(self.recent_buyers) > RECENT_DAYS:
            np.subtract.at(self.recent, self.recent_buyers.popleft(), 1)
        # Redemptions spend the balance held at the start of the day, so it is never negative at any time.
        redeemed = self._redemptions(day, installed, day_start, day_end, uninstall_ms, dropout_ms, rng)
        earned = self._order_points(buy_person, buy_paid_ms)
        checks = self._check_ins(day, installed, day_start, day_end, uninstall_ms, dropout_ms, rng)
        level_ups = self._level_ups(day, MemberDay.concat([earned, checks]))
        return MemberDay.concat([joins, redeemed, earned, checks, level_ups])

    def _joins(
        self,
        day: int,
        installed: int,
        day_start: int,
        day_end: int,
        reg_ms: np.ndarray,
        uninstall_ms: np.ndarray,
        dropout_ms: np.ndarray,
        rng: np.random.Generator,
    ) -> MemberDay:
        cfg = self.config
        if day < cfg.launch_day:
            return _events(JOIN, np.empty(0, np.int32), np.empty(0, np.int64), -1, -1)
        view = slice(0, installed)
        chance = np.minimum(cfg.join_rate * (1.0 + cfg.join_per_order * self.recent[view]), MAX_JOIN_CHANCE)
        draw = rng.random(installed)
        eligible = (self.join_day[view] > day) & (reg_ms[view] < day_start) & (uninstall_ms[view] > day_end)
        person = np.flatnonzero(eligible & (draw < chance)).astype(np.int32)
        at = self.world.calendar.draw_times_after(rng, np.full(len(person), day), np.full(len(person), day_start))
        self.join_day[person] = day
        self.join_ms[person] = at
        self.alive_at_join[person] = dropout_ms[person] == NEVER_MS
        self.level[person] = 0
        return _events(JOIN, person, at, 0, -1)

    def _order_points(self, buy_person: np.ndarray, buy_paid_ms: np.ndarray) -> MemberDay:
        """Points for the orders paid after joining (an order paid before the join time earns none)."""
        earns = buy_paid_ms > self.join_ms[buy_person]
        person, paid = buy_person[earns], buy_paid_ms[earns]
        level = self.level[person]
        points = np.floor(self.config.points_per_order * _MULTIPLIER[level]).astype(np.int64)
        np.add.at(self.points, person, points)
        np.add.at(self.growth, person, points)
        return _events(EARNED, person, paid + EARN_DELAY_MS, level, points)

    def _check_ins(
        self,
        day: int,
        installed: int,
        day_start: int,
        day_end: int,
        uninstall_ms: np.ndarray,
        dropout_ms: np.ndarray,
        rng: np.random.Generator,
    ) -> MemberDay:
        """Check-ins of members without the habit (habitual members check in through their visits)."""
        view = slice(0, installed)
        people = self.world.people
        boost = np.where(day - self.level_up_day[view] <= LEVEL_UP_DAYS, LEVEL_UP_CHECK_IN, 0.0)
        alive = np.where(dropout_ms[view] == NEVER_MS, 1.0, DROPPED_OUT_FACTOR)
        chance = (self.config.check_in_chance + boost) * alive
        draw = rng.random(installed)
        able = (self.join_day[view] < day) & ~people.check_in_habit[view] & (uninstall_ms[view] > day_end)
        person = np.flatnonzero(able & (draw < chance)).astype(np.int32)
        at = self.world.calendar.draw_times_after(rng, np.full(len(person), day), np.full(len(person), day_start))
        weekend = int(self.world.calendar.weekday[day] >= 5)
        points = CHECK_IN_POINTS[weekend]
        self.points[person] += points
        self.growth[person] += points
        return _events(CHECK_IN, person, at, self.level[person], points)

    def _level_ups(self, day: int, earnings: MemberDay) -> MemberDay:
        """A level-up, one level at a time, right after the earning that reached it; levels never go down."""
        if not len(earnings):
            return _events(LEVEL_UP, np.empty(0, np.int32), np.empty(0, np.int64), -1, -1)
        order = np.lexsort((earnings.time_ms, earnings.person))
        person, at = earnings.person[order], earnings.time_ms[order]
        last = np.r_[person[1:] != person[:-1], True]
        person, at = person[last], at[last]
        reached = (np.searchsorted(_THRESHOLDS, self.growth[person], side="right") - 1).astype(np.int8)
        up = reached > self.level[person]
        steps = (reached[up] - self.level[person[up]]).astype(np.int64)
        who = np.repeat(person[up], steps)
        level = np.repeat(self.level[person[up]].astype(np.int64), steps) + _ranks(steps) + 1
        self.level[person[up]] = reached[up]
        self.level_up_day[person[up]] = day
        return _events(LEVEL_UP, who, np.repeat(at[up], steps) + 1, level, -1)

    def _redemptions(
        self,
        day: int,
        installed: int,
        day_start: int,
        day_end: int,
        uninstall_ms: np.ndarray,
        dropout_ms: np.ndarray,
        rng: np.random.Generator,
    ) -> MemberDay:
        view = slice(0, installed)
        cfg = self.config
        boost = np.where(day - self.level_up_day[view] <= LEVEL_UP_DAYS, LEVEL_UP_REDEEM, 1.0)
        alive = np.where(dropout_ms[view] == NEVER_MS, 1.0, DROPPED_OUT_FACTOR)
        chance = np.minimum(cfg.redeem_chance * boost * alive, 1.0)
        draw = rng.random(installed)
        able = (self.points[view] >= cfg.redeem_points) & (uninstall_ms[view] > day_end)
        person = np.flatnonzero(able & (draw < chance)).astype(np.int32)
        at = self.world.calendar.draw_times_after(rng, np.full(len(person), day), np.full(len(person), day_start))
        self.points[person] -= cfg.redeem_points
        return _events(REDEEMED, person, at, self.level[person], cfg.redeem_points)


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0, 1, …, size-1 for each group, concatenated."""
    starts = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(starts, sizes)


def member_table(world: World, days: MemberDay, chunk: int) -> pa.Table:
    """The ``track`` records of the programme's events of one chunk, in time order.

    Members are registered, so every record carries the login id. Property types match the other events'
    (``points`` is the check-in's int64); ``lib`` is ``python`` for the server's records.
    """
    config = world.config.membership
    assert config is not None
    order = np.lexsort((days.event, days.time_ms))
    event, person, time_ms = days.event[order], days.person[order], days.time_ms[order]
    level, points = days.level[order], days.points[order]
    n = len(event)
    ids = world.ids
    server = np.isin(event, [MEMBER_EVENTS.index(e) for e in MEMBER_PASSIVE_EVENTS])
    lib = np.where(server, 2, np.minimum(world.people.os[person], 1)).astype(np.int32)
    with_level, with_points = np.flatnonzero(level >= 0), np.flatnonzero(points >= 0)
    return pa.table(
        {
            "type": constant_of("track", n),
            "event": labels(vocabulary(MEMBER_EVENTS), event.astype(np.int32)),
            "distinct_id": ids.strings(ids.login_index(person.astype(np.int64))),
            "is_login_id": pa.array(np.ones(n, dtype=bool)),
            "time": pa.array(time_ms, type=pa.int64()),
            "event_id": counter_ids(world.config.seed ^ _EVENT_KEY, chunk, n, stream=EVENT_ID_STREAM),
            "lib": labels(vocabulary(("iOS", "Android", "python")), lib),
            "programme": constant_of(config.programme, n),
            "level": sparse_labels(vocabulary([name for name, _, _ in LEVELS]), n, with_level, level[with_level]),
            "points": sparse_numbers(n, with_points, points[with_points], pa.int64()),
        }
    )


def counterfactual_orders(
    membership: Membership, purchase_rate: np.ndarray, dropout_prob: np.ndarray, activity: np.ndarray
) -> np.ndarray:
    """Per person, the expected paid orders on the days after joining had they not joined (0 for non-members).

    With the membership off, a member alive at the end of their join day buys on day d as a Poisson process of
    rate μ_d = λ · activity_d · campaign_d, and drops out right after each purchase with chance p. Thinning the
    process gives E[orders kept on day d | alive at its start] = (1 − e^(−μ_d p)) / p and survival e^(−μ_d p);
    summing over the post-join days gives the expectation. With the membership, μ_d is m·μ_d and p is p/m, so the
    survival is the same and the expectation is exactly m times this. Coupon and push extras are not included.
    """
    days = len(activity)
    member = np.flatnonzero(membership.join_day <= days - 1)
    lam, p = purchase_rate[member], dropout_prob[member]
    join = membership.join_day[member]
    alive = membership.alive_at_join[member].astype(np.float64)
    expected = np.zeros(len(member))
    for day in range(days):
        after = join < day
        mu_p = lam * (activity[day] * membership.campaign[day]) * p
        expected += np.where(after, alive * -np.expm1(-mu_p) / p, 0.0)
        alive = np.where(after, alive * np.exp(-mu_p), alive)
    out = np.zeros(len(purchase_rate))
    out[member] = expected
    return out


@dataclass(frozen=True)
class MembershipEffect:
    """The true average effect of membership on the treated (the members), from the ground truth.

    ``members``: people who joined in the window; ``member_days``: days after their join days up to the window's
    end, summed; ``counterfactual_orders``: expected orders on those days without the membership;
    ``extra_orders``: Σ (m − 1) × counterfactual, the orders the membership added in expectation;
    ``orders_per_member_day``: extra orders per member-day (the ATT on daily orders); ``relative``: extra over
    counterfactual orders (the ATT as a relative lift, the order-weighted mean of m − 1); ``spend_per_member_day``:
    extra spend in yuan per member-day, at each person's expected order value (membership does not change
    baskets).
    """

    members: int
    member_days: int
    counterfactual_orders: float
    extra_orders: float
    orders_per_member_day: float
    relative: float
    spend_per_member_day: float


def membership_att(truth: pa.Table) -> MembershipEffect:
    """The true ATT of membership from :func:`~userloop.sim.truth.ground_truth` of a simulation with a programme.

    Uses the columns ``member_join_time``, ``membership_effect``, ``member_post_days``,
    ``counterfactual_post_orders`` and ``expected_order_value``.
    """
    if "membership_effect" not in truth.column_names:
        raise ValueError("the ground truth has no membership columns: simulate with SimConfig.membership set")
    member = truth.column("member_join_time").is_valid().to_numpy(zero_copy_only=False)
    m = truth.column("membership_effect").to_numpy()[member]
    days = truth.column("member_post_days").to_numpy()[member]
    cf = truth.column("counterfactual_post_orders").to_numpy()[member]
    value = truth.column("expected_order_value").to_numpy()[member]
    extra = (m - 1.0) * cf
    member_days = int(days.sum())
    per_day = float(extra.sum() / member_days) if member_days else 0.0
    return MembershipEffect(
        members=int(member.sum()),
        member_days=member_days,
        counterfactual_orders=float(cf.sum()),
        extra_orders=float(extra.sum()),
        orders_per_member_day=per_day,
        relative=float(extra.sum() / cf.sum()) if cf.sum() > 0 else 0.0,
        spend_per_member_day=float((extra * value).sum() / member_days) if member_days else 0.0,
    )
