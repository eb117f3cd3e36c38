"""From sessions to events: the order of a session's events, their times, products and orders.

Each session has a count per slot (:mod:`userloop.sim.slots`); the event sequence of every session comes from
one ``np.repeat`` over the flattened count matrix, so the cost is a few vector operations per event whatever
the number of sessions: no Python loop per event.

Times spread a session's events by random dwell times. An anchored session (a purchase at the time the latent
process chose, a registration, a login) is stretched so that its anchor event lands exactly on the anchor time;
the events after the anchor follow it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from userloop.sim.baskets import Lines, Orders, event_products
from userloop.sim.behaviour import Kind, Sessions
from userloop.sim.slots import N_KINDS, SLOTS, S, slot_counts
from userloop.sim.world import World

#: Slot whose first event is the anchor, per kind (-1: the session is anchored at its first event).
ANCHOR_SLOT = np.full(N_KINDS, -1, dtype=np.int64)
ANCHOR_SLOT[[Kind.PURCHASE, Kind.REGISTER, Kind.REG_INLINE, Kind.SECOND_DEVICE]] = (
    S["order_paid"], S["register"], S["register"], S["login"],
)  # fmt: skip
MIN_DWELL_MS, MAX_DWELL_MS = 1_000, 30_000
_NONE = np.empty(0, dtype=np.int32)


@dataclass(frozen=True)
class EventFrame:
    """The events of a batch as flat arrays: one element per event, grouped by session in slot order."""

    sessions: Sessions
    session: np.ndarray
    slot: np.ndarray
    slot_first: np.ndarray  # (sessions × slots, flattened) position of each session's first event of a slot
    time_ms: np.ndarray
    product: np.ndarray  # -1 where the event is not about a product
    quantity: np.ndarray
    order: np.ndarray  # index into ``orders`` or -1
    orders: Orders

    def __len__(self) -> int:
        return len(self.slot)

    def rank(self, event: np.ndarray) -> np.ndarray:
        """Position of each given event among its session's events of the same slot (0 for the first)."""
        return event - self.slot_first[self.session[event] * len(SLOTS) + self.slot[event]]

    def at(self, *names: str) -> np.ndarray:
        """Positions of the events of the given slots, ascending."""
        if len(names) == 1:
            return np.flatnonzero(self.slot == S[names[0]])
        return np.flatnonzero(_slot_table(names)[self.slot])


@functools.cache
def _slot_table(names: tuple[str, ...]) -> np.ndarray:
    table = np.zeros(len(SLOTS), dtype=bool)
    table[[S[name] for name in names]] = True
    return table


def lay_out(world: World, sessions: Sessions, rng: np.random.Generator) -> EventFrame:
    """Expand a batch of sessions into events."""
    counts = slot_counts(world, sessions, rng)
    n_sessions, n_slots = counts.shape
    flat = counts.ravel()
    # int32 sums are several times faster; a batch never holds two billion events.
    ends = np.cumsum(flat, dtype=np.int32)
    slot_first = ends - flat
    session_end = ends[n_slots - 1 :: n_slots]
    total = np.diff(session_end, prepend=0)
    session_first = session_end - total
    slot = np.repeat(np.tile(np.arange(n_slots, dtype=np.int8), n_sessions), flat)
    session = np.repeat(np.arange(n_sessions, dtype=np.intp), total)  # intp: indexes without conversion
    time_ms = _times(sessions, counts, slot, session_first, total, rng)
    lines = Lines.draw(world, sessions, counts, rng)
    orders, order_of_session = Orders.build(world, sessions, counts, lines, rng)
    frame = EventFrame(sessions, session, slot, slot_first, time_ms, _NONE, _NONE, _NONE, orders)
    product, quantity = event_products(lines, frame)
    order_slots = (slot >= S["checkout"]) & (slot <= S["coupon_used"])
    order = np.where(order_slots, order_of_session[session], -1).astype(np.int32)
    return replace(frame, product=product, quantity=quantity, order=order)


def _times(
    sessions: Sessions,
    counts: np.ndarray,
    slot: np.ndarray,
    session_first: np.ndarray,
    total: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    dwell = rng.integers(MIN_DWELL_MS, MAX_DWELL_MS, size=len(slot), dtype=np.uint16)
    dwell[slot >= S["order_item"]] = 1  # written by the server together with the payment
    dwell[session_first] = 0
    elapsed = np.cumsum(dwell, dtype=np.int64)
    elapsed -= np.repeat(elapsed[session_first], total)
    time_ms = elapsed + np.repeat(sessions.start_ms, total)
    # Anchored sessions: stretch the events up to the anchor over [start, anchor], shift the rest after it.
    anchored = np.flatnonzero(ANCHOR_SLOT[sessions.kind] >= 0)
    if not len(anchored):
        return time_ms
    anchor_slot = ANCHOR_SLOT[sessions.kind[anchored]]
    anchor_pos = np.cumsum(counts[anchored], axis=1)[np.arange(len(anchored)), anchor_slot] - 1
    anchor_at = session_first[anchored] + anchor_pos
    span = sessions.anchor_ms[anchored] - sessions.start_ms[anchored]
    sizes = counts[anchored].sum(axis=1)
    event = np.repeat(session_first[anchored], sizes) + _ranks(sizes)
    owner = np.repeat(np.arange(len(anchored)), sizes)
    reach = np.maximum(elapsed[anchor_at], 1)[owner]
    before = event <= anchor_at[owner]
    start = sessions.start_ms[anchored][owner]
    stretched = start + span[owner] * elapsed[event] // reach
    after = sessions.anchor_ms[anchored][owner] + elapsed[event] - elapsed[anchor_at][owner]
    time_ms[event] = np.where(before, stretched, after)
    return time_ms


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0, 1, …, size-1 for each group, concatenated."""
    starts = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(starts, sizes)
