"""What a session holds: the fixed slot order of events and how many of each a session of a given kind has.

Counts are drawn by inverting tabulated Poisson distributions (one table row per session kind), which takes a
single ``searchsorted`` per slot for all sessions at once and depends only on uniform draws, so it is both fast
and identical on every machine.
"""

from __future__ import annotations

import math

import numpy as np

from userloop.sim.behaviour import Kind, Sessions
from userloop.sim.world import World

SLOTS = (
    "push_clicked",
    "app_start",
    "login",
    "check_in",
    "page_view",
    "search",
    "view_item",
    "add_to_cart",
    "share",
    "like",
    "comment",
    "register",
    "checkout",
    "confirm_payment",
    "enter_password",
    "order_paid",
    "order_item",
    "coupon_used",
    "push_received",
    "coupon_received",
)
S = {name: k for k, name in enumerate(SLOTS)}
N_KINDS = len(Kind)
MAX_LINES = 12
MAX_PAGE_VIEWS = 10
MAX_SEARCHES = 4
MAX_EXTRA_VIEWS = 16

#: Mean extra page views (after the first), searches and product views per kind; a fake install's session is
#: a glance (the second row of each table).
_PAGE_VIEWS = {Kind.INSTALL: 1.0, Kind.BROWSE: 1.6, Kind.PURCHASE: 1.0, Kind.ABANDON: 0.8, Kind.PUSH_OPEN: 1.0,
               Kind.REGISTER: 0.5, Kind.SECOND_DEVICE: 1.0}  # fmt: skip
_SEARCHES = {Kind.INSTALL: 0.3, Kind.BROWSE: 0.45, Kind.PURCHASE: 0.6, Kind.ABANDON: 0.5, Kind.PUSH_OPEN: 0.2}
_VIEWS = {Kind.INSTALL: 1.2, Kind.BROWSE: 1.8, Kind.PURCHASE: 1.0, Kind.ABANDON: 1.0, Kind.PUSH_OPEN: 1.5}
_FAKE = {"page_view": 0.3, "search": 0.0, "view_item": 0.3}
#: Chance that one viewed product goes to the cart in a session that is not a checkout.
_CART_CHANCE = {Kind.INSTALL: 0.08, Kind.BROWSE: 0.12, Kind.PUSH_OPEN: 0.10}
_SOCIAL_KINDS = (Kind.BROWSE, Kind.PURCHASE, Kind.PUSH_OPEN)
_NO_PAGES = (Kind.PUSH_RECEIVED, Kind.COUPON_RECEIVED)
_NO_APP_START = (Kind.REG_INLINE, Kind.PUSH_RECEIVED, Kind.COUPON_RECEIVED)
#: (share, like, comment) chance per session with at least one product view.
_SOCIAL_CHANCE = (0.03, 0.06, 0.015)


BUCKET_BITS = 12


class PoissonTable:
    """Poisson counts capped at ``cap``, one mean per row (session kind), by table lookup.

    A 16-bit uniform draw picks one of 4096 equally likely buckets; each bucket holds the Poisson quantile at
    its midpoint. Quantising the distribution to 1/4096 changes nothing visible and makes a draw one gather.
    """

    def __init__(self, means: list[float], cap: int) -> None:
        mid = (np.arange(1 << BUCKET_BITS) + 0.5) / (1 << BUCKET_BITS)
        rows = []
        for mean in means:
            cdf, term, acc = [], math.exp(-mean), 0.0
            for j in range(cap):
                acc += term
                cdf.append(acc)
                term *= mean / (j + 1)
            rows.append(np.searchsorted(np.array(cdf), mid, side="right"))
        self.table = np.concatenate(rows).astype(np.int32)

    def draw(self, row: np.ndarray, u16: np.ndarray) -> np.ndarray:
        return self.table[(row << BUCKET_BITS) + (u16 >> (16 - BUCKET_BITS))]


def _rows(table: dict[Kind, float], fake: float) -> list[float]:
    regular = [table.get(Kind(k), 0.0) for k in range(N_KINDS)]
    return regular + [fake if mean > 0 else 0.0 for mean in regular]


_PV = PoissonTable(_rows(_PAGE_VIEWS, _FAKE["page_view"]), MAX_PAGE_VIEWS - 1)
_SEARCH = PoissonTable(_rows(_SEARCHES, _FAKE["search"]), MAX_SEARCHES)
_VIEW = PoissonTable(_rows(_VIEWS, _FAKE["view_item"]), MAX_EXTRA_VIEWS)
_CART_BY_VIEWS = np.array(
    [[1.0 - (1.0 - _CART_CHANCE.get(Kind(k), 0.0)) ** v for v in range(MAX_EXTRA_VIEWS + 1)] for k in range(N_KINDS)]
) * (1 << 16)
_HAS_PAGES = np.array([k not in _NO_PAGES for k in range(N_KINDS)], dtype=np.int32)
_HAS_APP_START = np.array([k not in _NO_APP_START for k in range(N_KINDS)], dtype=np.int32)
_SOCIAL = np.array([k in _SOCIAL_KINDS for k in range(N_KINDS)])
#: Per kind, slot → fixed count (app_start, login, check_in, register, push_clicked, server events).
_FIXED = np.zeros((N_KINDS, len(SLOTS)), dtype=np.int32)
_FIXED[:, S["app_start"]] = _HAS_APP_START
_FIXED[Kind.PUSH_OPEN, S["push_clicked"]] = 1
_FIXED[Kind.SECOND_DEVICE, S["login"]] = 1
_FIXED[Kind.CHECK_IN, S["check_in"]] = 1
_FIXED[[Kind.REGISTER, Kind.REG_INLINE], S["register"]] = 1
_FIXED[Kind.PUSH_RECEIVED, S["push_received"]] = 1
_FIXED[Kind.COUPON_RECEIVED, S["coupon_received"]] = 1
_FIXED[Kind.PURCHASE, S["checkout"] : S["order_paid"] + 1] = 1


def slot_counts(world: World, sessions: Sessions, rng: np.random.Generator) -> np.ndarray:
    """The ``(sessions, slots)`` count matrix.

    Purchases and abandoned checkouts put 1–12 lines in the cart (more for people with bigger baskets), view
    each of them plus a few others; an abandoned checkout stops after the step in ``Sessions.ref``.
    """
    people = world.people
    kind = sessions.kind.astype(np.int64)
    n = len(sessions)
    row = kind + N_KINDS * people.is_fake[sessions.person]
    counts = _FIXED[kind]
    u = rng.integers(0, 1 << 16, size=(6, n), dtype=np.uint16)
    shopping = np.flatnonzero((kind == Kind.PURCHASE) | (kind == Kind.ABANDON))
    lines = np.zeros(n, dtype=np.int32)
    basket = people.basket[sessions.person[shopping]]
    lines[shopping] = 1 + np.minimum(rng.poisson(1.6 * basket), MAX_LINES - 1)
    counts[:, S["page_view"]] = (_PV.draw(row, u[0]) + 1) * _HAS_PAGES[kind]
    counts[:, S["search"]] = _SEARCH.draw(row, u[1])
    extra_views = _VIEW.draw(row, u[2])
    views = extra_views + lines
    counts[:, S["view_item"]] = views
    browse_cart = (u[3] < _CART_BY_VIEWS[kind, extra_views]).astype(np.int32)
    counts[:, S["add_to_cart"]] = np.where(lines > 0, lines, browse_cart)
    social = (views > 0) & _SOCIAL[kind]
    # One uniform serves the three social actions: disjoint ranges, so at most one per session.
    share, like, comment = (int(c * (1 << 16)) for c in _SOCIAL_CHANCE)
    counts[:, S["share"]] = social & (u[4] < share)
    counts[:, S["like"]] = social & (u[4] >= share) & (u[4] < share + like)
    counts[:, S["comment"]] = social & (u[5] < comment)
    abandon = shopping[kind[shopping] == Kind.ABANDON]
    last_step = sessions.ref[abandon]
    for step, name in enumerate(("checkout", "confirm_payment", "enter_password"), start=1):
        counts[abandon, S[name]] = last_step >= step
    buying = shopping[kind[shopping] == Kind.PURCHASE]
    counts[buying, S["order_item"]] = lines[buying]
    counts[buying, S["coupon_used"]] = sessions.ref[buying] >= 0
    return counts
