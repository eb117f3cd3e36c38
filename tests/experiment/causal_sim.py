"""A simulated business loaded into a workspace for the causal tests and benches: the records the estimators
read (profiles, identities, orders, the programme's joins, registrations, app starts, coupons), without the
page views and carts that only cost loading time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from userloop.ingest import TimePolicy, load_table
from userloop.sim import SimConfig, ground_truth, simulate
from userloop.sim.config import CHANNELS
from userloop.sim.timeline import Timeline
from userloop.sim.world import AGE_BANDS, OS_NAMES, World
from userloop.store import Workspace
from userloop.store.sqlbuild import sql

#: The track events kept (every profile, item and identity record is kept).
KEPT = ("order_paid", "member_join", "register", "app_start", "coupon_received", "push_received", "$SignUp")


def load(config: SimConfig, path: Path) -> tuple[Path, pa.Table]:
    """Simulate ``config`` into a fresh workspace at ``path`` (its project's zone is the simulator's)."""
    ws, _ = Workspace.init(path, timezone=config.timezone)
    try:
        store = ws.project("default")
        policy = TimePolicy(max_future_seconds=86_400, max_past_days=100_000)
        kept = [_kept(table) for table in simulate(config, workers=0)]
        load_table(store, pa.concat_tables(kept, promote_options="permissive"), source="sim", policy=policy)
        for event in ("coupon_received", "push_received"):
            if event in store.event_names():
                store.set_event_active(event, False)
    finally:
        ws.close()
    return path, ground_truth(config)


def _kept(table: pa.Table) -> pa.Table:
    if table.column("type")[0].as_py() != "track":
        return table
    return table.filter(pc.is_in(table.column("event").cast(pa.string()), pa.array(KEPT)))


def load_latent(config: SimConfig, path: Path) -> tuple[Path, pa.Table]:
    """The simulator's latent process only (its purchases, registrations and randomized coupon drops, replayed
    with the very draws :func:`userloop.sim.ground_truth` uses) written as ``order_paid``, ``register`` and
    ``coupon_received`` events of each person's login id, with a profile per person: a business of many people
    loaded in seconds, for the uplift tests (no page views, sessions or anonymous ids). The truth returned: each
    person's ``coupon_uplift`` and whether they are ``still_buying`` at the end (not dropped out)."""
    world = World.build(config)
    timeline = Timeline(world)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"order_paid": [], "register": [], "coupon_received": []}
    for _ in range(world.calendar.days):
        plan = timeline.advance()
        parts["order_paid"].append((plan.buy_person, plan.buy_paid_ms))
        parts["register"].append((plan.reg_person, plan.reg_ms))
        if plan.coupon_campaign >= 0:
            sent = world.campaigns.coupon_ms[plan.coupon_campaign]
            parts["coupon_received"].append((plan.coupon_person, np.full(len(plan.coupon_person), sent)))
    tables = [_events(world, event, pairs) for event, pairs in parts.items() if pairs]
    registered = np.flatnonzero(timeline.reg_ms < world.calendar.end_ms)
    ws, _ = Workspace.init(path, timezone=config.timezone)
    try:
        store = ws.project("default")
        policy = TimePolicy(max_future_seconds=86_400, max_past_days=100_000)
        load_table(store, _profiles(world, registered, timeline.reg_ms[registered]), source="sim", policy=policy)
        load_table(store, pa.concat_tables(tables), source="sim", policy=policy)
    finally:
        ws.close()
    truth = {
        "person": pa.array(np.arange(people_count := world.people.size)),
        "login_id": world.ids.strings(world.ids.login_index(np.arange(people_count))),
        "anonymous_ids": pa.array([[] for _ in range(people_count)], type=pa.list_(pa.string())),
        "coupon_uplift": pa.array(world.people.coupon_uplift),
        "still_buying": pa.array(timeline.dropout_ms >= world.calendar.end_ms),
    }
    return path, pa.table(truth)


def _events(world: World, event: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> pa.Table:
    person = np.concatenate([p for p, _ in pairs]).astype(np.int64)
    time_ms = np.concatenate([t for _, t in pairs]).astype(np.int64)
    n = len(person)
    return pa.table(
        {
            "type": pa.array(["track"] * n, type=pa.string()),
            "event": pa.array([event] * n, type=pa.string()),
            "distinct_id": world.ids.strings(world.ids.login_index(person)),
            "is_login_id": pa.array(np.ones(n, dtype=bool)),
            "time": pa.array(time_ms),
            "event_id": pa.array([f"{event}-{k}" for k in range(n)], type=pa.string()),
        }
    )


def _profiles(world: World, person: np.ndarray, time_ms: np.ndarray) -> pa.Table:
    people, n = world.people, len(person)
    return pa.table(
        {
            "type": pa.array(["profile_set"] * n),
            "distinct_id": world.ids.strings(world.ids.login_index(person)),
            "is_login_id": pa.array(np.ones(n, dtype=bool)),
            "time": pa.array(time_ms.astype(np.int64)),
            "age_band": pa.array([AGE_BANDS[k] for k in people.age_band[person]]),
            "channel": pa.array([CHANNELS[k] for k in people.channel[person]]),
            "$os": pa.array([OS_NAMES[k] for k in people.os[person]]),
            "push_enabled": pa.array(people.push_enabled[person]),
        }
    )


def person_of(path: Path, user_id: np.ndarray, truth: pa.Table) -> np.ndarray:
    """The simulator's person number of each of the store's ``user_id`` (through their first distinct id)."""
    by_id: dict[str, int] = {}
    for person, login, anonymous in zip(
        truth["person"].to_pylist(), truth["login_id"].to_pylist(), truth["anonymous_ids"].to_pylist(), strict=True
    ):
        by_id.update(dict.fromkeys(anonymous, person))
        if login is not None:
            by_id[login] = person
    with Workspace.open(path, read_only=True) as ws:
        store = ws.project("default")
        rows = dict(store.fetchall(sql("SELECT user_id, first_id FROM $users", users=store.ref("users"))))
    return np.array([by_id[rows[int(u)]] for u in user_id], dtype=np.int64)
