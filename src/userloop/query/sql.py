"""Read-only SQL for analysts over a project's views.

The analyst writes plain SQL against four views::

    events(event_id, event, distinct_id, user_id, time, received_at, lib, <event property columns>)
    users(user_id, first_id, first_seen, last_seen, created_at, updated_at, <profile property columns>)
    identities(id_type, id_value, user_id, created_at)
    items(item_type, item_id, updated_at, <item property columns>)

``user_id`` is the resolved person. The statement is parsed with sqlglot and must be one query (SELECT, WITH,
set operations, DESCRIBE); every table it names must be one of the views or a CTE of its own, and no function
that reaches files, settings or other databases is allowed. Table names are then rewritten to the project's
schema, so nothing outside the project is reachable, and the query runs with a timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from userloop.core.errors import QueryError, ReadOnlyViolation
from userloop.query.replycap import fetch_capped
from userloop.store.duck import ProjectStore

VIEWS = ("events", "users", "identities", "items")
DEFAULT_TIMEOUT_S = 60.0
MAX_ROWS = 100_000

#: Functions that read or write outside the project, or change the session: refused by name prefix.
FORBIDDEN_FUNCTIONS = (
    "read_",
    "glob",
    "parquet_",
    "sniff_csv",
    "duckdb_",
    "pragma_",
    "query",
    "query_table",
    "getenv",
    "current_setting",
    "set_",
    "attach",
    "load",
    "install",
    "copy",
    "export",
    "import",
    "iceberg_",
    "delta_",
    "postgres_",
    "sqlite_",
    "mysql_",
    "http",
    "which_secret",
    "checkpoint",
    "force_checkpoint",
    "enable_",
    "disable_",
    "sql_auto_complete",
    "arrow_scan",
    "pandas_scan",
    "summary",
)

_ALLOWED_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Describe)


@dataclass
class SqlResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    truncated_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "types": self.types,
            "rows": [list(r) for r in self.rows],
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "truncated_reason": self.truncated_reason,
        }


def compile_readonly(sql: str, schema: str) -> str:
    """Check ``sql`` and return it with the views qualified to ``schema``; raise ReadOnlyViolation if refused."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryError(f"cannot parse the query: {exc.errors[0]['description'] if exc.errors else exc}") from exc
    except sqlglot.errors.SqlglotError as exc:  # the tokenizer's errors (an unclosed quote) are not parse errors
        raise QueryError(f"cannot read the query: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise ReadOnlyViolation("send exactly one statement")
    tree = statements[0]
    if not isinstance(tree, _ALLOWED_ROOTS):
        raise ReadOnlyViolation(
            f"only queries are allowed (SELECT, WITH, UNION, DESCRIBE); this is a {tree.key.upper()} statement"
        )
    for node in tree.walk():
        _check_node(node)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        _qualify(table, schema, ctes)
    return tree.sql(dialect="duckdb")


def _check_node(node: exp.Expr) -> None:
    if isinstance(
        node,
        exp.Insert
        | exp.Update
        | exp.Delete
        | exp.Create
        | exp.Drop
        | exp.Alter
        | exp.Command
        | exp.Merge
        | exp.Copy
        | exp.Set
        | exp.Pragma
        | exp.Use
        | exp.TruncateTable,
    ):
        raise ReadOnlyViolation(f"{node.key.upper()} is not allowed in a read-only query")
    if isinstance(node, exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if any(name.startswith(prefix) for prefix in FORBIDDEN_FUNCTIONS):
            raise ReadOnlyViolation(f"function {name}() is not allowed: it reaches outside the project's data")
    if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
        raise ReadOnlyViolation("table functions are not allowed; query the views events, users, identities, items")


def _qualify(table: exp.Table, schema: str, ctes: set[str]) -> None:
    name = table.name.lower()
    if table.args.get("db") or table.args.get("catalog"):
        raise ReadOnlyViolation(f"{table.sql()} is outside the project; query the views {', '.join(VIEWS)}")
    if name in ctes:
        return
    if name not in VIEWS:
        raise ReadOnlyViolation(f"unknown table {table.name!r}; the views are {', '.join(VIEWS)}")
    table.set("db", exp.to_identifier(schema, quoted=True))
    table.set("this", exp.to_identifier(_TABLE_OF_VIEW[name], quoted=True))
    if not table.alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(name)))


_TABLE_OF_VIEW = {
    "events": "events",
    "users": "users",
    "identities": "identities_view",
    "items": "items",
}


def run_readonly(
    project: ProjectStore,
    sql: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_rows: int = MAX_ROWS,
    max_bytes: int | None = None,
) -> SqlResult:
    """Run an analyst query against ``project``; at most ``max_rows`` rows come back, and with ``max_bytes`` no
    more rows than fit in that many bytes of JSON (:mod:`userloop.query.replycap`)."""
    compiled = compile_readonly(sql, project.schema)
    with project.store.lock:
        cursor = project.con.cursor()
    timer = threading.Timer(timeout_s, cursor.interrupt)
    timer.start()
    try:
        result = cursor.execute(compiled)
        rows, cut = fetch_capped(result, max_rows, max_bytes)
        description = result.description or []
    except Exception as exc:
        if "interrupt" in str(exc).lower():
            raise QueryError(f"the query ran longer than {timeout_s:g} s and was stopped") from exc
        raise QueryError(str(exc).split("\n")[0]) from exc
    finally:
        timer.cancel()
        cursor.close()
    return SqlResult(
        columns=[d[0] for d in description],
        types=[str(d[1]) for d in description],
        rows=rows,
        truncated=cut is not None,
        truncated_reason=cut,
    )
