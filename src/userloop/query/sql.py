"""Read-only SQL for analysts over a project's views, checked by scope and run in a sealed DuckDB sandbox.

The analyst writes plain SQL against four views::

    events(event_id, event, distinct_id, user_id, time, received_at, lib, <event property columns>)
    users(user_id, first_id, first_seen, last_seen, created_at, updated_at, <profile property columns>)
    identities(id_type, id_value, user_id, created_at)
    items(item_type, item_id, updated_at, <item property columns>)

``user_id`` is the resolved person. Two independent walls keep a query inside its project's data.

**The check** (:func:`check_readonly`). The statement is parsed with sqlglot and must be one query (SELECT,
WITH, set operations, DESCRIBE); comments are dropped. No function that reaches files, settings or other
databases is allowed, nor table functions. Every table reference is then resolved *where it stands*: a CTE is
visible in the later CTEs of its own WITH, in that WITH's body and, for a recursive CTE, in the recursive
(right-hand) side of its own UNION; it is not visible outside the query that declares it. A reference that is no
visible CTE must be one of the four views, else it is refused: a name can never fall through to DuckDB's
catalog, to a file (replacement scans: ``FROM "/etc/x.json"``) or to another project's schema. Quoted names with
``/``, ``\\``, ``.``, ``:``, ``~`` or glob characters are refused outright, whatever they would resolve to, and
so are schema- or catalog-qualified names and names starting ``_ul_`` (reserved for the sandbox).

**The sandbox** (:func:`run_readonly`). DuckDB's ``enable_external_access``, ``lock_configuration`` and the
extension auto-load settings are *global* to a database instance (measured on DuckDB 2.0.1: setting them on
one cursor changes every cursor, and ``SET SESSION`` is refused), and a process cannot open the event store
file twice with two configurations. The main instance must keep file access (imports read CSV/Parquet/JSON with
``read_*``, exports ``COPY … TO``), so analyst SQL never runs there. Each query gets a fresh in-memory DuckDB
instance (:func:`userloop.store.duck.sandbox_connection`) with external access, extension install/load and
Python replacement scans off and its configuration locked. The views the query names are read from the main
instance by statements this module builds (never analyst text): only the columns the query can use, with
personal data already masked when the caller lacks the ``pii`` right, as Arrow tables registered in the sandbox
under reserved names. So whatever the check misses, the sandbox holds no other project, no file, no secret and
no catalog but those views, and cannot reach the disk, an extension or the network. The cost is one Arrow
copy of the used columns per query (5M events, one text column: about 0.25 s and 40 MB on a laptop).

**Personal data.** Without ``pii``, a column whose name marks a phone number or an e-mail address
(:func:`userloop.query.masking.is_sensitive`) and ``identities.id_value`` of such identity types reach the
sandbox masked (the same masks as the user 360 view), so no expression over them can recover the clear value.

:func:`run_readonly_arrow` runs a checked query the same way for the product's own uses (SQL tags, computed daily
by the scheduler), returning Arrow, optionally wrapped in a statement of the caller's (the tag's cast and
finish). :func:`compile_readonly` applies the check and qualifies the views to the project's schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from userloop.core.errors import QueryError, ReadOnlyViolation
from userloop.query.masking import is_sensitive, mask_sql
from userloop.query.replycap import fetch_capped
from userloop.schema.types import PropertyType
from userloop.store import sqlbuild
from userloop.store.backend import Session, deadline
from userloop.store.dialects import render
from userloop.store.duck import DuckSession, ProjectStore, sandbox_session

VIEWS = ("events", "users", "identities", "items")
DEFAULT_TIMEOUT_S = 60.0
MAX_ROWS = 100_000
#: The most a query may copy from the event store into its sandbox (the used columns of the views it names):
#: the sandbox holds its input in memory, so this bounds what one query can take of the service's memory.
MAX_INPUT_BYTES = 1 << 30
#: Prefix of the names the sandbox registers the views under; refused in analyst SQL.
RESERVED_PREFIX = "_ul_"

#: Functions that read or write outside the project, or change the session: refused by name prefix.
FORBIDDEN_FUNCTIONS = (
    "read_",
    "glob",
    "parquet_",
    "sniff_csv",
    "duckdb_",
    "pragma_",
    "pg_",
    "query",
    "query_table",
    "getenv",
    "getvariable",
    "current_setting",
    "set_",
    "attach",
    "detach",
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
    "json_execute_serialized_sql",
)

_ALLOWED_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Describe)
_REFUSED_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Command,
    exp.Merge,
    exp.Copy,
    exp.Set,
    exp.Pragma,
    exp.Use,
    exp.TruncateTable,
)
#: Characters that make a name a path, a URL, a glob or a dotted name: never a view or a CTE.
_PATH_LIKE = re.compile(r"[/\\.:~*?\[\]{}]")

_TABLE_OF_VIEW = {
    "events": "events",
    "users": "users",
    "identities": "identities_view",
    "items": "items",
}


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


@dataclass
class Checked:
    """A statement that passed the check, with every reference to a view (the table node and the view's name)."""

    tree: exp.Expr
    views: list[tuple[exp.Table, str]] = field(default_factory=list)


# the check -----------------------------------------------------------------------------------------------------
def check_readonly(sql: str) -> Checked:
    """Parse ``sql`` and check it (one query, no forbidden node or function, every table resolved by scope).

    Raises QueryError when the text cannot be read and ReadOnlyViolation when it is refused."""
    tree = _parse_one(sql)
    try:
        for node in tree.walk():
            _check_node(node)
            node.comments = None  # nothing the analyst wrote outside the statement reaches the engine
        checked = Checked(tree)
        _resolve(tree, frozenset(), checked)
    except RecursionError as exc:
        raise QueryError("the query is nested too deeply to check") from exc
    return checked


def _parse_one(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryError(f"cannot parse the query: {exc.errors[0]['description'] if exc.errors else exc}") from exc
    except sqlglot.errors.SqlglotError as exc:  # the tokenizer's errors (an unclosed quote) are not parse errors
        raise QueryError(f"cannot read the query: {str(exc).splitlines()[0]}") from exc
    except RecursionError as exc:
        raise QueryError("cannot parse the query: it is nested too deeply") from exc
    if len(statements) != 1:
        raise ReadOnlyViolation("send exactly one statement")
    tree = statements[0]
    if not isinstance(tree, _ALLOWED_ROOTS):
        raise ReadOnlyViolation(
            f"only queries are allowed (SELECT, WITH, UNION, DESCRIBE); this is a {tree.key.upper()} statement"
        )
    return tree


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, _REFUSED_NODES):
        raise ReadOnlyViolation(f"{node.key.upper()} is not allowed in a read-only query")
    if isinstance(node, exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if any(name.startswith(prefix) for prefix in FORBIDDEN_FUNCTIONS):
            raise ReadOnlyViolation(f"function {name}() is not allowed: it reaches outside the project's data")
    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        raise ReadOnlyViolation(f"qualified function calls are not allowed: {node.sql(dialect='duckdb')[:80]}")
    if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
        raise ReadOnlyViolation("table functions are not allowed; query the views events, users, identities, items")
    if isinstance(node, exp.Table | exp.CTE):
        _check_name(node.name if isinstance(node, exp.Table) else node.alias_or_name)


def _check_name(name: str) -> None:
    """Refuse a table or CTE name that looks like a path, URL or glob, or uses the sandbox's reserved prefix."""
    if _PATH_LIKE.search(name) or any(ord(ch) < 32 for ch in name):
        raise ReadOnlyViolation(
            f"table name {name[:80]!r} looks like a file, URL or dotted name; query the views {', '.join(VIEWS)}"
        )
    if name.lower().startswith(RESERVED_PREFIX):
        raise ReadOnlyViolation(f"names starting {RESERVED_PREFIX!r} are reserved")


def _resolve(node: exp.Expr, visible: frozenset[str], checked: Checked) -> None:
    """Resolve every table under ``node`` against the CTE names ``visible`` where it stands."""
    if isinstance(node, exp.Table):
        _resolve_table(node, visible, checked)
        return
    with_ = node.args.get("with_")
    if isinstance(with_, exp.With):
        visible = _resolve_with(with_, visible, checked)
    for child in _children(node):
        if child is not with_:
            _resolve(child, visible, checked)


def _resolve_with(with_: exp.With, visible: frozenset[str], checked: Checked) -> frozenset[str]:
    """Resolve the CTEs of one WITH in order; returns the names its body sees."""
    recursive = bool(with_.args.get("recursive"))
    for cte in with_.expressions:
        name = cte.alias_or_name.lower()
        body = cte.this
        if recursive and isinstance(body, exp.Union):
            # the anchor does not see the CTE; the recursive side does
            _resolve(body.this, visible, checked)
            _resolve(body.expression, visible | {name}, checked)
            for key, child in body.args.items():
                if key not in ("this", "expression") and isinstance(child, exp.Expr):
                    _resolve(child, visible | {name}, checked)
        else:
            _resolve(body, visible, checked)
        visible = visible | {name}
    return visible


def _children(node: exp.Expr) -> Iterator[exp.Expr]:
    for value in node.args.values():
        if isinstance(value, exp.Expr):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, exp.Expr))


def _resolve_table(table: exp.Table, visible: frozenset[str], checked: Checked) -> None:
    for part in ("db", "catalog"):
        if table.args.get(part):
            raise ReadOnlyViolation(f"{table.sql()[:80]} is outside the project; query the views {', '.join(VIEWS)}")
    name = table.name.lower()
    if name in visible:
        return
    if name not in VIEWS:
        raise ReadOnlyViolation(
            f"unknown table {table.name[:80]!r} (no view and no CTE of that name where it stands); "
            f"the views are {', '.join(VIEWS)}"
        )
    checked.views.append((table, name))


def compile_readonly(sql: str, schema: str) -> str:
    """Check ``sql`` and return it with the views qualified to ``schema``; raise ReadOnlyViolation if refused."""
    checked = check_readonly(sql)
    for table, name in checked.views:
        _rename(table, name, exp.to_identifier(_TABLE_OF_VIEW[name], quoted=True), schema)
    return _render(checked.tree)


def _rename(table: exp.Table, view: str, target: exp.Identifier, schema: str | None) -> None:
    """Point one view reference at ``target`` (in ``schema``), keeping the name the query uses as its alias."""
    if schema is not None:
        table.set("db", exp.to_identifier(schema, quoted=True))
    table.set("this", target)
    if not table.alias and not isinstance(table.parent, exp.Describe):
        table.set("alias", exp.TableAlias(this=exp.to_identifier(view)))


def _render(tree: exp.Expr) -> str:
    try:
        return render(tree, "duckdb")
    except (sqlglot.errors.SqlglotError, RecursionError) as exc:
        raise QueryError(f"cannot write the query for the engine: {str(exc).splitlines()[0]}") from exc


# the views the sandbox receives ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Column:
    name: str
    ptype: PropertyType | None


def _view_columns(session: Session, schema: str, view: str) -> list[_Column]:
    rows = session.fetchall(
        sqlbuild.sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
        ),
        [schema, _TABLE_OF_VIEW[view]],
    )
    types = {"DOUBLE": PropertyType.NUMBER, "VARCHAR[]": PropertyType.LIST}
    return [_Column(str(n), types.get(str(t).upper())) for n, t in rows]


def _used_columns(checked: Checked, columns: list[_Column]) -> list[_Column]:
    """The columns of a view the query can use: every column when it takes whole rows (``*``, ``DESCRIBE``,
    ``PIVOT``, ``NATURAL JOIN``, ``COLUMNS(…)``, a row as a value), else those whose name it spells anywhere."""
    tree = checked.tree
    aliases = {t.alias_or_name.lower() for t, _ in checked.views} | set(VIEWS)
    whole = (
        isinstance(tree, exp.Describe)
        or any(isinstance(s.parent, exp.Select | exp.Column) for s in tree.find_all(exp.Star))
        or any(tree.find_all(exp.Pivot, exp.Columns))
        or any(str(j.args.get("method") or "").upper() == "NATURAL" for j in tree.find_all(exp.Join))
        or any(c.name.lower() in aliases and not c.table for c in tree.find_all(exp.Column))
    )
    if whole:
        return columns
    spelled = {i.name.lower() for i in tree.find_all(exp.Identifier)}
    used = [c for c in columns if c.name.lower() in spelled]
    return used or columns[:1]


def _view_select(
    schema: str, view: str, columns: list[_Column], pii: bool, sensitive_ids: dict[str, str]
) -> exp.Select:
    """``SELECT <columns> FROM <schema>.<view>``, personal data masked unless ``pii``."""
    source = sqlbuild.table(schema, _TABLE_OF_VIEW[view])
    return exp.select(*(_projection(view, c, pii, sensitive_ids) for c in columns)).from_(source)


def _projection(view: str, column: _Column, pii: bool, sensitive_ids: dict[str, str]) -> exp.Expr:
    value = sqlbuild.col(column.name)
    if pii:
        return value
    kind = is_sensitive(column.name)
    if kind is not None:
        return exp.alias_(mask_sql(kind, value, column.ptype), column.name, quoted=True)
    if view == "identities" and column.name == "id_value" and sensitive_ids:
        case = exp.Case()
        for id_type, id_kind in sorted(sensitive_ids.items()):
            is_type = exp.EQ(this=sqlbuild.col("id_type"), expression=exp.Literal.string(id_type))
            case = case.when(is_type, mask_sql(id_kind, value.copy()))  # type: ignore[arg-type]
        return exp.alias_(case.else_(value.copy()), column.name, quoted=True)
    return value


def _sensitive_id_types(session: Session, schema: str) -> dict[str, str]:
    """Identity types whose values are phone numbers or e-mail addresses, with their kind."""
    rows = session.fetchall(
        sqlbuild.sql("SELECT DISTINCT id_type FROM $identities", identities=sqlbuild.table(schema, "identities"))
    )
    return {t: kind for t in (str(r[0]) for r in rows) if (kind := is_sensitive(t)) is not None}


# running -------------------------------------------------------------------------------------------------------
def run_readonly(
    project: ProjectStore,
    sql: str,
    *,
    pii: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_rows: int = MAX_ROWS,
    max_bytes: int | None = None,
    max_input_bytes: int = MAX_INPUT_BYTES,
) -> SqlResult:
    """Run an analyst query against ``project`` in a sealed sandbox; at most ``max_rows`` rows come back, and
    with ``max_bytes`` no more rows than fit in that many bytes of JSON (:mod:`userloop.query.replycap`).

    ``pii``: the caller may see phone numbers and e-mail addresses in clear; without it (the default, so a
    caller that forgets to pass the right shows masks, not data) they reach the query already masked."""
    checked = check_readonly(sql)
    session = _sandboxed_session(project, checked, pii=pii, timeout_s=timeout_s, max_input_bytes=max_input_bytes)
    with session as (sandbox, tree):
        result = sandbox.execute(tree)
        rows, cut = fetch_capped(result, max_rows, max_bytes)
        columns, types = result.columns, result.types
    return SqlResult(columns=columns, types=types, rows=rows, truncated=cut is not None, truncated_reason=cut)


def run_readonly_arrow(
    project: ProjectStore,
    sql: str,
    *,
    wrap: Callable[[exp.Expr], exp.Expr] | None = None,
    pii: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    columns_only: bool = False,
) -> pa.Table:
    """The whole result of a checked query, run in the sandbox as :func:`run_readonly` runs it, as Arrow.

    ``wrap`` builds a statement around the (sandboxed) query tree, as SQL tags do to cast and finish their
    values; ``columns_only`` binds the query on empty views and returns an empty table with its columns (to
    validate a saved query without running it)."""
    checked = check_readonly(sql)
    with _sandboxed_session(project, checked, pii=pii, timeout_s=timeout_s, empty=columns_only) as (sandbox, tree):
        stmt = tree if wrap is None else wrap(tree)
        if columns_only:
            stmt = (
                exp.select(exp.Star())
                .from_(exp.Subquery(this=stmt, alias=exp.TableAlias(this=sqlbuild.name("q"))))
                .limit(0)
            )
        return sandbox.arrow(stmt)


@contextmanager
def _sandboxed_session(
    project: ProjectStore,
    checked: Checked,
    *,
    pii: bool,
    timeout_s: float,
    empty: bool = False,
    max_input_bytes: int = MAX_INPUT_BYTES,
) -> Iterator[tuple[DuckSession, exp.Expr]]:
    """A sandbox holding the views ``checked`` names (``empty``: no rows) and the query's tree pointed at them,
    both sessions stopped after ``timeout_s`` (``query_timeout``); engine and Arrow failures become QueryErrors.

    The sandbox's input is bounded by ``max_input_bytes`` (the views are copied in)."""
    with (
        deadline(timeout_s) as watch,
        project.session() as store,
        sandbox_session() as sandbox,
    ):
        watch.watch(store)
        watch.watch(sandbox)
        try:
            tables = _fetch_views(store, project.schema, checked, pii, empty=empty, max_bytes=max_input_bytes)
            yield sandbox, _sandboxed(checked, tables, sandbox)
        except pa.ArrowException as exc:  # a view's column that Arrow cannot carry
            raise QueryError(f"the query's data cannot be read: {str(exc).splitlines()[0]}") from exc
        except (sqlglot.errors.SqlglotError, RecursionError) as exc:  # the tree cannot be written as SQL
            raise QueryError(f"cannot write the query for the engine: {str(exc).splitlines()[0]}") from exc


def _fetch_views(
    session: Session,
    schema: str,
    checked: Checked,
    pii: bool,
    *,
    empty: bool = False,
    max_bytes: int = MAX_INPUT_BYTES,
) -> dict[str, pa.Table]:
    """The views the query names, read from the event store as Arrow: used columns only, masked unless ``pii``
    (``empty``: their columns without rows). Read in batches and refused once they pass ``max_bytes`` in all."""
    tables: dict[str, pa.Table] = {}
    budget = max_bytes
    for view in sorted({name for _, name in checked.views}):
        columns = _used_columns(checked, _view_columns(session, schema, view))
        ids = _sensitive_id_types(session, schema) if view == "identities" and not pii else {}
        select = _view_select(schema, view, columns, pii, ids)
        if empty:
            tables[view] = session.arrow(select.limit(0))
            continue
        tables[view], budget = _read_within(session.batches(select, rows=65_536), view, len(columns), budget, max_bytes)
    return tables


def _read_within(
    reader: pa.RecordBatchReader, view: str, n_columns: int, budget: int, max_bytes: int
) -> tuple[pa.Table, int]:
    batches = []
    for batch in reader:
        budget -= batch.nbytes
        if budget < 0:
            raise QueryError(
                f"the query reads more than {max_bytes / 2**20:,.0f} MB of data ({n_columns} column(s) of the view "
                f"{view} so far): name only the columns it needs instead of *, or ask in smaller pieces",
                code="query_too_large",
            )
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema), budget


def _sandboxed(checked: Checked, tables: dict[str, pa.Table], sandbox: Session) -> exp.Expr:
    """Register the views in the sandbox under reserved names and point the query's references at them."""
    for view, data in tables.items():
        sandbox.register(f"{RESERVED_PREFIX}view_{view}", data)
    for ref, view in checked.views:
        _rename(ref, view, exp.to_identifier(f"{RESERVED_PREFIX}view_{view}", quoted=True), None)
    return checked.tree
