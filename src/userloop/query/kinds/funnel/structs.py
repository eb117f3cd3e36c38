"""Struct and list expressions as sqlglot nodes: attempts travel through the passes as DuckDB structs (a chain's
payload, a person's best attempt), compared whole by ``min``/``greatest``."""

from __future__ import annotations

from sqlglot import exp


def field(struct: exp.Expr, name: str) -> exp.Expr:
    """``struct_extract(struct, 'name')``."""
    return exp.func("struct_extract", struct.copy(), exp.Literal.string(name))


def struct(fields: list[tuple[str, exp.Expr]]) -> exp.Expr:
    """``{'name': value, …}``."""
    return exp.Struct(
        expressions=[exp.PropertyEQ(this=exp.to_identifier(name), expression=value) for name, value in fields]
    )


def greatest(items: list[exp.Expr]) -> exp.Expr:
    """``greatest(…)`` of ``items``; the item itself when there is one."""
    if len(items) == 1:
        return items[0]
    return exp.func("greatest", *items)
