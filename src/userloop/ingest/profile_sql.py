"""Profile operations in bulk, set-based.

Within one batch, when every property a person's operations touch is touched by one kind of operation only
(the usual case: sign-up data by ``profile_set``, counters by ``profile_increment``, lists by
``profile_append``), the fold of the operations in record order has a closed form per (person, property):

- set: the last value; set_once: the stored value, else the first value; increment: stored (or 0) + sum;
  append: stored (or []) ++ values in order; unset: NULL; delete (alone): every property NULL.

Those persons are updated with one aggregate and one ``UPDATE``. Persons whose operations mix kinds on one
property (``set`` then ``increment``, or ``delete`` with anything) are returned, to be folded one operation at a
time by :func:`userloop.ingest.profiles.apply_profile_ops`.
"""

from __future__ import annotations

from userloop.schema.types import PropertyType
from userloop.store.duck import ProjectStore
from userloop.store.sqltext import ident, literal

OPS = "_ul_pops"
AGG = "_ul_pagg"


def apply_simple_ops(project: ProjectStore, types: dict[str, PropertyType], now_ms: int) -> str:
    """Apply the operations in temp table ``OPS`` (user_id, type, time, _row, _keys, properties…) for persons
    whose operations do not mix kinds on a property; returns SQL selecting the other persons' user_ids."""
    con = project.con
    mixed = _mixed_persons(list(types))
    aggregates = ["bool_or(type = 'profile_delete') AS _delete"]
    for name, ptype in types.items():
        aggregates += _aggregates(name, ptype)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {AGG} AS SELECT user_id, {', '.join(aggregates)} "
        f"FROM {OPS} WHERE user_id NOT IN ({mixed}) GROUP BY user_id"
    )
    users = project.table("users")
    all_props = list(project.properties("users"))
    sets = [f"{ident(n)} = {_new_value(n, types.get(n))}" for n in all_props]
    sets.append(f"updated_at = make_timestamp({now_ms} * 1000)")
    con.execute(f"UPDATE {users} AS u SET {', '.join(sets)} FROM {AGG} a WHERE u.user_id = a.user_id")
    con.execute(f"DROP TABLE {AGG}")
    return mixed


def _mixed_persons(names: list[str]) -> str:
    """SQL for persons whose operations need the one-by-one fold."""
    parts = [
        f"SELECT user_id FROM {OPS} GROUP BY user_id "
        "HAVING bool_or(type = 'profile_delete') AND bool_or(type <> 'profile_delete')"
    ]
    for name in names:
        touches = f"({ident(name)} IS NOT NULL OR (type = 'profile_unset' AND list_contains(_keys, {literal(name)})))"
        parts.append(f"SELECT user_id FROM {OPS} WHERE {touches} GROUP BY user_id HAVING count(DISTINCT type) > 1")
    return " UNION ".join(parts)


def _aggregates(name: str, ptype: PropertyType) -> list[str]:
    col = ident(name)
    order = "ORDER BY time NULLS LAST, _row"
    out = [
        f"arg_max({col}, [coalesce(time, 9223372036854775807), _row]) FILTER (WHERE type = 'profile_set' "
        f"AND {col} IS NOT NULL) AS {ident(name + '__set')}",
        f"arg_min({col}, [coalesce(time, 9223372036854775807), _row]) FILTER (WHERE type = 'profile_set_once' "
        f"AND {col} IS NOT NULL) AS {ident(name + '__once')}",
        f"bool_or(type = 'profile_unset' AND list_contains(_keys, {literal(name)})) AS {ident(name + '__unset')}",
    ]
    if ptype is PropertyType.NUMBER:
        out.append(f"sum({col}) FILTER (WHERE type = 'profile_increment') AS {ident(name + '__inc')}")
    if ptype is PropertyType.LIST:
        out.append(
            f"flatten(list({col} {order}) FILTER (WHERE type = 'profile_append' AND {col} IS NOT NULL)) "
            f"AS {ident(name + '__app')}"
        )
    return out


def _new_value(name: str, ptype: PropertyType | None) -> str:
    col = f"u.{ident(name)}"
    if ptype is None:  # a property this batch does not carry: only a delete touches it
        return f"CASE WHEN a._delete THEN NULL ELSE {col} END"

    def a(suffix: str) -> str:
        return f"a.{ident(name + '__' + suffix)}"

    whens = [
        "WHEN a._delete THEN NULL",
        f"WHEN {a('unset')} THEN NULL",
        f"WHEN {a('set')} IS NOT NULL THEN {a('set')}",
    ]
    if ptype is PropertyType.NUMBER:
        whens.append(f"WHEN {a('inc')} IS NOT NULL THEN coalesce({col}, 0) + {a('inc')}")
    if ptype is PropertyType.LIST:
        whens.append(f"WHEN {a('app')} IS NOT NULL THEN list_concat(coalesce({col}, []), {a('app')})")
    return f"CASE {' '.join(whens)} ELSE coalesce({col}, {a('once')}) END"
