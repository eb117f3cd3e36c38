"""The ground truth: what was really true of every simulated person, for checking models against it.

It replays the latent process (:class:`~userloop.sim.timeline.Timeline`) with the same draws as
:func:`~userloop.sim.generator.simulate`, without expanding events, so it is cheap and always consistent with
the records. :func:`daily_active` replays the day's sessions too: who really used the app on each day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from userloop.sim.behaviour import SERVER_KINDS, Visits
from userloop.sim.columns import TIMESTAMP_MS, numbers
from userloop.sim.config import CHANNELS, SimConfig
from userloop.sim.geography import COMMUNITY_KINDS
from userloop.sim.identity import NEVER_MS
from userloop.sim.membership import LEVELS, MEMBER_EVENTS, MEMBER_PASSIVE_EVENTS, counterfactual_orders
from userloop.sim.timeline import Timeline
from userloop.sim.world import AGE_BANDS, OS_NAMES, World


def _timestamps(ms: np.ndarray, end_ms: int) -> pa.Array:
    unknown = (ms == NEVER_MS) | (ms >= end_ms)
    return numbers(np.where(unknown, 0, ms), unknown, TIMESTAMP_MS)


def _labels(names: tuple[str, ...], index: np.ndarray) -> pa.Array:
    return pa.array(list(names), type=pa.string()).take(pa.array(index))


def ground_truth(config: SimConfig) -> pa.Table:
    """One row per simulated person with their latent traits and what happened to them.

    Columns: ``person`` (the simulator's number, by install time), ``login_id`` (null if never registered in
    the window), ``anonymous_ids`` (every device id that appeared: the first device, and a second one if it
    logged in), ``purchase_rate`` (true λ per day), ``dropout_prob`` (true BG/NBD p), ``dropout_time`` (after
    the purchase at this time the person stopped buying for good; null if alive at the end), ``channel``,
    ``is_fake_install``, ``coupon_uplift`` and ``push_uplift`` (additive increase of the daily purchase
    probability during the 7 days after a coupon is received / a push is clicked), ``never_treated`` (the
    natural control group), ``install_time``, ``registered_time``, ``uninstall_time``, ``orders`` (paid orders
    in the window), ``expected_order_value`` (the person's mean basket value in yuan before coupons), plus
    ``city``, ``community``, ``community_kind``, ``store_id``, ``os``, ``age_band``, ``check_in_habit`` and
    ``push_enabled``.

    With a membership programme (``config.membership``, :mod:`userloop.sim.membership`) six more columns:
    ``member_join_time`` (null if the person never joined), ``membership_effect`` (the person's true multiplier
    m of their daily purchase rate λ from the local day after joining on, with the dropout chance per purchase
    divided by m so the daily dropout hazard is unchanged; drawn for everyone, acting only on members),
    ``member_level`` (level at the window's end, null for non-members), ``member_post_days`` (local days after
    the join day up to the window's end; 0 for non-members), ``post_join_orders`` (paid orders on those days)
    and ``counterfactual_post_orders`` (expected orders on those days had the person not joined, given whether
    they were still buying at the end of the join day; m times it is the expectation with the membership).
    :func:`~userloop.sim.membership.membership_att` computes the average effect on the treated from them.

    Examples
    --------
    >>> from datetime import date
    >>> truth = ground_truth(SimConfig(users=200, days=14, end_date=date(2024, 6, 30)))
    >>> truth.num_rows
    200
    """
    world = World.build(config)
    timeline = Timeline(world)
    for _ in range(world.calendar.days):
        timeline.advance()
    people, ids, end = world.people, world.ids, world.calendar.end_ms
    n = people.size
    person = np.arange(n, dtype=np.int64)
    registered = timeline.signup_ms[0] < end
    second = timeline.signup_ms[1] < end
    id_index = np.stack([ids.device_index(person, 0), ids.device_index(person, 1)], axis=1).ravel()
    id_count = 1 + second.astype(np.int32)
    keep = np.ones((n, 2), dtype=bool)
    keep[:, 1] = second
    offsets = np.r_[0, np.cumsum(id_count)].astype(np.int32)
    anonymous = pa.ListArray.from_arrays(pa.array(offsets), ids.strings(id_index[keep.ravel()]))
    login = ids.table.take(pa.array(ids.login_index(person), mask=~registered))
    geo = world.geography
    basket_value = expected_order_value(world)
    columns = {
        "person": pa.array(person),
        "login_id": login,
        "anonymous_ids": anonymous,
        "purchase_rate": pa.array(people.purchase_rate),
        "dropout_prob": pa.array(people.dropout_prob),
        "dropout_time": _timestamps(timeline.dropout_ms, end),
        "channel": _labels(CHANNELS, people.channel),
        "is_fake_install": pa.array(people.is_fake),
        "coupon_uplift": pa.array(people.coupon_uplift),
        "push_uplift": pa.array(people.push_uplift),
        "never_treated": pa.array(people.never_treated),
        "install_time": _timestamps(people.install_ms, end),
        "registered_time": _timestamps(timeline.signup_ms[0], end),
        "uninstall_time": _timestamps(timeline.uninstall_ms, end),
        "orders": pa.array(timeline.orders.astype(np.int64)),
        "expected_order_value": pa.array(basket_value),
        "city": _labels(geo.city_names, people.city),
        "community": _labels(geo.community_names, people.community),
        "community_kind": _labels(tuple(k[0] for k in COMMUNITY_KINDS), geo.community_kind[people.community]),
        "store_id": _labels(geo.store_ids, people.store),
        "os": _labels(OS_NAMES, people.os),
        "age_band": _labels(AGE_BANDS, people.age_band),
        "check_in_habit": pa.array(people.check_in_habit),
        "push_enabled": pa.array(people.push_enabled),
    }
    if timeline.membership is not None:
        columns |= _membership_columns(world, timeline)
    return pa.table(columns)


def expected_order_value(world: World) -> np.ndarray:
    """Each person's mean basket value in yuan before coupons (the ground truth's ``expected_order_value``)."""
    people = world.people
    mean_price = people.taste.astype(np.float64) @ world.catalogue.mean_price_cents()
    return mean_price * (1 + 1.6 * people.basket) * 1.35 / 100.0


def _membership_columns(world: World, timeline: Timeline) -> dict[str, pa.Array]:
    membership = timeline.membership
    assert membership is not None
    days, end = world.calendar.days, world.calendar.end_ms
    member = membership.join_day < days
    level = membership.level.astype(np.int32)
    expected = counterfactual_orders(
        membership, world.people.purchase_rate, world.people.dropout_prob, world.calendar.activity
    )
    return {
        "member_join_time": _timestamps(membership.join_ms, end),
        "membership_effect": pa.array(membership.effect),
        "member_level": pa.array([name for name, _, _ in LEVELS]).take(pa.array(np.maximum(level, 0), mask=level < 0)),
        "member_post_days": pa.array(np.where(member, days - 1 - membership.join_day, 0).astype(np.int64)),
        "post_join_orders": pa.array(membership.post_orders.astype(np.int64)),
        "counterfactual_post_orders": pa.array(expected),
    }


#: The events the simulated platform sends to people (the server-side sessions: a push delivered, a coupon
#: granted); every other event is something a person did in the app. :func:`userloop.sim.run.run_simulation` marks
#: these passive in the project's event registry.
PASSIVE_EVENTS: tuple[str, ...] = ("push_received", "coupon_received")


def daily_active(config: SimConfig) -> dict[date, np.ndarray]:
    """Per local day of the window, the simulated people (sorted ``person`` numbers, as in :func:`ground_truth`)
    who really used the app that day: who had at least one session of their own. A push or a coupon received
    (:data:`PASSIVE_EVENTS`) is something done to a person and does not count.

    It replays the latent process and the visits with the simulator's draws, without laying events out; no
    session crosses midnight, so a session's day is the day of its start. With a membership programme, a member's
    own programme events (joining, checking in, redeeming; not the server's points and level-up records) count.

    Examples
    --------
    >>> from datetime import date
    >>> active = daily_active(SimConfig(users=200, days=14, end_date=date(2024, 6, 30)))
    >>> len(active), min(active), max(active)
    (14, datetime.date(2024, 6, 17), datetime.date(2024, 6, 30))
    """
    world = World.build(config)
    timeline = Timeline(world)
    visits = Visits(world, timeline)
    calendar = world.calendar
    out: dict[date, np.ndarray] = {}
    for day in range(calendar.days):
        plan = timeline.advance()
        sessions = visits.day(plan)
        own = ~np.isin(sessions.kind, SERVER_KINDS)
        start = sessions.start_ms[own]
        inside = (start >= calendar.day_start_ms[day]) & (start < calendar.day_start_ms[day + 1])
        if not inside.all():
            raise AssertionError(f"a session of day {calendar.dates[day]} starts outside it")
        people = sessions.person[own]
        if plan.members is not None:
            mine = ~np.isin(plan.members.event, [MEMBER_EVENTS.index(e) for e in MEMBER_PASSIVE_EVENTS])
            people = np.concatenate([people, plan.members.person[mine]])
        out[calendar.dates[day]] = np.unique(people).astype(np.int64)
    return out


def write_ground_truth(config: SimConfig, path: str | Path) -> Path:
    """Write :func:`ground_truth` to a Parquet file and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(ground_truth(config), target)
    return target
