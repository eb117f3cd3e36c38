"""Profile records (``profile_set``, ``profile_set_once``, ``profile_increment``, ``profile_append``) and item
records (``item_set`` for products and coupons).

A profile is written when something about the person becomes known: the install (anonymous id: location,
channel, device), the registration (login id: demographics, ``registered_at``), an uninstall
(``app_uninstalled`` = true), each paid order (``order_count`` and ``total_spend`` increments) and a few
milestone orders (the order's main category appended to ``favorite_categories``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from userloop.sim.behaviour import Kind
from userloop.sim.columns import (
    TIMESTAMP_MS,
    constant_of,
    labels,
    sparse_labels,
    sparse_numbers,
    string_lists,
    vocabulary,
)
from userloop.sim.geography import CATEGORIES
from userloop.sim.layout import EventFrame
from userloop.sim.records import Vocabularies
from userloop.sim.world import World

#: Orders whose main category is appended to ``favorite_categories``.
APPEND_AT_ORDER = (1, 5, 10, 20)


@dataclass(frozen=True)
class ProfileChanges:
    """Who became known, registered or left during a chunk, with the time of each change."""

    install_person: np.ndarray
    reg_person: np.ndarray
    reg_ms: np.ndarray
    gone_person: np.ndarray
    gone_ms: np.ndarray


def _ids(world: World, person: np.ndarray, time_ms: np.ndarray, signup_ms: np.ndarray) -> dict[str, pa.Array]:
    index, is_login = world.ids.resolve(person, np.zeros(len(person), dtype=np.int8), time_ms, signup_ms)
    return {"distinct_id": world.ids.strings(index), "is_login_id": pa.array(is_login)}


def profile_tables(
    world: World, vocab: Vocabularies, changes: ProfileChanges, frame: EventFrame, signup_ms: np.ndarray
) -> list[pa.Table]:
    """The chunk's profile records, one table per record type, in time order; empty tables are left out."""
    tables = [
        _profile_set(world, vocab, changes, signup_ms),
        _profile_set_once(world, vocab, changes, signup_ms),
        *_order_profiles(world, vocab, frame, signup_ms),
    ]
    return [t for t in tables if t.num_rows]


def _profile_set(world: World, vocab: Vocabularies, changes: ProfileChanges, signup_ms: np.ndarray) -> pa.Table:
    people = world.people
    install = changes.install_person
    person = np.concatenate([install, changes.reg_person, changes.gone_person])
    time_ms = np.concatenate([people.install_ms[install], changes.reg_ms, changes.gone_ms])
    source = np.repeat([0, 1, 2], [len(install), len(changes.reg_person), len(changes.gone_person)])
    order = np.lexsort((source, time_ms))
    person, time_ms, source = person[order], time_ms[order], source[order]
    n = len(person)
    known = np.flatnonzero(source <= 1)
    reg = np.flatnonzero(source == 1)
    flag = np.flatnonzero(source != 1)
    p_known, p_reg = person[known], person[reg]
    return pa.table(
        {
            "type": constant_of("profile_set", n),
            **_ids(world, person, time_ms, signup_ms),
            "time": pa.array(time_ms, type=pa.int64()),
            "city": sparse_labels(vocab.cities, n, known, people.city[p_known]),
            "community": sparse_labels(vocab.communities, n, known, people.community[p_known]),
            "store_id": sparse_labels(vocab.stores, n, known, people.store[p_known]),
            "channel": sparse_labels(vocab.channels, n, known, people.channel[p_known]),
            "$os": sparse_labels(vocab.os, n, known, people.os[p_known]),
            "$model": sparse_labels(vocab.models, n, known, people.model[p_known]),
            "push_enabled": sparse_numbers(n, known, people.push_enabled[p_known], pa.bool_()),
            "app_uninstalled": sparse_numbers(n, flag, source[flag] == 2, pa.bool_()),
            "gender": sparse_labels(vocab.genders, n, reg, people.gender[p_reg]),
            "age_band": sparse_labels(vocab.age_bands, n, reg, people.age_band[p_reg]),
            "birthday": sparse_numbers(n, reg, people.birthday[p_reg], pa.int32()).cast(pa.date32()),
            "registered_at": sparse_numbers(n, reg, time_ms[reg], TIMESTAMP_MS),
        }
    )


def _profile_set_once(world: World, vocab: Vocabularies, changes: ProfileChanges, signup_ms: np.ndarray) -> pa.Table:
    people = world.people
    person = changes.install_person
    time_ms = people.install_ms[person]
    n = len(person)
    every = np.arange(n)
    return pa.table(
        {
            "type": constant_of("profile_set_once", n),
            **_ids(world, person, time_ms, signup_ms),
            "time": pa.array(time_ms, type=pa.int64()),
            "first_channel": labels(vocab.channels, people.channel[person]),
            "first_visit_time": sparse_numbers(n, every, time_ms, TIMESTAMP_MS),
        }
    )


def _order_profiles(world: World, vocab: Vocabularies, frame: EventFrame, signup_ms: np.ndarray) -> list[pa.Table]:
    sessions, orders = frame.sessions, frame.orders
    bought = np.flatnonzero(sessions.kind[orders.session] == Kind.PURCHASE)
    session = orders.session[bought]
    order = np.argsort(sessions.anchor_ms[session], kind="stable")
    bought, session = bought[order], session[order]
    person, time_ms = sessions.person[session], sessions.anchor_ms[session]
    n = len(person)
    increment = pa.table(
        {
            "type": constant_of("profile_increment", n),
            **_ids(world, person, time_ms, signup_ms),
            "time": pa.array(time_ms, type=pa.int64()),
            "order_count": pa.array(np.ones(n, dtype=np.int64)),
            "total_spend": pa.array(orders.paid_cents[bought] / 100.0, type=pa.float64()),
        }
    )
    milestone = np.flatnonzero(np.isin(sessions.ref2[session], APPEND_AT_ORDER))
    m = len(milestone)
    append = pa.table(
        {
            "type": constant_of("profile_append", m),
            **_ids(world, person[milestone], time_ms[milestone], signup_ms),
            "time": pa.array(time_ms[milestone], type=pa.int64()),
            "favorite_categories": string_lists(
                vocab.categories, m, np.arange(m), np.ones(m, dtype=np.int32), orders.main_category[bought[milestone]]
            ),
        }
    )
    return [increment, append]


def item_tables(world: World) -> list[pa.Table]:
    """``item_set`` records of the catalogue (item_type "product") and of the coupons (item_type "coupon")."""
    catalogue = world.catalogue
    time_ms = world.calendar.start_ms
    n, k = catalogue.size, len(catalogue.coupon_ids)
    products = pa.table(
        {
            "type": constant_of("item_set", n),
            "item_type": constant_of("product", n),
            "item_id": vocabulary(catalogue.product_ids),
            "time": pa.array(np.full(n, time_ms, dtype=np.int64)),
            "name": _names(catalogue.names),
            "category": labels(vocabulary(CATEGORIES), catalogue.category),
            "price": pa.array(catalogue.price_cents / 100.0, type=pa.float64()),
            "brand": _names(catalogue.brands),
            "is_imported": pa.array(catalogue.is_imported, type=pa.bool_()),
        }
    )
    coupons = pa.table(
        {
            "type": constant_of("item_set", k),
            "item_type": constant_of("coupon", k),
            "item_id": vocabulary(catalogue.coupon_ids),
            "time": pa.array(np.full(k, time_ms, dtype=np.int64)),
            "name": _names(catalogue.coupon_names),
            "amount": pa.array(catalogue.coupon_amount_cents / 100.0, type=pa.float64()),
            "threshold": pa.array(catalogue.coupon_threshold_cents / 100.0, type=pa.float64()),
        }
    )
    return [products, coupons]


def _names(values: tuple[str, ...]) -> pa.DictionaryArray:
    """Display strings as labels, like every other string property."""
    return labels(vocabulary(values), np.arange(len(values)))
