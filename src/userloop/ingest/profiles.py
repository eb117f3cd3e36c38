"""Profile and item operations with Sensors Analytics semantics.

Applied in record order (time, then input order) to the persons or items a batch touches: their current rows
are read once, changed in memory, and written back in one statement. Profile operations are rare next to
events (one per sign-up or profile change), so this path favours exact semantics over raw speed.

- ``profile_set``: set the given properties. ``profile_set_once``: set only those not yet set.
- ``profile_increment``: add to a NUMBER property (unset counts as 0).
- ``profile_append``: append to a LIST property. ``profile_unset``: clear the named properties.
- ``profile_delete``: clear the profile; the person, their identities and events remain.
- ``item_set``: create an item or set the given properties. ``item_delete``: delete the item.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from userloop.schema.types import PropertyType
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.sqlbuild import columns, sql

_CORE = ("user_id", "type", "_keys")


def apply_profile_ops(
    project: ProjectStore, session: DuckSession, ops: pa.Table, types: dict[str, PropertyType], now_ms: int
) -> None:
    """Apply ``ops`` (columns user_id, type, _keys, then one per property) to the users table."""
    users = project.ref("users")
    ids = sorted(set(ops.column("user_id").to_pylist()))
    session.register("_ul_pids", pa.table({"user_id": ids}))
    current = session.arrow(sql("SELECT * FROM $users SEMI JOIN _ul_pids USING (user_id)", users=users))
    session.unregister("_ul_pids")
    all_props = list(project.properties("users"))
    rows = {r["user_id"]: r for r in current.to_pylist()}
    names = [n for n in ops.column_names if n not in _CORE]
    for op in ops.to_pylist():
        row = rows[op["user_id"]]
        _apply(row, op, names, all_props, types)
    _write_back(session, users, current.schema, list(rows.values()), now_ms)


def _apply(
    row: dict[str, Any], op: dict[str, Any], names: list[str], all_props: list[str], types: dict[str, PropertyType]
) -> None:
    kind = op["type"]
    given = {n: op[n] for n in names if op[n] is not None}
    if kind == "profile_set":
        row.update(given)
    elif kind == "profile_set_once":
        for n, v in given.items():
            if row.get(n) is None:
                row[n] = v
    elif kind == "profile_increment":
        for n, v in given.items():
            row[n] = (row.get(n) or 0) + v
    elif kind == "profile_append":
        for n, v in given.items():
            row[n] = list(row.get(n) or []) + list(v)
    elif kind == "profile_unset":
        for n in op["_keys"] or []:
            if n in row and n in all_props:
                row[n] = None
    elif kind == "profile_delete":
        for n in all_props:
            row[n] = None


def apply_item_ops(project: ProjectStore, session: DuckSession, ops: pa.Table, now_ms: int) -> None:
    """Apply ``item_set`` / ``item_delete`` records (columns item_type, item_id, type, properties…)."""
    items = project.ref("items")
    keys = sorted({(r["item_type"], r["item_id"]) for r in ops.select(["item_type", "item_id"]).to_pylist()})
    key_table = pa.table({"item_type": [k[0] for k in keys], "item_id": [k[1] for k in keys]})
    session.register("_ul_keys", key_table)
    current = session.arrow(sql("SELECT * FROM $items SEMI JOIN _ul_keys USING (item_type, item_id)", items=items))
    session.unregister("_ul_keys")
    rows: dict[tuple[str, str], dict[str, Any] | None] = {
        (r["item_type"], r["item_id"]): r for r in current.to_pylist()
    }
    names = [n for n in ops.column_names if n not in ("item_type", "item_id", "type")]
    for op in ops.to_pylist():
        key = (op["item_type"], op["item_id"])
        if op["type"] == "item_delete":
            rows[key] = None
            continue
        row = rows.get(key) or {"item_type": key[0], "item_id": key[1]}
        row.update({n: op[n] for n in names if op[n] is not None})
        rows[key] = row
    session.register("_ul_keys", key_table)
    session.execute(
        sql("DELETE FROM $items WHERE (item_type, item_id) IN (SELECT (item_type, item_id) FROM _ul_keys)", items=items)
    )
    session.unregister("_ul_keys")
    live = [r for r in rows.values() if r is not None]
    _insert(session, items, current.schema, live, now_ms)


def _write_back(
    session: DuckSession, target: exp.Table, schema: pa.Schema, rows: list[dict[str, Any]], now_ms: int
) -> None:
    session.register("_ul_keys", pa.table({"user_id": [r["user_id"] for r in rows]}))
    session.execute(sql("DELETE FROM $t WHERE user_id IN (SELECT user_id FROM _ul_keys)", t=target))
    session.unregister("_ul_keys")
    _insert(session, target, schema, rows, now_ms)


def _insert(
    session: DuckSession, target: exp.Table, schema: pa.Schema, rows: list[dict[str, Any]], now_ms: int
) -> None:
    if not rows:
        return
    for r in rows:
        r["updated_at"] = None
    data = pa.Table.from_pylist(rows, schema=schema)
    session.register("_ul_rows", data)
    cols = columns([c for c in schema.names if c != "updated_at"])
    stmt = sql(
        "INSERT INTO $t ($cols, updated_at) SELECT $cols, make_timestamp(? * 1000) FROM _ul_rows", t=target, cols=cols
    )
    session.execute(stmt, [now_ms])
    session.unregister("_ul_rows")
