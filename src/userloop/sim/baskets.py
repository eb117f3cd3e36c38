"""What people look at and buy: cart lines, extra product views and orders.

Products follow each person's category taste (their community's preference with personal noise) and, inside
a category, popularity. An order is the cart of a session that reached checkout; a coupon's threshold is met by
buying a little more of the first line, as people do. Money is in integer cents, so sums are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from userloop.sim.behaviour import Kind, Sessions
from userloop.sim.slots import S

if TYPE_CHECKING:
    from userloop.sim.layout import EventFrame
from userloop.sim.world import PAYMENT_METHODS, World

PREFERRED_PAYMENT_SHARE = 0.85


@dataclass(frozen=True)
class Lines:
    """Cart lines (each also viewed first) and extra viewed products of a batch of sessions."""

    cart: np.ndarray  # lines per session
    first: np.ndarray  # index of each session's first line
    session: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    extra_first: np.ndarray
    extra_product: np.ndarray

    @classmethod
    def draw(cls, world: World, sessions: Sessions, counts: np.ndarray, rng: np.random.Generator) -> Lines:
        cart = counts[:, S["add_to_cart"]]
        index = np.arange(len(sessions), dtype=np.int32)
        line_session = np.repeat(index, cart)
        product = _draw_products(world, sessions.person[line_session], rng)
        quantity = (1 + np.minimum(rng.poisson(0.35, size=len(line_session)), 5)).astype(np.int32)
        extra = counts[:, S["view_item"]] - cart
        # A visit browses one aisle: its extra views share a category drawn from the person's taste.
        browsing = np.flatnonzero(extra > 0)
        aisle = world.people.draw_categories(sessions.person[browsing], rng)
        extra_product = world.catalogue.draw_products(rng, np.repeat(aisle, extra[browsing]))
        return cls(
            cart=cart,
            first=np.r_[0, np.cumsum(cart)[:-1]].astype(np.int64),
            session=line_session,
            product=product,
            quantity=quantity,
            extra_first=np.r_[0, np.cumsum(extra)[:-1]].astype(np.int64),
            extra_product=extra_product,
        )


def _draw_products(world: World, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return world.catalogue.draw_products(rng, world.people.draw_categories(person, rng))


@dataclass(frozen=True)
class Orders:
    """Orders (paid and abandoned) of a batch, one element per session that reached checkout."""

    session: np.ndarray
    gross_cents: np.ndarray
    paid_cents: np.ndarray  # after the coupon
    item_count: np.ndarray
    main_category: np.ndarray
    category_mask: np.ndarray  # bit k set when category k is in the order
    payment: np.ndarray
    coupon: np.ndarray  # -1 for none

    @classmethod
    def build(
        cls, world: World, sessions: Sessions, counts: np.ndarray, lines: Lines, rng: np.random.Generator
    ) -> tuple[Orders, np.ndarray]:
        """The orders, and the order index of each session (-1 without one). Tops up ``lines.quantity``."""
        catalogue, people = world.catalogue, world.people
        n = len(sessions)
        has_order = np.flatnonzero(counts[:, S["checkout"]] > 0)
        order_of_session = np.full(n, -1, dtype=np.int32)
        order_of_session[has_order] = np.arange(len(has_order), dtype=np.int32)
        coupon = np.where(sessions.kind[has_order] == Kind.PURCHASE, sessions.ref[has_order], -1)
        price = catalogue.price_cents[lines.product]
        gross = np.bincount(lines.session, weights=price * lines.quantity, minlength=n).astype(np.int64)[has_order]
        threshold = np.where(coupon >= 0, catalogue.coupon_threshold_cents[np.maximum(coupon, 0)], 0)
        short = np.maximum(threshold - gross, 0)
        first_line = lines.first[has_order]
        lines.quantity[first_line] += (-(-short // price[first_line])).astype(np.int32)
        value = price * lines.quantity
        gross = np.bincount(lines.session, weights=value, minlength=n).astype(np.int64)[has_order]
        items = np.bincount(lines.session, weights=lines.quantity, minlength=n).astype(np.int64)[has_order]
        category = catalogue.category[lines.product].astype(np.int64)
        mask, top = _per_cart(lines, value, category)
        person = sessions.person[has_order]
        usual = rng.random(len(has_order)) < PREFERRED_PAYMENT_SHARE
        other = rng.integers(0, len(PAYMENT_METHODS), len(has_order))
        discount = np.where(coupon >= 0, catalogue.coupon_amount_cents[np.maximum(coupon, 0)], 0)
        orders = cls(
            session=has_order.astype(np.int32),
            gross_cents=gross,
            paid_cents=gross - discount,
            item_count=items,
            main_category=category[top[has_order]].astype(np.int8) if len(has_order) else _NO_CATEGORY,
            category_mask=mask[has_order],
            payment=np.where(usual, people.payment_pref[person], other).astype(np.int8),
            coupon=coupon.astype(np.int16),
        )
        return orders, order_of_session


_NO_CATEGORY = np.empty(0, dtype=np.int8)


def _per_cart(lines: Lines, value: np.ndarray, category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per session: the bit mask of the categories in its cart, and its line of highest value (first on ties)."""
    n = len(lines.cart)
    mask = np.zeros(n, dtype=np.int64)
    top = np.zeros(n, dtype=np.int64)
    nonempty = np.flatnonzero(lines.cart > 0)
    if not len(nonempty):
        return mask, top
    first = lines.first[nonempty]
    mask[nonempty] = np.bitwise_or.reduceat(np.left_shift(1, category), first)
    best = np.repeat(np.maximum.reduceat(value, first), lines.cart[nonempty])
    candidate = np.where(value == best, np.arange(len(value)), len(value))
    top[nonempty] = np.minimum.reduceat(candidate, first)
    return mask, top


def event_products(lines: Lines, frame: EventFrame) -> tuple[np.ndarray, np.ndarray]:
    """Product (-1 for none) and quantity of each event.

    A session views its cart lines first, then its extra products; add_to_cart and order_item follow the
    lines; shares, likes and comments are about the first viewed product.
    """
    slot, session = frame.slot, frame.session
    product = np.full(len(slot), -1, dtype=np.int32)
    quantity = np.zeros(len(slot), dtype=np.int32)
    on_line = np.flatnonzero((slot == S["add_to_cart"]) | (slot == S["order_item"]))
    line = lines.first[session[on_line]] + frame.rank(on_line)
    product[on_line], quantity[on_line] = lines.product[line], lines.quantity[line]
    # Views read one array: the cart lines, then the extra products.
    catalogue_of_views = np.concatenate([lines.product, lines.extra_product])
    viewed = np.flatnonzero(slot == S["view_item"])
    s_v, r_v = session[viewed], frame.rank(viewed)
    cart = lines.cart[s_v]
    where = np.where(r_v < cart, lines.first[s_v] + r_v, len(lines.product) + lines.extra_first[s_v] + r_v - cart)
    product[viewed] = catalogue_of_views[where]
    social = np.flatnonzero((slot >= S["share"]) & (slot <= S["comment"]))
    # The first viewed product of a session is its first cart line if it has one, else its first extra view.
    s_s = session[social]
    first_view = np.where(lines.cart[s_s] > 0, lines.first[s_s], len(lines.product) + lines.extra_first[s_s])
    product[social] = catalogue_of_views[first_view] if len(catalogue_of_views) else -1
    return product, quantity
