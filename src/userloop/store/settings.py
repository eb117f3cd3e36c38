"""Project settings about the project's own data, kept in the project's schema beside its property registry.

Today one: ``money_property``, the NUMBER event property that holds a purchase's amount (default
``order_amount``). The user models, the core-metrics dashboard's GMV panel, the starter tags' spending and the
user 360 orders read it. It lives in the event store, next to the registry it must name a property of, so a
setting and the properties it refers to are never in two databases that could disagree.

The ``settings`` table is made on the first change; a project that never changed a setting (or a workspace made
before settings existed) has none and reads the defaults, also on a read-only store.

Example::

    money_property(ws.project("default"))                   # "order_amount"
    set_money_property(ws.project("default"), "paid_amount")  # checked against the registry
"""

from __future__ import annotations

import difflib

from userloop.core.errors import UserloopError
from userloop.schema.types import PropertyType
from userloop.store.backend import ProjectReader
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import sql

__all__ = ["DEFAULTS", "MONEY_PROPERTY", "money_property", "read_setting", "set_money_property", "write_setting"]

TABLE = "settings"
MONEY_PROPERTY = "money_property"
#: Every setting and its value when the project never set it.
DEFAULTS: dict[str, str] = {MONEY_PROPERTY: "order_amount"}


def _has_table(project: ProjectReader) -> bool:
    query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = $schema AND table_name = $name"
    return bool(project.scalar(sql(query, schema=project.schema, name=TABLE)))


def read_setting(project: ProjectReader, name: str) -> str:
    """The project's value of setting ``name`` (its default when never set)."""
    if name not in DEFAULTS:
        raise KeyError(name)
    if not _has_table(project):
        return DEFAULTS[name]
    rows = project.fetchall(sql("SELECT value FROM $t WHERE name = $name", t=project.ref(TABLE), name=name))
    return str(rows[0][0]) if rows else DEFAULTS[name]


def write_setting(project: ProjectStore, name: str, value: str) -> None:
    """Store ``value`` for setting ``name`` (the caller validated it)."""
    if name not in DEFAULTS:
        raise KeyError(name)
    table = project.ref(TABLE)
    with project.atomic() as s:
        s.execute(sql("CREATE TABLE IF NOT EXISTS $t (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)", t=table))
        upsert = "INSERT INTO $t VALUES ($name, $value) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        s.execute(sql(upsert, t=table, name=name, value=value))


def money_property(project: ProjectReader) -> str:
    """The NUMBER event property holding a purchase's amount (``order_amount`` unless the project changed it)."""
    return read_setting(project, MONEY_PROPERTY)


def check_money_property(project: ProjectStore, name: str) -> str:
    """``name`` if it is a NUMBER event property of the project, else ``money_property_invalid`` with a hint."""
    events = project.properties("events")
    numeric = sorted(n for n, t in events.items() if t is PropertyType.NUMBER)
    if events.get(name) is PropertyType.NUMBER:
        return name
    if name in events:
        problem = f"event property {name!r} is {events[name].value}, not NUMBER; an amount must be numeric"
    else:
        problem = f"the project has no event property {name!r}"
    close = difflib.get_close_matches(name, numeric, n=3)
    choices = close or numeric[:10]
    hint = (
        f"choose a numeric event property: {', '.join(choices)}" if choices else "import purchases with an amount first"
    ) + " / 请选择数值型事件属性"
    raise UserloopError(
        f"{problem} / 金额属性必须是已存在的数值型事件属性", code="money_property_invalid", field=MONEY_PROPERTY,
        hint=hint,
    )  # fmt: skip


def set_money_property(project: ProjectStore, name: str) -> str:
    """Check ``name`` (:func:`check_money_property`) and make it the project's money property."""
    write_setting(project, MONEY_PROPERTY, check_money_property(project, name))
    return name
