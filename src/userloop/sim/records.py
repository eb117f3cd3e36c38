"""Canonical record tables for events (``track``) and identity bindings (``track_signup``).

The tables follow the loader's contract (``userloop.ingest.load_table``): a ``type`` column, the canonical
columns (``event``, ``distinct_id``, ``is_login_id``, ``original_id``, ``time``, ``event_id``, ``lib``) and one
column per property, null where a record does not set it. A property keeps one Arrow type everywhere.
Event properties name products ``product_id`` because ``item_id`` is reserved for item records, and a
coupon's value ``coupon_amount`` (``amount`` is the coupon item's own property).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from userloop.sim.behaviour import SERVER_KINDS, Kind, Sessions
from userloop.sim.catalogue import KEYWORDS
from userloop.sim.columns import (
    constant_of,
    labels,
    numbers,
    sparse_labels,
    sparse_numbers,
    sparse_strings,
    string_lists,
    vocabulary,
)
from userloop.sim.config import CHANNELS
from userloop.sim.geography import CATEGORIES
from userloop.sim.identity import Ids, counter_ids
from userloop.sim.layout import EventFrame
from userloop.sim.slots import SLOTS
from userloop.sim.world import AGE_BANDS, GENDERS, MODELS, OS_NAMES, PAYMENT_METHODS, World, stream

EVENT_KEY = 0x5EED_E7E7
ORDER_KEY = 0x0DE5_0DE5
LIBS = ("iOS", "Android", "python")
NETWORKS = ("WIFI", "4G", "5G", "3G")
NETWORK_P = (0.62, 0.22, 0.14, 0.02)
PAGES = ("home", "category", "promotion", "store", "cart", "mine", "orders", "coupon_center", "search_result",
         "check_in", "register", "login")  # fmt: skip
_OPENING_PAGE = {Kind.PUSH_OPEN: "promotion", Kind.CHECK_IN: "check_in", Kind.REGISTER: "register",
                 Kind.REG_INLINE: "register", Kind.SECOND_DEVICE: "login"}  # fmt: skip
#: The page a session of each kind opens on (the home page unless said otherwise).
_FIRST_PAGE = np.array([PAGES.index(_OPENING_PAGE.get(kind, "home")) for kind in Kind])
REGISTER_METHODS = ("phone", "wechat")
LOGIN_METHODS = ("phone", "wechat", "password")
RELEASE_EVERY_DAYS = 28
_KEYWORD_FIRST = np.cumsum([0] + [len(k) for k in KEYWORDS[:-1]])
_KEYWORD_COUNT = np.array([len(k) for k in KEYWORDS])


@dataclass(frozen=True)
class Vocabularies:
    """Every small set of display values, as Arrow string arrays: the dictionaries of the label columns."""

    events: pa.Array
    libs: pa.Array
    os: pa.Array
    models: pa.Array
    versions: pa.Array
    networks: pa.Array
    cities: pa.Array
    pages: pa.Array
    keywords: pa.Array
    products: pa.Array
    categories: pa.Array
    payments: pa.Array
    stores: pa.Array
    coupons: pa.Array
    push_ids: pa.Array
    campaigns: pa.Array
    register_methods: pa.Array
    login_methods: pa.Array
    communities: pa.Array
    channels: pa.Array
    genders: pa.Array
    age_bands: pa.Array

    @classmethod
    def of(cls, world: World) -> Vocabularies:
        versions = (world.calendar.days + 2 * RELEASE_EVERY_DAYS) // RELEASE_EVERY_DAYS + 1
        c = world.campaigns
        return cls(
            events=vocabulary(SLOTS),
            libs=vocabulary(LIBS),
            os=vocabulary(OS_NAMES),
            models=vocabulary([m[1] for m in MODELS]),
            versions=vocabulary([f"6.{k}.0" for k in range(versions)]),
            networks=vocabulary(NETWORKS),
            cities=vocabulary(world.geography.city_names),
            pages=vocabulary(PAGES),
            keywords=vocabulary([w for words in KEYWORDS for w in words]),
            products=vocabulary(world.catalogue.product_ids),
            categories=vocabulary(CATEGORIES),
            payments=vocabulary(PAYMENT_METHODS),
            stores=vocabulary(world.geography.store_ids),
            coupons=vocabulary(world.catalogue.coupon_ids),
            push_ids=vocabulary(c.push_ids),
            campaigns=vocabulary(c.push_names + c.coupon_names),
            register_methods=vocabulary(REGISTER_METHODS),
            login_methods=vocabulary(LOGIN_METHODS),
            communities=vocabulary(world.geography.community_names),
            channels=vocabulary(CHANNELS),
            genders=vocabulary(GENDERS),
            age_bands=vocabulary(AGE_BANDS),
        )


def device_models(world: World, sessions: Sessions) -> np.ndarray:
    """``$model`` index of each session's device."""
    people = world.people
    return np.where(sessions.device == 0, people.model[sessions.person], people.second_model[sessions.person])


def app_versions(world: World, person: np.ndarray, time_ms: np.ndarray) -> np.ndarray:
    """Version index each person runs at ``time_ms``: a release every four weeks, installed after a lag."""
    cal = world.calendar
    day = (time_ms - cal.start_ms) // 86_400_000 - world.people.update_lag_days[person]
    return np.maximum((day + 2 * RELEASE_EVERY_DAYS) // RELEASE_EVERY_DAYS, 0)


_MODEL_OS = np.array([m[0] for m in MODELS], dtype=np.int8)
_MODEL_WIDTH = np.array([m[2] for m in MODELS], dtype=np.int64)


def event_table(world: World, vocab: Vocabularies, frame: EventFrame, signup_ms: np.ndarray, chunk: int) -> pa.Table:
    """The ``track`` records of a batch of sessions."""
    n = len(frame)
    sessions, slot, session = frame.sessions, frame.slot, frame.session
    rng = stream(world.config.seed, "records", chunk)
    distinct_id, is_login = world.ids.session_events(
        sessions.person, sessions.device, session, frame.time_ms, signup_ms
    )
    # Device properties are per session; server-side records (pushes and coupons sent) have none.
    server = np.isin(sessions.kind, SERVER_KINDS)
    model = device_models(world, sessions)
    os_ = _MODEL_OS[model]
    no_device = server[session]
    per_event = {
        "$os": (vocab.os, os_),
        "$model": (vocab.models, model),
        "$app_version": (vocab.versions, app_versions(world, sessions.person, sessions.start_ms)),
        "$network_type": (vocab.networks, rng.choice(len(NETWORKS), size=len(sessions), p=NETWORK_P)),
        "$city": (vocab.cities, world.people.city[sessions.person]),
    }
    columns: dict[str, pa.Array] = {
        "type": constant_of("track", n),
        "event": labels(vocab.events, slot),
        "distinct_id": distinct_id,
        "is_login_id": pa.array(is_login),
        "time": pa.array(frame.time_ms, type=pa.int64()),
        "event_id": counter_ids(world.config.seed ^ EVENT_KEY, chunk, n),
        "lib": labels(vocab.libs, np.where(server, 2, np.minimum(os_, 1)).astype(np.int32)[session]),
    }
    for name, (words, value) in per_event.items():
        columns[name] = labels(words, value.astype(np.int32)[session], no_device)
    columns["$screen_width"] = numbers(_MODEL_WIDTH[model][session], no_device, pa.int64())
    columns |= _session_columns(world, vocab, frame, rng)
    columns |= _product_columns(world, vocab, frame)
    columns |= _order_columns(world, vocab, frame, chunk)
    columns |= _campaign_columns(world, vocab, frame)
    return pa.table(columns)


def _merged(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, values) pairs of several slots, merged into ascending row order."""
    rows = np.concatenate([r for r, _ in parts])
    values = np.concatenate([v for _, v in parts])
    order = np.argsort(rows, kind="stable")
    return rows[order], values[order]


def _session_columns(world: World, vocab: Vocabularies, frame: EventFrame, rng: np.random.Generator) -> dict:
    n, session, sessions = len(frame), frame.session, frame.sessions
    starts = frame.at("app_start")
    first_time = np.isin(sessions.kind[session[starts]], (Kind.INSTALL, Kind.SECOND_DEVICE))
    views = frame.at("page_view")
    other_page = rng.integers(0, PAGES.index("check_in"), size=len(views))
    page = np.where(frame.rank(views) == 0, _FIRST_PAGE[sessions.kind[session[views]]], other_page)
    searches = frame.at("search")
    category = world.people.draw_categories(sessions.person[session[searches]], rng)
    keyword = _KEYWORD_FIRST[category] + rng.integers(0, 1 << 30, size=len(searches)) % _KEYWORD_COUNT[category]
    checks = frame.at("check_in")
    weekend = world.calendar.weekday[(frame.time_ms[checks] - world.calendar.start_ms) // 86_400_000] >= 5
    registers, logins = frame.at("register"), frame.at("login")
    return {
        "$is_first_time": sparse_numbers(n, starts, first_time, pa.bool_()),
        "page": sparse_labels(vocab.pages, n, views, page),
        "keyword": sparse_labels(vocab.keywords, n, searches, keyword),
        "points": sparse_numbers(n, checks, np.where(weekend, 10, 5), pa.int64()),
        "register_method": sparse_labels(vocab.register_methods, n, registers, rng.random(len(registers)) < 0.3),
        "login_method": sparse_labels(vocab.login_methods, n, logins, rng.integers(0, 3, size=len(logins))),
    }


def _product_columns(world: World, vocab: Vocabularies, frame: EventFrame) -> dict:
    # Dense: about half the events are about a product.
    catalogue, product = world.catalogue, frame.product
    none = product < 0
    index = product.astype(np.intp)
    lines = frame.at("add_to_cart", "order_item")
    return {
        "product_id": labels(vocab.products, product, none),
        "category": labels(vocab.categories, catalogue.category.astype(np.int32)[index], none),
        "price": numbers(catalogue.price_yuan[index], none, pa.float64()),
        "quantity": sparse_numbers(len(frame), lines, frame.quantity[lines], pa.int64()),
    }


def _order_columns(world: World, vocab: Vocabularies, frame: EventFrame, chunk: int) -> dict:
    n, orders = len(frame), frame.orders
    with_order = frame.at("checkout", "confirm_payment", "enter_password", "order_paid", "order_item", "coupon_used")
    amounts = frame.at("checkout", "confirm_payment", "enter_password", "order_paid")
    paying = frame.at("confirm_payment", "enter_password", "order_paid")
    counted = frame.at("checkout", "order_paid")
    paid = frame.at("order_paid")
    o_paid = frame.order[paid]
    bits = (orders.category_mask[o_paid][:, None] >> np.arange(len(CATEGORIES))) & 1
    person = frame.sessions.person[frame.session[paid]]
    order_ids = counter_ids(world.config.seed ^ ORDER_KEY, chunk, len(orders.session), b"O")
    return {
        "order_id": sparse_strings(order_ids, n, with_order, frame.order[with_order]),
        "order_amount": sparse_numbers(n, amounts, orders.paid_cents[frame.order[amounts]] / 100.0, pa.float64()),
        "item_count": sparse_numbers(n, counted, orders.item_count[frame.order[counted]], pa.int64()),
        "main_category": sparse_labels(vocab.categories, n, paid, orders.main_category[o_paid]),
        "categories": string_lists(vocab.categories, n, paid, bits.sum(axis=1), np.nonzero(bits)[1]),
        "coupon_used": sparse_numbers(n, paid, orders.coupon[o_paid] >= 0, pa.bool_()),
        "payment_method": sparse_labels(vocab.payments, n, paying, orders.payment[frame.order[paying]]),
        "store_id": sparse_labels(vocab.stores, n, paid, world.people.store[person]),
    }


def _campaign_columns(world: World, vocab: Vocabularies, frame: EventFrame) -> dict:
    n, sessions, session = len(frame), frame.sessions, frame.session
    received, used = frame.at("coupon_received"), frame.at("coupon_used")
    coupon_at, coupon = _merged(
        (received, sessions.ref[session[received]]), (used, frame.orders.coupon[frame.order[used]].astype(np.int32))
    )
    pushes = frame.at("push_received", "push_clicked")
    n_push = len(world.campaigns.push_ids)
    campaign_at, campaign = _merged(
        (pushes, sessions.ref[session[pushes]]), (received, n_push + sessions.ref2[session[received]])
    )
    amount = world.catalogue.coupon_amount_cents[coupon] / 100.0
    return {
        "coupon_id": sparse_labels(vocab.coupons, n, coupon_at, coupon),
        "coupon_amount": sparse_numbers(n, coupon_at, amount, pa.float64()),
        "push_id": sparse_labels(vocab.push_ids, n, pushes, sessions.ref[session[pushes]]),
        "campaign": sparse_labels(vocab.campaigns, n, campaign_at, campaign),
    }


def signup_table(
    world: World, vocab: Vocabularies, person: np.ndarray, device: np.ndarray, time_ms: np.ndarray, chunk: int
) -> pa.Table:
    """``track_signup`` records: each binds a device's anonymous id to the person's login id."""
    ids: Ids = world.ids
    n = len(person)
    model = np.where(device == 0, world.people.model[person], world.people.second_model[person])
    os_ = np.array([m[0] for m in MODELS], dtype=np.int8)[model]
    return pa.table(
        {
            "type": constant_of("track_signup", n),
            "event": constant_of("$SignUp", n),
            "distinct_id": ids.strings(ids.login_index(person)),
            "is_login_id": pa.array(np.ones(n, dtype=bool)),
            "original_id": ids.strings(ids.device_index(person, device)),
            "time": pa.array(time_ms, type=pa.int64()),
            "event_id": counter_ids(world.config.seed ^ EVENT_KEY, chunk, n, stream=1),
            "lib": labels(vocab.libs, np.minimum(os_, 1)),
            "$os": labels(vocab.os, os_),
            "$model": labels(vocab.models, model),
            "$app_version": labels(vocab.versions, app_versions(world, person, time_ms)),
        }
    )
