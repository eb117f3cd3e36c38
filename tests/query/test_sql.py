"""Analyst SQL is read-only, limited to the project's views, and bounded in time."""

from __future__ import annotations

import pytest

from tests.ingest.helpers import lines, signup, track
from userloop.core.errors import QueryError, ReadOnlyViolation
from userloop.ingest import load_json_lines
from userloop.query import compile_readonly, run_readonly
from userloop.store import ProjectStore, Workspace


@pytest.fixture
def loaded(project: ProjectStore) -> ProjectStore:
    load_json_lines(
        project,
        lines(track("view", "d1", price=2.0), signup("L1", "d1"), track("buy", "L1", login=True, price=5.0)),
        source="t",
    )
    return project


def test_views_resolve_the_person(loaded: ProjectStore) -> None:
    result = run_readonly(loaded, "SELECT count(DISTINCT user_id) AS persons, count(*) AS n, sum(price) FROM events")
    assert result.columns[:2] == ["persons", "n"]
    assert result.rows == [(1, 3, 7.0)]
    ids = run_readonly(loaded, "SELECT id_type, id_value FROM identities ORDER BY id_value")
    assert ids.rows == [("$identity_login_id", "L1"), ("$identity_anonymous_id", "d1")]
    joined = run_readonly(
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
        run_readonly(loaded, sql)
    assert run_readonly(loaded, "SELECT count(*) FROM events").rows == [(3,)]


def test_other_project_is_not_reachable(workspace: Workspace) -> None:
    workspace.create_project("other")
    other = workspace.project("other")
    load_json_lines(other, lines(track("secret", "x")), source="t")
    assert run_readonly(workspace.project(), "SELECT count(*) FROM events").rows == [(0,)]
    with pytest.raises(ReadOnlyViolation):
        run_readonly(workspace.project(), 'SELECT * FROM "p_other"."events"')


def test_errors_and_limits(loaded: ProjectStore) -> None:
    with pytest.raises(QueryError, match="cannot parse|Parser"):
        run_readonly(loaded, "SELEC 1 FROM")
    with pytest.raises(QueryError, match="no_such_column|not found"):
        run_readonly(loaded, "SELECT no_such_column FROM events")
    limited = run_readonly(loaded, "SELECT event FROM events", max_rows=2)
    assert len(limited.rows) == 2 and limited.truncated


def test_timeout_stops_a_runaway_query(loaded: ProjectStore) -> None:
    slow = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1e12) SELECT count(*) FROM r"
    with pytest.raises(QueryError, match="longer than"):
        run_readonly(loaded, slow, timeout_s=0.5)


def test_compile_qualifies_views() -> None:
    sql = compile_readonly("SELECT e.event FROM events e JOIN users USING (user_id)", "p_default")
    assert '"p_default"."events"' in sql and '"p_default"."users"' in sql


@pytest.mark.parametrize("sql", ["SELECT 'unclosed", 'SELECT "unclosed', "SELECT $$unclosed", "SELECT 1 +"])
def test_text_that_does_not_tokenize_or_parse_is_a_clear_error(sql: str) -> None:
    with pytest.raises(QueryError, match="cannot (read|parse) the query"):
        compile_readonly(sql, "p_project")
