"""Identifiers and literals for the SQL this package writes itself.

Every user-given name (a property, an event, a project schema) reaches SQL only through :func:`ident`, which
quotes it with sqlglot and so escapes any quote inside it; every user-given value is a bound parameter or goes
through :func:`literal`. Analyses (the query layer) build whole statements as sqlglot ASTs; the loader's
statements have a fixed shape with names slotted in, and they use these two functions for every slot.
"""

from __future__ import annotations

from sqlglot import exp

DIALECT = "duckdb"


def ident(name: str) -> str:
    """``name`` as a quoted identifier, safe whatever characters it holds."""
    return exp.to_identifier(name, quoted=True).sql(DIALECT)


def qualified(schema: str, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}"


def literal(value: object) -> str:
    """A Python scalar (or list of scalars) as a SQL literal built by sqlglot."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return exp.convert(value).sql(DIALECT)
