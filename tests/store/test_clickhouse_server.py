"""The ClickHouse backend through the wire: clickhouse-connect (HTTP) against ClickHouse's engine in another process.

The endpoint (:mod:`userloop.store.chdb_http`, chdb behind ClickHouse's HTTP interface) runs as its own process for
the module; the store reaches it by a ``clickhouse://user:password@127.0.0.1:PORT/default`` URL, exactly as it
reaches a server. The checks are the in-process parity checks' own (every analysis kind, the mirror's counts, the
migrate command, deadlines), on a few fixed logs rather than the full random run: the engine is the same, what is
checked here is the wire (Arrow both ways, settings, sessions, kills, errors, secrets)."""

from __future__ import annotations

import base64
import gzip
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute
import pytest
from sqlglot import exp

from tests.query.logs import ANON, BASE_MS, CHANNELS, EVENTS, LOGIN, fresh_project, load
from tests.store.chdb_endpoint import chdb_endpoint
from tests.store.test_clickhouse_parity import DEFINITIONS, _run, _under_deadline, same
from userloop.core.errors import QueryError, ValidationError
from userloop.query.engine import Engine
from userloop.store import Workspace
from userloop.store.clickhouse import ClickHouseStore, ServerAddress, redact
from userloop.store.mirror import copy_project
from userloop.store.settings import set_money_property
from userloop.store.sqlbuild import sql, table

USER = "userloop"
PASSWORD = "s3cret pass/word"  # a space and a slash: percent-encoded in the URL


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The endpoint in its own process: (the URL's host:port part, port)."""
    with chdb_endpoint(tmp_path_factory.mktemp("chdb-http"), USER, PASSWORD) as where:
        yield where


@pytest.fixture(scope="module")
def server_url(endpoint: tuple[str, int]) -> str:
    return f"clickhouse://{USER}:s3cret%20pass%2Fword@{endpoint[0]}/default"


@pytest.fixture(scope="module")
def ch(server_url: str) -> Iterator[ClickHouseStore]:
    """This module's store is the server (it overrides the in-process one of tests/store/conftest.py)."""
    store = ClickHouseStore(server_url)
    yield store
    store.close()


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """This interpreter in another process, with this process's import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def fixed_log(seed: int, n: int = 60, days: int = 14) -> list[dict[str, Any]]:
    """A log of the random logs' shape (tests/query/logs.py: ties, both properties, identity merges), drawn from a
    seeded generator so the wire is checked on the same data every run."""
    rng = random.Random(seed)
    instants = [BASE_MS + x * 15 * 60_000 for x in rng.sample(range(days * 96), 40)]
    records: list[dict[str, Any]] = []
    for i in range(n):
        who = rng.choice(ANON + LOGIN)
        props: dict[str, Any] = {"$is_login_id": True} if who.startswith("L") else {}
        if rng.random() < 0.6:
            props["amount"] = float(rng.randint(0, 100))
        if rng.random() < 0.6:
            props["channel"] = rng.choice(CHANNELS)
        records.append({"type": "track", "event": rng.choice(EVENTS), "distinct_id": who,
                        "time": rng.choice(instants), "event_id": f"e{i:03d}", "properties": props})  # fmt: skip
    for anon in rng.sample(ANON, 3):
        records.insert(rng.randint(0, len(records)), {
            "type": "track_signup", "event": "$SignUp", "distinct_id": rng.choice(LOGIN), "original_id": anon,
            "time": rng.choice(instants), "event_id": f"s_{anon}", "properties": {"$is_login_id": True},
        })  # fmt: skip
    return records


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_kind_gives_the_same_numbers_through_the_wire(ws: Workspace, ch: ClickHouseStore, seed: int) -> None:
    _, duck = fresh_project(ws)
    load(duck, fixed_log(seed))
    set_money_property(duck, "amount")
    counts = copy_project(duck, ch)
    assert all(c.equal for c in counts) and next(c.clickhouse for c in counts if c.table == "events") > 0
    on_duck = Engine(duck, "Asia/Shanghai")
    on_ch = Engine(ch.project(duck.schema), "Asia/Shanghai")
    for definition in DEFINITIONS:
        got, want = _run(on_ch, definition), _run(on_duck, definition)
        assert same(got, want), (definition, got, want)


def test_arrow_goes_both_ways_with_types_and_nulls(ch: ClickHouseStore) -> None:
    from datetime import datetime

    data = pa.table({
        "n": pa.array([1, None, 3], pa.int64()), "s": ["a", None, "c'"], "f": [0.5, None, 2.0],
        "t": pa.array([datetime(2026, 1, 1), None, datetime(2026, 3, 1, 2, 3, 4, 5)], pa.timestamp("us")),
        "l": pa.array([["x"], [], ["y", None]], pa.list_(pa.string())),
    })  # fmt: skip
    with ch.session() as s:
        s.register("rows", data)
        back = s.arrow(sql("SELECT n, s, f, t, l FROM rows ORDER BY n NULLS LAST"))
        assert back.column("t").type == pa.timestamp("us")  # naive UTC, as DuckDB gives
        rows = data.to_pylist()
        assert back.to_pylist() == [rows[0], rows[2], rows[1]]
        empty = s.arrow(sql("SELECT n, s FROM rows WHERE n > 100"))
        assert empty.num_rows == 0 and empty.column_names == ["n", "s"]
    with ch.session() as other, pytest.raises(QueryError):  # a session's temporary tables are its own
        _under_deadline(other, 30, "SELECT count(*) FROM rows", watched=False)


def test_batches_are_inserted_in_one_stream(ch: ClickHouseStore) -> None:
    batches = [pa.record_batch({"k": pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())}) for i in range(5)]
    reader = pa.RecordBatchReader.from_batches(batches[0].schema, iter(batches))
    target = exp.table_("ins", db="p_wire", quoted=True)
    with ch.writer() as s:
        s.execute(sql("CREATE DATABASE IF NOT EXISTS p_wire"))
        s.execute(sql("DROP TABLE IF EXISTS $t", t=target))
        s.execute(sql("CREATE TABLE $t (k Int64) ENGINE = Memory", t=target))
        assert s.insert_arrow(target, reader) == 5000
        assert s.fetchone(sql("SELECT count(*), sum(k) FROM $t", t=target)) == (5000, sum(range(5000)))
        read = s.batches(sql("SELECT k, CAST(k AS TIMESTAMP) AS t FROM $t ORDER BY k", t=target), rows=700)
        got = list(read)
        assert read.schema.field("t").type == pa.timestamp("us")  # naive UTC, batch by batch
        assert max(b.num_rows for b in got) <= 700 and sum(b.num_rows for b in got) == 5000
        assert pa.Table.from_batches(got).column("k").to_pylist() == list(range(5000))
        assert s.batches(sql("SELECT k FROM $t WHERE k < 0", t=target)).read_all().num_rows == 0
        many = s.batches(sql("SELECT number AS n FROM numbers(300000)")).read_all()  # several engine blocks
        assert many.num_rows == 300_000 and pa.compute.sum(many.column("n")).as_py() == sum(range(300_000))


def test_a_deadline_kills_the_statement_on_the_server(ch: ClickHouseStore) -> None:
    """Unlike chdb in process, a server stops the running statement (KILL QUERY by its id): the user reads the
    timeout long before the statement would have ended, and the server runs nothing of it afterwards."""
    started = time.monotonic()
    slow = "SELECT count(*) FROM numbers(20000000000) WHERE sipHash64(number) % 7 = 1"  # minutes, unless killed
    with ch.session() as s, pytest.raises(QueryError) as caught:
        _under_deadline(s, 0.5, slow)
    assert caught.value.code == "query_timeout"
    assert time.monotonic() - started < 10
    with ch.session() as s:
        running = sql("SELECT count(*) FROM system.processes WHERE query LIKE '%sipHash64(number)%' "
                      "AND query NOT LIKE '%system.processes%'")  # fmt: skip
        for _ in range(50):
            if s.scalar(running) == 0:
                break
            time.sleep(0.1)
        assert s.scalar(running) == 0


def test_the_migrate_command_moves_a_workspace_to_a_server(tmp_path: Path, server_url: str) -> None:
    """``userloop migrate --to clickhouse --url clickhouse://…`` in its own process (a third process on the same
    engine), counts verified; the password is shown nowhere."""
    workspace, _ = Workspace.init(tmp_path / "ws")
    load(workspace.project(), fixed_log(5))
    workspace.close()
    cli = ["-m", "userloop.cli.main"]
    args = ["migrate", "--to", "clickhouse", "--url", server_url, "-w", str(tmp_path / "ws")]
    done = _python(*cli, *args, "--json")
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert "s3cret" not in done.stdout and out["url"] == redact(server_url) and "***" in out["url"]
    tables = {r["table"]: (r["duckdb"], r["clickhouse"]) for r in out["tables"]}
    assert tables["events"][0] > 0 and all(r["equal"] for r in out["tables"])
    text = _python(*cli, *args)
    assert text.returncode == 0 and "行数一致" in text.stdout and "s3cret" not in text.stdout + text.stderr
    wrong = server_url.replace("s3cret", "wrong")
    bad = _python(*cli, *args[:4], wrong, *args[5:], "--json")
    assert bad.returncode != 0 and "wrong" not in bad.stdout + bad.stderr
    assert "AUTHENTICATION_FAILED" in bad.stdout + bad.stderr


def test_server_urls_are_parsed_and_their_passwords_hidden() -> None:
    a = ServerAddress.parse("clickhouses://u%40x:p%3Aw@ch.example.com/analytics?verify=false")
    assert (a.host, a.port, a.user, a.password, a.database, a.secure, a.verify) == (
        "ch.example.com", 8443, "u@x", "p:w", "analytics", True, False)  # fmt: skip
    b = ServerAddress.parse("clickhouse://h:9000")
    assert (b.port, b.user, b.password, b.database, b.secure) == (9000, "default", "", "default", False)
    assert redact("clickhouse://u:secret@h:8123/db") == "clickhouse://u:***@h:8123/db"
    assert redact("chdb:///srv/ch") == "chdb:///srv/ch"
    for bad in ("clickhouse://u:secret@/db", "clickhouse://u:secret@h/a/b", "clickhouse://u:secret@h?x=1"):
        with pytest.raises(ValidationError) as caught:
            ServerAddress.parse(bad)
        assert "secret" not in str(caught.value)


def test_a_kill_that_cannot_reach_the_server_is_best_effort() -> None:
    """interrupt() runs on a deadline's timer thread: a server gone away fails the statement, not the timer."""
    from userloop.store.clickhouse_server import HttpLink

    def unreachable() -> None:
        raise QueryError("the ClickHouse server at clickhouse://u:***@h:1/default cannot be used")

    link = HttpLink(client=None, control=unreachable)
    link._start()  # a statement is running
    link.cancel()


def test_a_refused_login_names_the_url_without_its_password(endpoint: tuple[str, int]) -> None:
    with pytest.raises(QueryError) as caught:
        ClickHouseStore(f"clickhouse://{USER}:not-it@{endpoint[0]}/default")
    assert "not-it" not in str(caught.value) and "***" in str(caught.value)


def _post(port: int, query: str = "", body: bytes = b"", headers: dict[str, str] | None = None,
          auth: bool = True) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    url = f"http://127.0.0.1:{port}/?{query}"
    hdrs = dict(headers or {})
    if auth:
        hdrs["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(url, data=body or None, headers=hdrs, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_the_endpoint_speaks_clickhouses_http_interface(endpoint: tuple[str, int]) -> None:
    port = endpoint[1]
    assert _post(port, auth=False)[2] == b"Ok.\n"
    status, headers, body = _post(port, "query=SELECT%201", auth=False)
    assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "516" and body.startswith(b"Code: 516.")
    status, headers, body = _post(port, "default_format=CSV&param_x=41", b"SELECT {x:UInt8} + 1 AS y")
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b"42\n", "CSV")
    # settings as parameters hold for that statement only
    setting = "SELECT getSetting('max_threads') FORMAT TSV"
    assert _post(port, "session_id=s1&max_threads=3", setting.encode())[2] == b"3\n"
    assert _post(port, "session_id=s1", setting.encode())[2] != b"3\n"
    assert _post(port, "session_id=s1&max_threads=3", b"SET max_threads = 2")[0] == 200  # the statement's own SET
    assert _post(port, "session_id=s1&max_threads=3", setting.encode())[2] == b"3\n"  # then the parameter again
    # a statement with the body's rows, gzip-compressed; the table is dropped again
    _post(port, "", b"CREATE TABLE default.gz (a Int32) ENGINE = Memory")
    sent = _post(port, "query=INSERT%20INTO%20default.gz%20FORMAT%20CSV", gzip.compress(b"1\n2\n3\n"),
                 {"Content-Encoding": "gzip"})  # fmt: skip
    assert sent[0] == 200 and orjson.loads(sent[1]["X-ClickHouse-Summary"])["written_rows"] == "3"
    assert _post(port, "", b"SELECT sum(a) FROM default.gz")[2] == b"6\n"
    _post(port, "", b"DROP TABLE default.gz")
    status, headers, body = _post(port, "", b"SELECT nope")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] == "47" and b"DB::Exception" in body
    missing = _post(port, "session_id=never&session_check=1", b"SELECT 1")
    assert missing[1]["X-ClickHouse-Exception-Code"] == "372"


def test_sessions_in_many_threads_keep_to_themselves(ch: ClickHouseStore) -> None:
    """Sessions at the same time (as a service's requests are): each reads its own temporary table, every time."""
    from concurrent.futures import ThreadPoolExecutor

    def work(k: int) -> list[int]:
        with ch.session() as s:
            s.register("mine", pa.table({"v": pa.array([k] * (k + 1), pa.int64())}))
            return [s.scalar(sql("SELECT sum(v) FROM mine")) for _ in range(15)]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(12)))
    assert results == [[k * (k + 1)] * 15 for k in range(12)]


def test_a_client_that_hangs_up_cancels_its_statement(endpoint: tuple[str, int]) -> None:
    port = endpoint[1]
    body = b"SELECT count(*) FROM numbers(20000000000) WHERE sipHash64(number) % 11 = 3"
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    running = b"SELECT count(*) FROM system.processes WHERE query LIKE '% 11 = 3%' AND query NOT LIKE '%system%'"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /?query_id=hangs-up HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + login +
                     b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        time.sleep(1)
        assert _post(port, "", running)[2] == b"1\n"  # it runs while the client waits
    for _ in range(100):
        if _post(port, "", running)[2] == b"0\n":
            break
        time.sleep(0.1)
    assert _post(port, "", running)[2] == b"0\n"


def test_two_stores_in_two_processes_share_the_engine(ch: ClickHouseStore, server_url: str) -> None:
    target = table("p_wire", "shared")
    with ch.writer() as s:
        s.execute(sql("CREATE DATABASE IF NOT EXISTS p_wire"))
        s.execute(sql("DROP TABLE IF EXISTS $t", t=target))
    code = (
        "import sys, pyarrow as pa; from sqlglot import exp; from userloop.store.clickhouse import ClickHouseStore\n"
        "from userloop.store.sqlbuild import sql, table\n"
        "st = ClickHouseStore(sys.argv[1])\n"
        "with st.writer() as s:\n"
        "    s.execute(sql('CREATE TABLE $t (x Int64) ENGINE = Memory', t=table('p_wire', 'shared')))\n"
        "    s.insert_arrow(exp.table_('shared', db='p_wire', quoted=True), pa.table({'x': [1, 2, 3]}))\n"
        "st.close()\n"
    )
    done = _python("-c", code, server_url)
    assert done.returncode == 0, done.stderr
    with ch.session() as s:
        assert s.fetchone(sql("SELECT count(*), sum(x) FROM $t", t=target)) == (3, 6)
