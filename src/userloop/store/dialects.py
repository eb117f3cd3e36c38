"""Per-dialect rendering: one statement tree, the SQL each backend runs.

sqlglot knows most functions in every dialect and transpiles them itself (``date_trunc``, ``count(DISTINCT)``,
casts). What it does not know it keeps as an *anonymous* call and prints verbatim, which is right for the
dialect the template was written in (DuckDB) and wrong anywhere else. Each dialect therefore has a table of
functions: for every DuckDB function sqlglot passes through untranslated, either the dialect has it under the
same name (listed in ``native``), or ``rewrite`` builds the dialect's equivalent from the arguments.

:func:`unportable` lists what a tree uses that a dialect cannot run; the snapshot test renders every snapshot
statement for DuckDB and ClickHouse and fails on any name it returns, so a new DuckDB-only function in ``query/``,
``profile/`` or ``models/`` is seen the day it is written, not the day the ClickHouse backend runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

Rewrite = Callable[[list[exp.Expr]], exp.Expr]


@dataclass(frozen=True)
class Dialect:
    """How one backend spells functions sqlglot does not translate."""

    #: sqlglot's name of the dialect
    name: str
    #: anonymous functions the dialect has under the same name (lower case)
    native: frozenset[str] = frozenset()
    #: anonymous function (lower case) -> its equivalent, built from the call's arguments
    rewrite: Mapping[str, Rewrite] = field(default_factory=dict)

    def translate(self, tree: exp.Expr) -> exp.Expr:
        if not self.rewrite:
            return tree

        def swap(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Anonymous):
                build = self.rewrite.get(str(node.this).lower())
                if build is not None:
                    return build([a.copy() for a in node.expressions])
            return node

        return tree.transform(swap)

    def render(self, tree: exp.Expr) -> str:
        return self.translate(tree).sql(dialect=self.name)

    def unportable(self, tree: exp.Expr) -> list[str]:
        """What ``tree`` uses that this dialect cannot run: unknown anonymous functions, and constructs sqlglot
        reports as unsupported when it renders them."""
        problems = sorted(
            {
                f"function {name}()"
                for node in tree.find_all(exp.Anonymous)
                if (name := str(node.this).lower()) not in self.native and name not in self.rewrite
            }
        )
        try:
            self.translate(tree).sql(dialect=self.name, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as exc:
            problems.append(f"unsupported: {str(exc).splitlines()[0]}")
        return problems


def _call(name: str) -> Rewrite:
    return lambda args: exp.Anonymous(this=name, expressions=args)


#: DuckDB: the templates' own dialect; every function it parses, it runs.
DUCKDB = Dialect(name="duckdb")

#: ClickHouse (the distributed backend, and chdb). Functions sqlglot leaves anonymous when reading DuckDB.
CLICKHOUSE = Dialect(
    name="clickhouse",
    native=frozenset({"least", "greatest"}),
    rewrite={
        "list_sort": _call("arraySort"),
        "list_distinct": _call("arrayDistinct"),
        "len": _call("length"),
    },
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, CLICKHOUSE)}


def render(tree: exp.Expr, dialect: str) -> str:
    """``tree`` as the SQL text ``dialect`` runs."""
    if dialect == "duckdb":
        return tree.sql(dialect="duckdb")
    return DIALECTS[dialect].render(tree)
