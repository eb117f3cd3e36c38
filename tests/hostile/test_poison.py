"""Hostile input against a real server: nothing acknowledged is ever lost, and no record stops the others.

Replays the findings of a hostile test of the collector, each against a server on loopback:

1. a record larger than the loader's read size stalled loading, and a restart took the long line for a torn
   tail and deleted the segment (acknowledged events lost);
2. property names that differ only in case made the loader's ``ALTER TABLE`` fail, and the whole chunk, of
   every project, went to the rejects table;
3. thousands of new property names grew the server until the kernel killed it, at every start again.

After each scenario: every acknowledged valid event of every project is stored exactly once (counted by event
id), the refused ones are listed in the rejects with a reason, the collector shows no stuck error, no request
got a 5xx, and the server's peak RSS (VmHWM) stays under :data:`RSS_BOUND_MIB`.
"""

from __future__ import annotations

import gzip
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from tests.collect import serving
from tests.collect.serving import Server, new_server
from userloop.collect.door import MAX_RECORD_BYTES
from userloop.collect.spool import Position, Spool
from userloop.schema.names import MAX_TABLE_PROPERTIES, fold

#: The bound on the server's peak resident memory, whatever the input (it died at 21 GB before).
RSS_BOUND_MIB = 1024

#: A server whose loader fails on records holding FAIL-ME, and whose process dies on CRASH-ME (an OOM kill).
FAULTY_LAUNCH = """
import os, socket, sys, time
from pathlib import Path
import userloop.collect.drain as drain
from userloop.service.runtime import ServiceConfig
from userloop.api.server import serve
from userloop.collect.door import Limits
real = drain.load_json_lines
def up_and_answered():
    # die only once the server listens (Server.start sees it up) and has had time to answer the request
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
def faulty(store, lines, **kwargs):
    for line in lines:
        if "CRASH-ME" in line:
            up_and_answered()
            os._exit(137)
        if "FAIL-ME" in line:
            raise RuntimeError("injected poison")
    return real(store, lines, **kwargs)
drain.load_json_lines = faulty
limits = Limits(max_body_bytes=int(sys.argv[3]), max_records=int(sys.argv[4]), rate_per_second=float(sys.argv[5]),
                burst=float(sys.argv[5]) * 2)
serve(Path(sys.argv[1]), ServiceConfig(port=int(sys.argv[2]), limits=limits, scheduler_tick=0.2), announce=False)
"""


# helpers ------------------------------------------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def track(event_id: str, props: dict[str, Any] | None = None, *, who: str = "h1") -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": "hostile", "distinct_id": who, "time": now_ms()}
    record["event_id"] = event_id
    record["properties"] = props or {}
    return record


def create_project(server: Server, name: str) -> str:
    reply = httpx.post(server.url + "/api/v1/projects", headers=server.admin, json={"name": name}, timeout=30)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["write_key"])


def send(server: Server, key: str, records: list[dict[str, Any]], *, compress: bool = False) -> dict[str, Any]:
    """POST records to the native endpoint; any 5xx fails the test."""
    body = orjson.dumps(records)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if compress:
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    reply = httpx.post(server.url + "/api/v1/events:batch", content=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def stored(server: Server, project: str, prefix: str) -> dict[str, int]:
    """event_id → how many times it is stored, for the ids that start with ``prefix``."""
    escaped = prefix.replace("'", "''")
    rows = server.sql(
        f"SELECT event_id, count(*) FROM events WHERE starts_with(event_id, '{escaped}') GROUP BY event_id", project
    )
    return {str(r[0]): int(r[1]) for r in rows}


def rejects(server: Server, project: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        server.url + "/api/v1/rejects", headers=server.admin, params={"project": project, "limit": 10_000}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def peak_rss_mib(server: Server) -> float:
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def assert_healthy(server: Server) -> dict[str, Any]:
    """Everything loaded, no stuck error, memory under the bound."""
    status = server.settle(timeout=120)
    assert status["last_error"] is None, status
    assert status["durable"] == status["committed"] or status["backlog_bytes"] == 0
    peak = peak_rss_mib(server)
    print(f"server peak RSS {peak:.0f} MiB")  # shown with -s: the figure behind RSS_BOUND_MIB
    assert peak < RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB"
    return status


def exactly_once(counts: dict[str, int], expected: set[str]) -> None:
    missing = expected - counts.keys()
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert set(counts.values()) <= {1}, "some event is stored twice"
    assert counts.keys() <= expected, f"unexpected events: {sorted(counts.keys() - expected)[:3]}"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server with two projects: ``default`` (server.write_key) and ``shop`` (the returned key)."""
    server = new_server(Path(tmp_path_factory.mktemp("poison"))).start()
    try:
        yield server, create_project(server, "shop")
    finally:
        server.stop()


# finding 1: record size ---------------------------------------------------------------------------------------
def test_a_record_over_the_limit_is_refused_alone_and_one_at_the_limit_is_kept(two: tuple[Server, str]) -> None:
    server, _ = two

    def sized(event_id: str, size: int) -> dict[str, Any]:
        record = track(event_id, {"blob": ""})
        record["properties"]["blob"] = "x" * (size - len(orjson.dumps(record)))
        assert len(orjson.dumps(record)) == size
        return record

    records = [track("size-a"), sized("size-at", MAX_RECORD_BYTES), sized("size-over", MAX_RECORD_BYTES + 1)]
    reply = send(server, server.write_key, [*records, track("size-b")])
    assert reply["accepted"] == 3
    [refused] = reply["rejected"]
    assert refused["index"] == 2 and refused["field"] == "properties.blob"
    assert f"{MAX_RECORD_BYTES + 1} bytes" in refused["reason"] and str(MAX_RECORD_BYTES) in refused["reason"]

    # a 45 MB string in a gzip of about 50 kB: refused alone, neighbours kept
    bomb = [track("bomb-a"), track("bomb-big", {"blob": "A" * (45 << 20)}), track("bomb-b")]
    reply = send(server, server.write_key, bomb, compress=True)
    assert reply["accepted"] == 2 and [r["index"] for r in reply["rejected"]] == [1]

    assert_healthy(server)
    exactly_once(stored(server, "default", "size-"), {"size-a", "size-at", "size-b"})
    exactly_once(stored(server, "default", "bomb-"), {"bomb-a", "bomb-b"})
    reasons = [r["reason"] for r in rejects(server, "default") if r["field"] == "properties.blob"]
    assert len(reasons) == 2 and all("limit" in r for r in reasons)


# finding 2: names that differ only in case ---------------------------------------------------------------------
def test_fold_is_how_duckdb_compares_column_names() -> None:
    """Case-insensitive means what DuckDB means: ASCII letters only (``ß``/``SS``, ``ı``/``I`` stay apart)."""
    pairs = [("Casey", "casey"), ("ORDER_AMOUNT", "order_amount"), ("straße", "STRASSE"), ("ı", "I"), ("İ", "i")]
    pairs += [("É", "é"), ("\u212a", "k"), ("Σ", "σ"), ("$Rev", "$rEV")]
    con = duckdb.connect()
    for a, b in pairs:
        con.execute("CREATE OR REPLACE TABLE t (x INT)")
        con.execute(f'ALTER TABLE t ADD COLUMN "{a}" INT')
        try:
            con.execute(f'ALTER TABLE t ADD COLUMN "{b}" INT')
            same = False
        except duckdb.CatalogException:
            same = True
        assert (fold(a) == fold(b)) == same, (a, b)


def test_case_collisions_refuse_only_the_colliding_records_of_one_project(two: tuple[Server, str]) -> None:
    server, shop = two
    send(server, server.write_key, [track("case-seed", {"order_amount": 1})])
    server.settle()
    time.sleep(0.3)  # the door's registry snapshot now knows order_amount

    good_default = [track(f"case-d{i}", {"order_amount": i, "Revenue": i}) for i in range(300)]
    colliding = [track("case-upper", {"ORDER_AMOUNT": 5}), track("case-both", {"Casey": 1, "casey": 2})]
    good_shop = [track(f"case-s{i}", {"revenue": i}) for i in range(450)]
    replies: dict[str, dict[str, Any]] = {}

    def post(name: str, key: str, records: list[dict[str, Any]]) -> None:
        replies[name] = send(server, key, records)

    threads = [
        threading.Thread(
            target=post, args=("d", server.write_key, [*good_default[:150], *colliding, *good_default[150:]])
        ),
        threading.Thread(target=post, args=("s", shop, good_shop)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # across two requests: Revenue came first in default, so revenue is refused there (and fine in shop)
    replies["d2"] = send(server, server.write_key, [track("case-lower", {"revenue": 1}), track("case-d-last")])
    # through a foreign SDK: Segment's "Straße" and "straße" map to Stra_e and stra_e, one column
    segment = {"batch": [{"type": "track", "event": "hostile", "anonymousId": "h9", "messageId": "case-seg",
                          "properties": {"Straße": 1, "straße": 2}}]}  # fmt: skip
    seg_reply = httpx.post(server.url + "/v1/batch", json=segment, auth=(server.write_key, ""), timeout=30)
    assert seg_reply.status_code == 200

    assert [r["index"] for r in replies["d"]["rejected"]] == [150, 151]
    assert replies["s"]["accepted"] == 450 and replies["d2"]["accepted"] == 1
    assert_healthy(server)
    expected = {f"case-d{i}" for i in range(300)} | {"case-seed", "case-d-last"}
    exactly_once(stored(server, "default", "case-"), expected)
    exactly_once(stored(server, "shop", "case-"), {f"case-s{i}" for i in range(450)})
    reasons = [str(r["reason"]) for r in rejects(server, "default")]
    for a, b in [("ORDER_AMOUNT", "order_amount"), ("casey", "Casey"), ("revenue", "Revenue"), ("stra_e", "Stra_e")]:
        assert any(a in r and b in r and "case" in r for r in reasons), (a, b)
    assert not [r for r in rejects(server, "shop") if "case" in str(r["reason"])]


# finding 3: too many properties --------------------------------------------------------------------------------
def test_thousands_of_new_property_names_are_capped_with_memory_bounded(two: tuple[Server, str]) -> None:
    server, _ = two
    key = create_project(server, "wide")
    cap = MAX_TABLE_PROPERTIES["events"]
    # the hostile request: 8 records × 1,000 new names, about 1.5 MB
    wide = [track(f"wide-{r}", {f"p{r}_{i}": i for i in range(1000)}) for r in range(8)]
    reply = send(server, key, wide)
    assert reply["accepted"] == cap // 1000
    assert all("limit of 2000 event properties" in r["reason"] for r in reply["rejected"])
    # then 3,000 more new names over three requests, each with a valid neighbour
    for n in range(3):
        more = [track(f"more-{n}-{i}", {f"q{n}_{i}_{j}": j for j in range(100)}) for i in range(10)]
        reply = send(server, key, [*more, track(f"more-ok-{n}", {"p0_0": 1})])
        assert reply["accepted"] == 1 and len(reply["rejected"]) == 10

    assert_healthy(server)
    exactly_once(stored(server, "wide", "wide-"), {"wide-0", "wide-1"})
    exactly_once(stored(server, "wide", "more-"), {"more-ok-0", "more-ok-1", "more-ok-2"})
    props = httpx.get(server.url + "/api/v1/properties", headers=server.admin, params={"project": "wide"}).json()
    assert len([p for p in props if p["table"] == "events"]) == cap
    assert len(rejects(server, "wide")) == 6 + 30


# a real poison, through the door, in the middle of two projects' load ----------------------------------------
def test_a_poison_record_in_the_middle_of_two_projects_batches_touches_nothing_else(two: tuple[Server, str]) -> None:
    server, shop = two
    poison = {"type": "profile_set", "distinct_id": "h1", "time": 9_000_000_000_000_000_000, "properties": {"x": 1}}
    default = [track(f"mid-d{i}", {"k": i}) for i in range(500)]
    threads = [
        threading.Thread(target=send, args=(server, server.write_key, [*default[:250], poison, *default[250:]])),
        threading.Thread(target=send, args=(server, shop, [track(f"mid-s{i}", {"k": i}) for i in range(500)])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_healthy(server)
    exactly_once(stored(server, "default", "mid-"), {f"mid-d{i}" for i in range(500)})
    exactly_once(stored(server, "shop", "mid-"), {f"mid-s{i}" for i in range(500)})
    assert any("9000000000000000000" in str(r["reason"]) for r in rejects(server, "default"))


# the spool itself -----------------------------------------------------------------------------------------------
def test_the_spool_reads_lines_of_any_length_and_skips_only_a_closed_segments_torn_tail(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    long = b"E\tdefault\tnative\tr\t" + b"L" * (3 << 20) + b"\n"
    spool.append(b"E\tdefault\tnative\tr\tshort\n" + long).result()
    spool.append(b"E\tdefault\tnative\tr\tafter\n").result()
    data, end = spool.read(spool.committed(), 1 << 20)
    assert data == b"E\tdefault\tnative\tr\tshort\n"  # whole lines only, as many as fit
    data, end = spool.read(end, 1 << 20)
    assert data == long  # one line longer than the read: read on to its newline
    spool.close()
    segment = spool.path / f"seg-{end.segment:012d}.log"
    with segment.open("ab") as f:
        f.write(b"E\tdefault\tnative\tr\t{torn")  # a crash in the middle of a write
    reopened = Spool(tmp_path, fsync=False)  # the segment is closed now
    data, after = reopened.read(end, 1 << 20)
    assert data == b"E\tdefault\tnative\tr\tafter\n"
    data, moved = reopened.read(after, 1 << 20)
    assert data == b"" and moved == Position(end.segment + 1, 0)  # only the torn fragment is skipped
    reopened.commit(Position(end.segment, 0))
    assert segment.exists(), "a segment is deleted only once the committed position is past all of it"
    reopened.commit(moved)
    assert not segment.exists()
    reopened.close()


# the loader's own defences: a spool written before the door had these limits ---------------------------------
def _line(project: str, record: dict[str, Any]) -> bytes:
    return b"E\t%s\tnative\tlegacy\t%s\n" % (project.encode(), orjson.dumps(record))


def test_a_spool_with_a_long_line_collisions_and_wide_records_loads_after_restart(tmp_path: Path) -> None:
    server = new_server(tmp_path).start()
    try:
        create_project(server, "shop")
    finally:
        server.stop()
    spool = server.path / "spool"
    segment = max(int(p.name[4:16]) for p in spool.glob("seg-*.log")) + 1
    lines = [_line("default", track(f"leg-d{i}", {"n": i})) for i in range(330)]
    lines.append(_line("default", track("leg-d-long", {"blob": "L" * (17 << 20)})))  # longer than one read
    lines += [_line("default", track(f"leg-d{i}", {"n": i})) for i in range(330, 659)]
    shop = [_line("shop", track(f"leg-s{i}", {("Revenue" if i % 2 else "revenue"): i})) for i in range(600)]
    shop.append(_line("shop", track("leg-s-both", {"Casey": 1, "casey": 2})))
    shop += [_line("shop", track(f"leg-s-wide{r}", {f"w{r}_{i}": i for i in range(1000)})) for r in range(3)]
    shop += [_line("shop", track(f"leg-s{i}", {"n": i})) for i in range(600, 656)]
    lines = [x for pair in zip(lines, shop[: len(lines)], strict=False) for x in pair] + shop[len(lines) :]
    data = b"".join(lines) + b'E\tdefault\tnative\tlegacy\t{"type":"track","event":"torn'  # a crash mid-write
    (spool / f"seg-{segment:012d}.log").write_bytes(data)

    server.start()
    try:
        assert_healthy(server)
        default_ids = {f"leg-d{i}" for i in range(659)} | {"leg-d-long"}
        exactly_once(stored(server, "default", "leg-"), default_ids)
        # revenue (row 0) came first: the Revenue records are refused, as is the record with both spellings
        shop_ids = {f"leg-s{i}" for i in range(0, 600, 2)} | {f"leg-s{i}" for i in range(600, 656)}
        # the cap: shop holds revenue, Casey and n, so wide0's 1,000 names fit and wide1's do not all fit
        exactly_once(stored(server, "shop", "leg-s"), shop_ids | {"leg-s-wide0"})
        reasons = [str(r["reason"]) for r in rejects(server, "shop")]
        assert sum("'Revenue' differs only in case from 'revenue'" in r for r in reasons) == 300
        assert sum("'casey'" in r and "'Casey'" in r for r in reasons) == 1
        assert sum("limit of 2000 event properties" in r for r in reasons) == 2
        assert not rejects(server, "default")
        assert not (spool / f"seg-{segment:012d}.log").exists(), "a loaded segment is deleted once committed"
    finally:
        server.stop()


# poison the loader fails on, and poison that kills the process --------------------------------------------------
def _faulty(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setattr(serving, "LAUNCH", FAULTY_LAUNCH)
    return new_server(tmp).start()


def _settle_through_crashes(server: Server, *, restarts: int, timeout: float = 90) -> int:
    """Restart the server whenever it dies, until everything is loaded; returns how many restarts it took."""
    deadline = time.monotonic() + timeout
    done = 0
    # one client for all the polls: an httpx.get each loads the CA bundle, CPU the restarting server needs
    with httpx.Client(headers=server.admin, timeout=5) as client:
        while time.monotonic() < deadline:
            assert server.proc is not None
            if server.proc.poll() is not None:
                done += 1
                assert done <= restarts, f"the server keeps dying ({done} restarts): a crash loop"
                server.proc = None
                server.start()
                continue
            try:
                doc = client.get(server.url + "/api/v1/collector").json()
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if doc["durable"] == doc["committed"]:
                return done
            time.sleep(0.1)
    raise TimeoutError("the spool was not loaded")


def test_a_failing_record_is_bisected_out_and_each_project_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _faulty(tmp_path, monkeypatch)
    try:
        shop = create_project(server, "shop")
        default = [track(f"bis-d{i}", {"k": i}) for i in range(500)]
        default[250] = track("bis-poison", {"note": "FAIL-ME"})
        threads = [
            threading.Thread(target=send, args=(server, server.write_key, default)),
            threading.Thread(target=send, args=(server, shop, [track(f"bis-s{i}", {"k": i}) for i in range(500)])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert_healthy(server)
        exactly_once(stored(server, "default", "bis-"), {f"bis-d{i}" for i in range(500)} - {"bis-d250"})
        exactly_once(stored(server, "shop", "bis-"), {f"bis-s{i}" for i in range(500)})
        [poison] = [r for r in rejects(server, "default") if "loader failed" in str(r["reason"])]
        assert "injected poison" in poison["reason"] and "bis-poison" in poison["raw"]
        assert not rejects(server, "shop")
    finally:
        server.stop()


def test_a_record_that_kills_the_server_is_set_aside_after_a_few_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _faulty(tmp_path, monkeypatch)
    try:
        records = [track(f"kill-{i}", {"k": i}) for i in range(100)]
        records[20] = track("kill-poison", {"note": "CRASH-ME"})
        send(server, server.write_key, records)  # acknowledged: on disk before the loader dies on it
        restarts = _settle_through_crashes(server, restarts=5)
        assert restarts >= 1
        assert_healthy(server)
        exactly_once(stored(server, "default", "kill-"), {f"kill-{i}" for i in range(100)} - {"kill-20"})
        [aside] = [r for r in rejects(server, "default") if "set aside" in str(r["reason"])]
        assert "kill-poison" in aside["raw"] and "3 times" in aside["reason"]
    finally:
        server.stop(signal.SIGKILL)
