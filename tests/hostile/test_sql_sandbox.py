"""A hostile analyst against a real server: analyst SQL, analyses and size estimates must not reach files, other
projects, settings or the network, nor show personal data to a token without the ``pii`` grant.

The workspace holds planted secrets (CSV, JSON, text, Parquet, another DuckDB database) next to it and inside
it, and a second project with data. Every hostile request must be answered with a clean 4xx, and not one byte of
a secret, of the other project, of the server's config or of a clear phone number may come back.
"""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.collect.serving import ONE_SHOT_TLS, Server
from tests.ingest.helpers import lines, profile, signup, track
from userloop.ingest import load_json_lines
from userloop.store import Workspace

SECRET = "S3CRET" + random_secrets.token_hex(8)
OTHER = "OTHERPROJ" + random_secrets.token_hex(8)
PHONE = "13812345678"
EMAIL = "zhang.san@example.com"
#: Texts of the workspace's own files that must never come back either.
CONFIG_TEXTS = ("format_version", "meta_url", "data_file")


@dataclass
class Hostile:
    server: Server
    tmp: Path
    pii_headers: dict[str, str]

    def post(self, path: str, body: dict[str, Any], *, pii: bool = False) -> httpx.Response:
        headers = self.pii_headers if pii else self.server.admin
        return httpx.post(self.server.url + path, json=body, headers=headers, timeout=60, verify=ONE_SHOT_TLS)

    def sql(self, query: str, *, pii: bool = False, project: str = "default") -> httpx.Response:
        return self.post("/api/v1/sql", {"query": query, "project": project}, pii=pii)


def _plant(tmp: Path) -> None:
    """Secrets in every format DuckDB reads, beside the workspace and inside it."""
    for folder in (tmp, tmp / "ws"):
        (folder / "secret.csv").write_text(f"k,v\n{SECRET},1\n")
        (folder / "secret.json").write_text(f'{{"k": "{SECRET}"}}\n')
        (folder / "secret.txt").write_text(SECRET)
        pq.write_table(pa.table({"k": [SECRET]}), folder / "secret.parquet")
    con = duckdb.connect(str(tmp / "secret.duckdb"))
    con.execute("CREATE TABLE t AS SELECT ? AS k", [SECRET])
    con.close()


def _load(ws: Workspace) -> None:
    load_json_lines(
        ws.project(),
        lines(
            track("view", "d1", price=2.0),
            signup("L1", "d1"),
            track("buy", "L1", login=True, price=5.0),
            profile("profile_set", "L1", phone=PHONE, email=EMAIL, city="上海"),
            track("view", "d2", price=1.0),
            profile("profile_set", "d2", login=False, phone="13900000000", email="li@example.org", city="北京"),
        ),
        source="t",
    )
    ws.create_project("other")
    load_json_lines(
        ws.project("other"),
        lines(track(OTHER, "x1", note=OTHER), profile("profile_set", "x1", secret=OTHER)),
        source="t",
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tmp = Path(tmp_path_factory.mktemp("hostile"))
    ws, made = Workspace.init(tmp / "ws")
    try:
        _load(ws)
        key, pii_token = ws.meta.add_key("admin", "analyst with pii", None)
        ws.meta.grant(key.id, "pii")
    finally:
        ws.close()
    _plant(tmp)
    assert made.admin_token
    server = Server(ws.path, made.write_key, made.admin_token).start()
    yield Hostile(server, tmp, {"Authorization": f"Bearer {pii_token}"})
    server.stop()


def _queries(tmp: Path) -> list[str]:
    csv, js, txt, parquet, db = (str(tmp / f"secret.{x}") for x in ("csv", "json", "txt", "parquet", "duckdb"))
    config, meta = str(tmp / "ws" / "userloop.toml"), str(tmp / "ws" / "meta.sqlite")
    return [
        # the findings
        f'SELECT * FROM (WITH "{csv}" AS (SELECT 1) SELECT 1) q, "{csv}"',
        f'SELECT * FROM (WITH "{js}" AS (SELECT 1) SELECT 1) q, "{js}"',
        f'SELECT * FROM (WITH "{config}" AS (SELECT 1) SELECT 1) q, "{config}"',
        f'SELECT * FROM (WITH "{parquet}" AS (SELECT 1) SELECT 1) q, "{parquet}"',
        f'SELECT * FROM (WITH "{tmp}/*.csv" AS (SELECT 1) SELECT 1) q, "{tmp}/*.csv"',
        f'SELECT * FROM (WITH "{db}" AS (SELECT 1) SELECT 1) q, "{db}"',
        "WITH duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables",
        "WITH duckdb_columns AS (SELECT * FROM duckdb_columns) SELECT * FROM duckdb_columns",
        'SELECT * FROM (WITH "https://example.com/x.parquet" AS (SELECT 1) SELECT 1) q, "https://example.com/x.parquet"',
        # scope variations: recursive CTEs, nesting, lateral, set operations
        "WITH RECURSIVE duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables",
        "WITH RECURSIVE duckdb_tables AS (SELECT * FROM duckdb_tables UNION ALL SELECT * FROM duckdb_tables) "
        "SELECT * FROM duckdb_tables",
        f'WITH RECURSIVE r AS (SELECT * FROM "{csv}" UNION ALL SELECT * FROM r) SELECT * FROM r',
        "SELECT * FROM (SELECT * FROM (WITH duckdb_settings AS (SELECT 1) SELECT 1) a) b, duckdb_settings",
        "WITH a AS (WITH duckdb_tables AS (SELECT 1) SELECT 1) SELECT * FROM a, duckdb_tables",
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
        f'SELECT * FROM events, LATERAL (SELECT * FROM "{csv}") x',
        f"SELECT * FROM events, LATERAL read_csv('{csv}')",
        f'SELECT * FROM events UNION ALL SELECT * FROM "{csv}"',
        f'(WITH x AS (SELECT 1) SELECT * FROM x) UNION ALL SELECT * FROM "{csv}"',
        f'SELECT * FROM events WHERE event IN (SELECT k FROM "{csv}")',
        f'SELECT (SELECT count(*) FROM "{csv}")',
        'WITH "x.csv" AS (SELECT 1) SELECT * FROM "x.csv"',
        # files by string, function and glob
        f"SELECT * FROM '{csv}'",
        f"FROM '{csv}'",
        f"SELECT * FROM read_text('{txt}')",
        f"SELECT content FROM read_text('{txt}')",
        f"SELECT * FROM read_blob('{db}')",
        f"SELECT * FROM glob('{tmp}/*')",
        f"SELECT * FROM read_json_auto('{js}')",
        f"SELECT * FROM parquet_scan('{parquet}')",
        f"SELECT * FROM sniff_csv('{csv}')",
        f"SELECT main.read_csv('{csv}')",
        f'SELECT * FROM "../{tmp.name}/secret.csv"',
        'SELECT * FROM "secret.csv"',
        "SELECT * FROM secret",
        f"PIVOT '{csv}' ON k",
        f"DESCRIBE SELECT * FROM '{csv}'",
        f"SUMMARIZE SELECT * FROM '{csv}'",
        "SUMMARIZE events",
        # the network and extensions
        'SELECT * FROM "https://example.com/x.parquet"',
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "INSTALL httpfs",
        "LOAD httpfs",
        # other databases, settings, catalogs
        f"ATTACH '{db}' AS o",
        f"ATTACH '{meta}' AS m (TYPE sqlite)",
        "PRAGMA database_list",
        "PRAGMA show_tables",
        "SET enable_external_access = true",
        "SET threads = 1",
        "RESET ALL",
        f"COPY (SELECT * FROM events) TO '{tmp}/out.csv'",
        f"EXPORT DATABASE '{tmp}/exported'",
        "CALL pragma_database_list()",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_tables()",
        "SELECT * FROM duckdb_tables",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM information_schema.columns",
        "SELECT * FROM pg_catalog.pg_class",
        "SELECT * FROM pg_tables",
        "SELECT * FROM sqlite_master",
        "SELECT getenv('HOME')",
        "SELECT current_setting('home_directory')",
        "SELECT * FROM which_secret('s3://x', 's3')",
        # other projects
        "SELECT * FROM other.events",
        "SELECT * FROM p_other.events",
        'SELECT * FROM "p_other"."events"',
        "SELECT * FROM memory.p_other.events",
        'SELECT * FROM "p_other.events"',
        "SELECT * FROM p_other..events",
        "SELECT * FROM events e, p_other.users o",
        "DESCRIBE p_other.events",
        "USE p_other",
        "SELECT * FROM query_table('p_other.events')",
        "SELECT * FROM query('SELECT * FROM p_other.events')",
        "SELECT * FROM query_table('x')",
        # look-alikes, comments, several statements, definitions
        'SELECT * FROM "еvents"',  # Cyrillic е
        'SELECT * FROM "events\u200b"',
        'SELECT * FROM "ｅｖｅｎｔｓ"',
        f"SELECT 1 /* hidden */; COPY (SELECT 1) TO '{tmp}/out2.csv'",
        f"SELECT 1 -- comment\n; ATTACH '{db}'",
        f"SELECT 1 /* */ UNION ALL SELECT * FROM '{csv}' /* */",
        f"SELECT 1; SELECT * FROM '{csv}'",
        f"CREATE MACRO m() AS TABLE SELECT * FROM '{csv}'",
        "CREATE TEMP VIEW v AS SELECT 1",
        "SELECT * FROM _ul_view_events",
        "WITH _ul_view_events AS (SELECT 1) SELECT * FROM events",
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
    ]


def _clean(response: httpx.Response) -> None:
    text = response.text
    for marker in (SECRET, OTHER, *CONFIG_TEXTS):
        assert marker not in text, (marker, response.request.content[:200], text[:300])


def test_every_escape_is_a_clean_4xx_and_leaks_nothing(hostile: Hostile) -> None:
    for query in _queries(hostile.tmp):
        for pii in (False, True):
            response = hostile.sql(query, pii=pii)
            assert 400 <= response.status_code < 500, (query[:200], response.status_code, response.text[:300])
            _clean(response)
    assert not (hostile.tmp / "out.csv").exists() and not (hostile.tmp / "out2.csv").exists()
    assert not (hostile.tmp / "exported").exists()


def test_the_findings_are_refused_by_the_check(hostile: Hostile) -> None:
    csv = hostile.tmp / "secret.csv"
    for query in (
        f'SELECT * FROM (WITH "{csv}" AS (SELECT 1) SELECT 1) q, "{csv}"',
        "WITH duckdb_tables AS (SELECT * FROM duckdb_tables) SELECT * FROM duckdb_tables",
        "SELECT * FROM p_other.events",
    ):
        response = hostile.sql(query)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "read_only", response.text


def test_legitimate_sql_still_works_and_sees_only_its_project(hostile: Hostile) -> None:
    ok = [
        ("SELECT count(*) FROM events", [[4]]),
        ("WITH events AS (SELECT * FROM events WHERE event = 'buy') SELECT count(*) FROM events", [[1]]),
        ("WITH b AS (SELECT user_id FROM events), c AS (SELECT * FROM b) SELECT count(*) FROM c", [[4]]),
        ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT sum(n) FROM r", [[6]]),
        ("SELECT count(*) FROM events e, LATERAL (SELECT e.price * 2 AS p) x WHERE x.p > 3", [[2]]),
        ("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM (SELECT 1 FROM identities))", None),
        ("SELECT * FROM events", None),
        ("DESCRIBE events", None),
        ("SELECT count(*) FROM events WHERE event = 'view' UNION ALL SELECT count(*) FROM users", [[2], [2]]),
    ]
    for query, expected in ok:
        response = hostile.sql(query)
        assert response.status_code == 200, (query, response.text)
        if expected is not None:
            assert response.json()["rows"] == expected, query
        _clean(response)


def test_sql_masks_personal_data_without_the_grant(hostile: Hostile) -> None:
    queries = [
        "SELECT phone, email FROM users",
        "SELECT * FROM users",
        "SELECT upper(email), phone || '' FROM users",
        "SELECT id_value FROM identities",
        "SELECT u.phone FROM users u JOIN events e USING (user_id)",
        "WITH p AS (SELECT phone AS x FROM users) SELECT x FROM p",
    ]
    for query in queries:
        masked = hostile.sql(query)
        assert masked.status_code == 200, masked.text
        assert PHONE not in masked.text and EMAIL not in masked.text, (query, masked.text)
        assert "13900000000" not in masked.text, query
    rows = hostile.sql("SELECT phone, email FROM users WHERE first_id = 'L1'").json()["rows"]
    assert rows == [["138****5678", "z***@example.com"]]
    guess = hostile.sql(f"SELECT count(*) FROM users WHERE phone = '{PHONE}'").json()["rows"]
    assert guess == [[0]]  # the comparison meets the masked value: no oracle
    clear = hostile.sql("SELECT phone, email FROM users WHERE first_id = 'L1'", pii=True).json()["rows"]
    assert clear == [[PHONE, EMAIL]]


def _trends(**extra: Any) -> dict[str, Any]:
    return {
        "project": "default",
        "use_cache": False,
        "definition": {
            "kind": "trends",
            "date_range": {"last": 3, "include_current": True},  # the events were sent today
            "series": [{"event": "$any", "math": "total"}],
            **extra,
        },
    }


def test_breakdowns_mask_personal_data_and_filters_on_it_are_refused(hostile: Hostile) -> None:
    by_phone = _trends(breakdown={"property": "phone", "source": "user"})
    masked = hostile.post("/api/v1/query", by_phone)
    assert masked.status_code == 200, masked.text
    labels = {s["breakdown"] for s in masked.json()["result"]["series"]}
    assert "138****5678" in labels and PHONE not in masked.text
    clear = hostile.post("/api/v1/query", by_phone, pii=True)
    assert clear.status_code == 200 and PHONE in {s["breakdown"] for s in clear.json()["result"]["series"]}
    again = hostile.post("/api/v1/query", {**by_phone, "use_cache": True})
    assert PHONE not in again.text  # a cached result of a pii caller is never served to another
    filtered = _trends(filters=[{"property": "phone", "source": "user", "op": "eq", "value": PHONE}])
    refused = hostile.post("/api/v1/query", filtered)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "pii_required", refused.text
    assert "phone" in refused.json()["error"]["message"]
    assert hostile.post("/api/v1/query", filtered, pii=True).status_code == 200


def test_segment_estimates_are_no_oracle_for_personal_data(hostile: Hostile) -> None:
    rules = [
        {"type": "property", "property": "phone", "op": "eq", "value": PHONE},
        {"type": "property", "property": "email", "op": "contains", "value": "zhang"},
        {"all": [{"type": "property", "property": "city", "op": "is_set"},
                 {"not": {"type": "property", "property": "phone", "op": "eq", "value": PHONE}}]},
    ]  # fmt: skip
    for rule in rules:
        response = hostile.post("/api/v1/segments/estimate", {"rule": rule})
        assert response.status_code == 400, response.text
        detail = response.json()["error"]
        assert detail["code"] == "pii_required" and ("phone" in detail["message"] or "email" in detail["message"])
        saved = hostile.post("/api/v1/segments", {"name": "guess", "rule": rule})
        assert saved.status_code == 400 and saved.json()["error"]["code"] == "pii_required", saved.text
    allowed = hostile.post("/api/v1/segments/estimate", {"rule": rules[0]}, pii=True)
    assert allowed.status_code == 200 and allowed.json()["size"] == 1, allowed.text
    city = {"type": "property", "property": "city", "op": "eq", "value": "上海"}
    assert hostile.post("/api/v1/segments/estimate", {"rule": city}).json()["size"] == 1


def test_other_analyses_mask_breakdowns_and_refuse_guesses(hostile: Hostile) -> None:
    funnel = {
        "project": "default",
        "use_cache": False,
        "definition": {
            "kind": "funnel",
            "date_range": {"last": 3, "include_current": True},  # the events were sent today
            "steps": [{"event": "view"}, {"event": "buy"}],
            "breakdown": {"property": "phone", "source": "user"},
        },
    }
    masked = hostile.post("/api/v1/query", funnel)
    assert masked.status_code == 200, masked.text
    assert "138****5678" in masked.text and PHONE not in masked.text
    measure = _trends()
    measure["definition"]["series"] = [{"event": "view", "math": "sum", "property": "phone"}]
    refused = hostile.post("/api/v1/query", measure)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "pii_required", refused.text
    guess = {
        "name": "guess",
        "definition": {
            "kind": "funnel",
            "date_range": {"last": 3, "include_current": True},  # the events were sent today
            "steps": [
                {"event": "view", "filters": [{"property": "email", "source": "user", "op": "eq", "value": EMAIL}]},
                {"event": "buy"},
            ],
            "people": {"step": 1, "status": "converted"},
        },
    }
    made = hostile.post("/api/v1/segments/from-analysis", guess)
    assert made.status_code == 400 and made.json()["error"]["code"] == "pii_required", made.text
