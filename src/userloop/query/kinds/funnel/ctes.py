"""How the funnel's one statement is put together: the builders add CTEs in order, the outputs take them all (or
a prefix of them, for :func:`~userloop.query.kinds.funnel.levels.funnel_levels`) as one ``WITH`` clause, and
parts of one shape are joined by ``UNION ALL``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp


@dataclass
class Ctes:
    items: list[tuple[str, exp.Expr, bool]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, name: str, tree: exp.Expr, shared: bool = False) -> None:
        """A CTE; ``shared`` ones are read by several later steps and computed once (``MATERIALIZED``)."""
        self.items.append((name, tree, shared))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.items]

    def attach(self, query: exp.Expr, names: list[str]) -> exp.Expr:
        """``query`` with the CTEs ``names`` (in the order they were added) as its ``WITH`` clause; a union is
        wrapped in ``SELECT * FROM (…) AS out`` first."""
        wanted = set(names)
        ctes = [
            exp.CTE(this=tree, alias=exp.TableAlias(this=exp.to_identifier(name)), materialized=shared or None)
            for name, tree, shared in self.items
            if name in wanted
        ]
        if isinstance(query, exp.Union):
            query = exp.select("*").from_(exp.Subquery(this=query, alias="out"))
        query.set("with_", exp.With(expressions=ctes))
        return query


def union_all(parts: list[exp.Expr]) -> exp.Expr:
    """``parts`` joined by ``UNION ALL``, left to right."""
    body = parts[0]
    for p in parts[1:]:
        body = exp.union(body, p, distinct=False)
    return body
