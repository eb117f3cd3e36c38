"""Analyst SQL is read-only, limited to the project's views, and bounded in time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import NOW_MS
from tests.ingest.helpers import lines, profile, signup, track
from userloop.core.errors import QueryError, ReadOnlyViolation
from userloop.ingest import load_json_lines
from userloop.query import SqlResult, compile_readonly, run_readonly
from userloop.query.sql import _fetch_views, _sandboxed, check_readonly
from userloop.store import ProjectStore, Workspace, sqlbuild
from userloop.store.duck import sandbox_connection, sandbox_session


def run_trusted(project: ProjectStore, sql: str, **kwargs: Any) -> SqlResult:
    """An operator's query: personal data in clear."""
    return run_readonly(project, sql, pii=True, **kwargs)


@pytest.fixture
def loaded(project: ProjectStore) -> ProjectStore:
    load_json_lines(
        project,
        lines(track("view", "d1", price=2.0), signup("L1", "d1"), track("buy", "L1", login=True, price=5.0)),
        source="t",
    )
    return project


def test_views_resolve_the_person(loaded: ProjectStore) -> None:
    result = run_trusted(loaded, "SELECT count(DISTINCT user_id) AS persons, count(*) AS n, sum(price) FROM events")
    assert result.columns[:2] == ["persons", "n"]
    assert result.rows == [(1, 3, 7.0)]
    ids = run_trusted(loaded, "SELECT id_type, id_value FROM identities ORDER BY id_value")
    assert ids.rows == [("$identity_login_id", "L1"), ("$identity_anonymous_id", "d1")]
    joined = run_trusted(
        loaded,
        "WITH b AS (SELECT user_id FROM events WHERE event = 'buy') "
        "SELECT u.first_id FROM users u JOIN b USING (user_id)",
    )
    assert joined.rows == [("L1",)]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM events",
        "UPDATE users SET first_id = 'x'",
        "INSERT INTO events SELECT * FROM events",
        "DROP TABLE events",
        "CREATE TABLE x AS SELECT 1",
        "ATTACH 'other.db'",
        "COPY events TO '/tmp/out.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('x.parquet')",
        "SELECT * FROM 'some_file.csv'",
        "SELECT getenv('HOME')",
        "SELECT * FROM registry",
        "SELECT * FROM p_default.events",
        "SELECT * FROM main.events",
        "SELECT * FROM duckdb_tables()",
        "SELECT 1; DROP TABLE events",
        "PRAGMA database_list",
        "SET threads = 1",
        "INSTALL httpfs",
        "SELECT current_setting('threads')",
    ],
)
def test_writes_and_escapes_are_refused(loaded: ProjectStore, sql: str) -> None:
    with pytest.raises((ReadOnlyViolation, QueryError)):
        run_trusted(loaded, sql)
    assert run_trusted(loaded, "SELECT count(*) FROM events").rows == [(3,)]


def test_other_project_is_not_reachable(workspace: Workspace) -> None:
    workspace.create_project("other")
    other = workspace.project("other")
    load_json_lines(other, lines(track("secret", "x")), source="t")
    assert run_trusted(workspace.project(), "SELECT count(*) FROM events").rows == [(0,)]
    with pytest.raises(ReadOnlyViolation):
        run_trusted(workspace.project(), 'SELECT * FROM "p_other"."events"')


def test_errors_and_limits(loaded: ProjectStore) -> None:
    with pytest.raises(QueryError, match="cannot parse|Parser"):
        run_trusted(loaded, "SELEC 1 FROM")
    with pytest.raises(QueryError, match="no_such_column|not found"):
        run_trusted(loaded, "SELECT no_such_column FROM events")
    limited = run_trusted(loaded, "SELECT event FROM events", max_rows=2)
    assert len(limited.rows) == 2 and limited.truncated


def test_the_sandbox_s_input_is_bounded(project: ProjectStore) -> None:
    """The views are copied into the sandbox; past the input budget the query is refused, not the server's memory
    spent. Naming fewer columns fits the same data into the same budget."""
    records = [track("view", f"d{i}", price=float(i), note="x" * 200) for i in range(3000)]
    load_json_lines(project, lines(*records), source="t")
    with pytest.raises(QueryError, match="reads more than") as caught:
        run_trusted(project, "SELECT * FROM events LIMIT 1", max_input_bytes=300_000)
    assert caught.value.code == "query_too_large"
    narrow = run_trusted(project, "SELECT sum(price) AS s FROM events", max_input_bytes=300_000)
    assert narrow.rows == [(sum(float(i) for i in range(3000)),)]


def test_timeout_stops_a_runaway_query(loaded: ProjectStore) -> None:
    slow = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1e12) SELECT count(*) FROM r"
    with pytest.raises(QueryError, match="longer than"):
        run_trusted(loaded, slow, timeout_s=0.5)


def test_compile_qualifies_views() -> None:
    sql = compile_readonly("SELECT e.event FROM events e JOIN users USING (user_id)", "p_default")
    assert '"p_default"."events"' in sql and '"p_default"."users"' in sql


@pytest.mark.parametrize("sql", ["SELECT 'unclosed", 'SELECT "unclosed', "SELECT $$unclosed", "SELECT 1 +"])
def test_text_that_does_not_tokenize_or_parse_is_a_clear_error(sql: str) -> None:
    with pytest.raises(QueryError, match="cannot (read|parse) the query"):
        compile_readonly(sql, "p_project")


# scopes ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        'SELECT * FROM (WITH "/tmp/x.json" AS (SELECT 1) SELECT 1) q, "/tmp/x.json"',
        "SELECT * FROM (WITH duckdb_tables AS (SELECT 1) SELECT 1) q, duckdb_tables",
        "WITH duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables",
        "WITH RECURSIVE duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables",
        "WITH RECURSIVE t AS (SELECT * FROM t UNION ALL SELECT * FROM t) SELECT * FROM t",
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
        "WITH a AS (WITH b AS (SELECT 1) SELECT * FROM b) SELECT * FROM b",
        "(WITH x AS (SELECT 1) SELECT * FROM x) UNION ALL SELECT * FROM x",
        "SELECT * FROM events WHERE user_id IN (SELECT * FROM (WITH x AS (SELECT 1) SELECT 1) q, x)",
        'WITH "a.b" AS (SELECT 1) SELECT * FROM "a.b"',
        'WITH "*" AS (SELECT 1) SELECT * FROM "*"',
        'SELECT * FROM "s3://bucket/x"',
        "SELECT * FROM p_other.events",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM _ul_view_events",
        "SELECT pg_catalog.version()",
    ],
)
def test_names_resolve_where_they_stand(sql: str) -> None:
    with pytest.raises(ReadOnlyViolation):
        compile_readonly(sql, "p_default")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WITH events AS (SELECT * FROM events WHERE event = 'buy') SELECT count(*) FROM events", [(1,)]),
        ("WITH a AS (SELECT user_id FROM events), b AS (SELECT * FROM a) SELECT count(*) FROM b", [(3,)]),
        ("SELECT count(*) FROM (WITH x AS (SELECT * FROM events) SELECT * FROM x) q", [(3,)]),
        ("WITH x AS (SELECT 1 AS n) SELECT (SELECT count(*) FROM x, events)", [(3,)]),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 4) SELECT max(n) FROM r", [(4,)]),
        ("SELECT count(*) FROM events e, LATERAL (SELECT e.price AS p) x WHERE x.p > 2", [(1,)]),
        ("SELECT count(*) FROM events /* a comment; DROP TABLE events */", [(3,)]),
    ],
)
def test_scoped_queries_run(loaded: ProjectStore, sql: str, expected: list[tuple[Any, ...]]) -> None:
    assert run_trusted(loaded, sql).rows == expected


def test_compile_drops_comments_and_qualifies_shadowed_views() -> None:
    sql = compile_readonly("WITH events AS (SELECT * FROM events) SELECT * FROM events /* x */", "p_default")
    assert '"p_default"."events"' in sql and "/*" not in sql


# the sandbox ----------------------------------------------------------------------------------------------------
def test_the_sandbox_refuses_files_extensions_and_settings_even_for_raw_sql(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("k\nSECRET\n")
    sandbox = sandbox_connection()
    try:
        for raw in (
            f"SELECT * FROM read_csv('{secret}')",
            f"SELECT * FROM '{secret}'",
            f"SELECT * FROM read_text('{secret}')",
            f"ATTACH '{tmp_path / 'x.duckdb'}'",
            f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
            "SELECT * FROM 'https://example.com/x.parquet'",
            "INSTALL httpfs",
            "LOAD httpfs",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
        ):
            with pytest.raises(duckdb.Error, match="disabled|locked|Permission"):
                sandbox.execute(raw)
        assert not (tmp_path / "out.csv").exists()
    finally:
        sandbox.close()


def test_the_sandbox_holds_only_the_views_the_query_names(workspace: Workspace) -> None:
    workspace.create_project("other")
    load_json_lines(workspace.project("other"), lines(track("secret", "x")), source="t")
    project = workspace.project()
    checked = check_readonly("SELECT count(*) FROM events JOIN users USING (user_id)")
    with project.session() as store, sandbox_session() as sandbox:
        _sandboxed(checked, _fetch_views(store, project.schema, checked, False), sandbox)
        names = sandbox.fetchall(sqlbuild.sql("SELECT table_name FROM information_schema.tables ORDER BY 1"))
        listed = sandbox.fetchall(sqlbuild.sql("SELECT schema_name FROM duckdb_schemas()"))
    assert names == [("_ul_view_events",), ("_ul_view_users",)]
    assert not any("p_" in str(s) for (s,) in listed)


# personal data ----------------------------------------------------------------------------------------------------
def test_personal_data_is_masked_without_pii(project: ProjectStore) -> None:
    load_json_lines(
        project,
        lines(
            signup("13812345678", "d1"),
            profile("profile_set", "13812345678", phone="13812345678", email="zhang@example.com", n_mobile=12345.0),
            {"type": "track_id_bind", "event": "$BindID", "distinct_id": "13812345678", "time": NOW_MS,
             "identities": {"$identity_mobile": "13812345678", "$identity_email": "zhang@example.com"}},
        ),
        source="t",
    )  # fmt: skip
    query = "SELECT phone, email, upper(email) AS e2, phone || '!' AS p2, n_mobile FROM users WHERE phone IS NOT NULL"
    masked = run_readonly(project, query, pii=False)
    assert masked.rows == [("138****5678", "z***@example.com", "Z***@EXAMPLE.COM", "138****5678!", "***45")]
    assert run_readonly(project, query, pii=True).rows[0][:2] == ("13812345678", "zhang@example.com")
    ids = run_readonly(project, "SELECT id_type, id_value FROM identities ORDER BY id_type", pii=False).rows
    assert ("$identity_mobile", "138****5678") in ids and ("$identity_email", "z***@example.com") in ids
    guess = "SELECT count(*) FROM users WHERE phone = '13812345678' OR email LIKE 'zhang%'"
    assert run_readonly(project, guess, pii=False).rows == [(0,)]
