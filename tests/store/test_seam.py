"""The backend seam holds: above ``store/``, no code reaches a raw DuckDB connection or formats SQL text.

Statements are sqlglot trees (:mod:`userloop.store.sqlbuild`) run through a session
(:mod:`userloop.store.backend`); that is what lets a second backend (ClickHouse) render the same statements in
its own dialect. The check reads the source with :mod:`ast`, so a comment or a docstring that mentions SQL does
not count, and an f-string, ``%`` or ``.format`` that builds SQL does, wherever it is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "userloop"
STORE = SRC / "store"
#: Words that make a piece of text SQL: a statement's verbs and clauses, in the upper case the code writes them.
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE|ALTER TABLE|DROP|FROM|WHERE|JOIN|GROUP BY|ORDER BY|AND|OR|"
    r"IN|AS|ON|SET|VALUES|CAST|CASE WHEN|THEN|ELSE|END)\b"
)
#: Names whose use means holding the engine's own connection.
RAW = {"con", "cursor", "DuckDBPyConnection", "connect"}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if STORE not in p.parents)


def _text_parts(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text_parts(v) for v in node.values)
    return ""


def _spliced_sql(node: ast.JoinedStr) -> str:
    """The text of an f-string that splices a value into SQL: SQL words before a ``{…}``. A shell command
    printed for the user that quotes a query after its ``{workspace}`` is not SQL being built."""
    before = ""
    for part in node.values:
        if isinstance(part, ast.FormattedValue):
            if SQL_WORDS.search(before):
                return _text_parts(node)
        else:
            before += _text_parts(part)
    return ""


def _formatted_sql(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    # the message of a raised error may name SQL words ("only queries are allowed (SELECT, …)"): it is prose
    messages = {id(n) for r in ast.walk(tree) if isinstance(r, ast.Raise) for n in ast.walk(r)}
    for node in ast.walk(tree):
        if id(node) in messages:
            continue
        text = ""
        if isinstance(node, ast.JoinedStr):
            text = _spliced_sql(node)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            text = _text_parts(node.left) + " " + _text_parts(node.right)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
        ):
            text = _text_parts(node.func.value)
        if text and SQL_WORDS.search(text):
            found.append((getattr(node, "lineno", 0), text[:80]))
    return found


def _raw_connection(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in RAW:
            owner = node.value
            # `duckdb.connect`, `x.con`, `x.cursor()`, `duckdb.DuckDBPyConnection`
            if node.attr != "connect" or (isinstance(owner, ast.Name) and owner.id == "duckdb"):
                found.append((node.lineno, f".{node.attr}"))
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if "duckdb" in names or (module or "").startswith("duckdb"):
                found.append((node.lineno, "import duckdb"))
    return found


def _scan(check: object) -> list[str]:
    out = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, what in check(tree):  # type: ignore[operator]
            out.append(f"{path.relative_to(SRC.parent)}:{line}: {what}")
    return out


def test_no_raw_connection_outside_store() -> None:
    assert _scan(_raw_connection) == []


def test_no_sql_built_by_string_formatting_outside_store() -> None:
    assert _scan(_formatted_sql) == []


def test_the_checks_see_what_they_look_for() -> None:
    """The scanners flag the patterns they exist for (so an empty scan means something)."""
    sample = ast.parse(
        "import duckdb\n"
        "rows = store.con.execute(f'SELECT a FROM {t}')\n"
        "cur = store.cursor()\n"
        "q = 'DELETE FROM %s' % t\n"
        "q2 = 'SELECT {} FROM x'.format(c)\n"
        "msg = f'no project named {name!r}'\n"
        "raise ValueError(f'only SELECT is allowed; this is {kind}')\n"
    )
    raw = sorted(what for _, what in _raw_connection(sample))
    assert raw == [".con", ".cursor", "import duckdb"]
    formatted = sorted(line for line, _ in _formatted_sql(sample))
    assert formatted == [2, 4, 5]
