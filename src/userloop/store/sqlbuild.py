"""Statements as sqlglot trees: the one way SQL is written outside the backend.

A statement's fixed shape is a template with ``$name`` placeholders (:func:`sql`); every name or value that
varies enters the tree as a node (a quoted identifier, a table, a literal), never as text, so nothing a user
sends can change a statement's shape, and the same tree renders for any dialect the backend speaks
(:mod:`userloop.store.dialects`). Unnamed ``?`` placeholders stay in the tree as bound parameters.

Templates are written in DuckDB's SQL (the embedded default) and parsed once (cached); each call works on a copy.

Example::

    stmt = sql("SELECT value FROM $counters WHERE name = $name", counters=table(schema, "counters"), name="person")
    session.scalar(stmt)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlglot
from sqlglot import exp

#: The dialect templates are written in.
TEMPLATE_DIALECT = "duckdb"


@functools.lru_cache(maxsize=2048)
def _template(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read=TEMPLATE_DIALECT)


def sql(template: str, **subs: Any) -> exp.Expr:
    """Parse ``template`` and put ``subs`` in place of its ``$name`` placeholders.

    A substitute is a sqlglot expression, a list of expressions (spliced in where the placeholder stands in a
    list: a select list, ``IN (…)``, ``VALUES``, a column list, function arguments), or a Python value that
    becomes a literal (:func:`literal`). A placeholder without a value is an error; ``?`` placeholders are left
    for bound parameters.
    """
    tree = _template(template).copy()
    spliced = False

    def put(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.this:
            name = node.name
            if name not in subs:
                raise KeyError(f"template placeholder ${name} has no value")
            value = subs[name]
            if isinstance(value, list) and value and all(isinstance(v, exp.Expr) for v in value):
                nonlocal spliced
                spliced = True
                marker = exp.Tuple(expressions=[v.copy() for v in value])
                marker.meta[_SPLICE] = True
                return marker
            if not isinstance(value, exp.Expr):
                return literal(value)
            # a substituted AND/OR keeps its meaning whatever surrounds the placeholder: `x AND $c` with
            # c = `a OR b` must print `x AND (a OR b)`
            return exp.paren(value.copy()) if isinstance(value, exp.Connector) else value.copy()
        return node

    tree = tree.transform(put, copy=False)
    return _splice(tree) if spliced else tree


_SPLICE = "userloop_splice"


def _splice(tree: exp.Expr) -> exp.Expr:
    """Replace each list marker by its items inside the parent's argument list."""
    for node in list(tree.find_all(exp.Tuple)):
        if not node.meta.get(_SPLICE):
            continue
        parent, key = node.parent, node.arg_key
        siblings = parent.args.get(key) if parent is not None and key else None
        if parent is None or not key or not isinstance(siblings, list):
            raise ValueError(f"a list was put where one expression is expected ({key!r}); use a single node")
        at = siblings.index(node)
        parent.set(key, [*siblings[:at], *node.expressions, *siblings[at + 1 :]])
    return tree


def literal(value: object) -> exp.Expr:
    """A Python value as a SQL literal node (datetimes become typed timestamps, lists arrays)."""
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.convert(value)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, safe whatever characters ``name`` holds."""
    return exp.column(name, table, quoted=True)


def name(text: str) -> exp.Identifier:
    """A quoted identifier (a column, schema or alias name) for a template slot."""
    return exp.to_identifier(text, quoted=True)


def table(schema: str | None, name_: str, alias: str | None = None) -> exp.Table:
    """A quoted, schema-qualified table reference."""
    return exp.table_(name_, db=schema, quoted=True, alias=alias)


def type_(sql_type: str) -> exp.DataType:
    """A column type (``VARCHAR``, ``DOUBLE``, ``VARCHAR[]`` …) as a node."""
    return exp.DataType.build(sql_type, dialect=TEMPLATE_DIALECT)


def columns(names: list[str] | tuple[str, ...], table_: str | None = None) -> list[exp.Expr]:
    """Quoted column references, for a ``$slot`` that takes a list."""
    return [col(n, table_) for n in names]


def add_column(target: exp.Table, column: str, sql_type: str) -> exp.Expr:
    """``ALTER TABLE target ADD COLUMN "column" sql_type`` (a type cannot stand in a template's slot)."""
    definition = exp.ColumnDef(this=name(column), kind=type_(sql_type))
    return exp.Alter(this=target, kind="TABLE", actions=[definition])


_FROZEN = "userloop_frozen"


def freeze(tree: exp.Expr) -> exp.Expr:
    """Mark a statement that is built once and run many times (a hot path caches it) as final: a session then
    renders it once and keeps the text on the tree. A frozen tree must not be changed; a copy of it is not
    frozen."""
    tree.meta[_FROZEN] = (id(tree), {})
    return tree


def rendered(tree: exp.Expr, dialect: str, render: Callable[[exp.Expr, str], str]) -> str:
    """``render(tree, dialect)``, computed once per dialect for a :func:`frozen <freeze>` tree."""
    frozen = tree.meta.get(_FROZEN)
    if frozen is None or frozen[0] != id(tree):
        return render(tree, dialect)
    texts: dict[str, str] = frozen[1]
    text = texts.get(dialect)
    if text is None:
        text = texts[dialect] = render(tree, dialect)
    return text
