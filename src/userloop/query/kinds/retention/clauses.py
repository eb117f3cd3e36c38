"""Composing the period analyses' statements: a condition kept whole wherever a template puts it, and one
``WITH`` clause built once and carried onto several statements."""

from __future__ import annotations

from sqlglot import exp


def grouped(condition: exp.Expr) -> exp.Expr:
    """``condition`` in parentheses when it is an AND/OR, so that it keeps its meaning wherever a template puts it
    (a substituted node is not re-parenthesised: ``x AND $c`` with ``c = a OR b`` would print ``x AND a OR b``)."""
    return exp.paren(condition.copy()) if isinstance(condition, exp.Connector) else condition


def attach_ctes(ctes: exp.Expr, body: exp.Expr) -> exp.Expr:
    """``body`` with the ``WITH`` clause of ``ctes`` in front of it (CTEs are built once, used by several
    statements)."""
    with_ = ctes.args.get("with_")
    assert isinstance(with_, exp.With)
    out = body.copy()
    out.set("with_", with_.copy())
    return out


def cte_names(query: exp.Expr) -> set[str]:
    """The names of the CTEs in front of ``query``."""
    with_ = query.args.get("with_")
    return {cte.alias for cte in with_.expressions} if isinstance(with_, exp.With) else set()
