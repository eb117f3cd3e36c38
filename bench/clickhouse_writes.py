"""The write path into ClickHouse (:mod:`userloop.store.clickhouse_writes`): how fast the loader writes into chdb.

Run from the repository root::

    python -m bench.clickhouse_writes [--events 500000] [--batch 50000]

The same deterministic stream of Sensors-format records (track events of anonymous and login ids, with sign-ups
that merge persons) is loaded batch by batch, through :func:`userloop.ingest.load_json_lines`, into:

* ``loader_to_chdb_events_per_s``: a workspace whose events also live in chdb (``[storage] events_url``): each
  batch checked and resolved in DuckDB, recorded in the outbox, then sent as one deduplicated ``INSERT`` of Arrow
  rows, with its person overrides; the reference is a bare ``INSERT`` of the very same Arrow batches (read back
  from DuckDB, one insert per batch) into a plain copy of the ClickHouse table, in the same run;
* ``shipping_events_per_s``: the shipments alone (outbox read, deduplicated inserts, overrides, small tables),
  against the same bare inserts;
* ``loader_duckdb_events_per_s``: the same stream into a DuckDB-only workspace (the cost of the write path is the
  ratio);
* ``squash_seconds``: folding every override into the events afterwards (partitions rewritten).

The figures are checked: events in chdb equal events in DuckDB, and no event of a merged person is left under its
old person after the squash.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

from bench.harness import data_dir, report

BASE_MS = 1_764_547_200_000  # 2025-12-01 00:00 UTC
NOW_MS = BASE_MS + 40 * 86_400_000


def stream(events: int, batch: int) -> list[list[str]]:
    """``events`` track records in batches of ``batch``, and a sign-up every 50 records (an anonymous id bound to a
    login id: a merge of two persons when both were seen in an earlier batch)."""
    out = []
    people = max(events // 20, 10)
    for lo in range(0, events, batch):
        lines = []
        for i in range(lo, min(lo + batch, events)):
            k = (i * 7919) % people
            login = k % 3 == 0
            props: dict[str, object] = {"amount": float(i % 97), "channel": "abc"[i % 3]}
            if login:
                props["$is_login_id"] = True
            lines.append(json.dumps({"type": "track", "event": ("view", "cart", "pay")[i % 3],
                                     "distinct_id": f"L{k}" if login else f"a{k}",
                                     "time": BASE_MS + (i * 37_000) % (30 * 86_400_000), "event_id": f"e{i}",
                                     "properties": props}))  # fmt: skip
        for j in range(lo, min(lo + batch, events), 50):  # each anonymous id signs up once, most in a later batch
            k = (j // 50 * 37) % people
            if k % 3:
                lines.append(json.dumps({"type": "track_signup", "event": "$SignUp", "distinct_id": f"L{k - k % 3}",
                                         "original_id": f"a{k}", "time": BASE_MS + j, "event_id": f"s{j}",
                                         "properties": {"$is_login_id": True}}))  # fmt: skip
        out.append(lines)
    return out


def run(events: int, batch: int) -> None:
    from sqlglot import exp

    from userloop.ingest import load_json_lines
    from userloop.store import Workspace
    from userloop.store.clickhouse import ClickHouseStore
    from userloop.store.clickhouse_writes import attach, writes_of
    from userloop.store.sqlbuild import sql

    batches = stream(events, batch)
    root = data_dir() / f"clickhouse-writes-{events}"
    shutil.rmtree(root, ignore_errors=True)
    store = ClickHouseStore(f"chdb://{root / 'ch'}")

    duck_only, _ = Workspace.init(root / "duck")
    started = time.perf_counter()
    for lines in batches:
        load_json_lines(duck_only.project(), lines, source="bench", now_ms=NOW_MS)
    duck_s = time.perf_counter() - started
    duck_only.close()

    ws, _ = Workspace.init(root / "written")
    attach(ws.events, store.url, store=store)
    project = ws.project()
    writes = writes_of(project)
    assert writes is not None
    writes.refresh()  # lay out the (empty) project before timing
    shipping = [0.0]
    ship = writes.ship

    def timed_ship() -> int:  # the loader calls the project's one ProjectWrites: its shipments timed alone
        begun = time.perf_counter()
        try:
            return ship()
        finally:
            shipping[0] += time.perf_counter() - begun

    writes.ship = timed_ship  # type: ignore[method-assign]
    started = time.perf_counter()
    for lines in batches:
        load_json_lines(project, lines, source="bench", now_ms=NOW_MS)
    written_s = time.perf_counter() - started
    stored = int(project.scalar(sql("SELECT count(*) FROM $e", e=project.ref("events"))))

    parts = exp.table_("event_parts", db=project.schema, quoted=True)
    bare = exp.table_("bare", db=project.schema, quoted=True)
    with project.session() as duck:
        arrow = duck.arrow(sql("SELECT * FROM $e", e=project.ref("events")))
    chunks = [arrow.slice(lo, batch) for lo in range(0, arrow.num_rows, batch)]
    with store.writer() as ch:
        ch.execute(exp.Create(this=bare, kind="TABLE", expression=parts.copy()))
        started = time.perf_counter()
        for chunk in chunks:
            ch.insert_arrow(bare.copy(), chunk)
        bare_s = time.perf_counter() - started
        in_ch = int(ch.scalar(sql("SELECT count(*) FROM $e", e=exp.table_("events", db=project.schema))))
    overrides = writes.pending_overrides()
    started = time.perf_counter()
    folded = writes.squash()
    squash_s = time.perf_counter() - started
    with store.writer() as ch:
        left = ch.scalar(sql("SELECT count(*) FROM $p WHERE user_id NOT IN (SELECT user_id FROM $u)",
                             p=parts, u=exp.table_("users", db=project.schema, quoted=True)))  # fmt: skip

    report("clickhouse_writes", "loader_to_chdb_events_per_s", stored / written_s, "events/s", events=stored,
           batches=len(batches), seconds=written_s, reference="bare chdb INSERT of the same Arrow batches",
           reference_value=stored / bare_s, ratio=(stored / bare_s) / (stored / written_s))  # fmt: skip
    report("clickhouse_writes", "shipping_events_per_s", stored / shipping[0], "events/s", seconds=shipping[0],
           reference="bare chdb INSERT of the same Arrow batches", reference_value=stored / bare_s,
           ratio=shipping[0] / bare_s)  # fmt: skip
    report("clickhouse_writes", "loader_duckdb_events_per_s", stored / duck_s, "events/s", events=stored,
           seconds=duck_s, write_path_cost=written_s / duck_s)  # fmt: skip
    report("clickhouse_writes", "squash_seconds", squash_s, "s", overrides=overrides, persons_folded=folded)
    ws.close()
    store.close()
    if in_ch != stored or left:
        print(f"ClickHouse holds {in_ch} events, DuckDB {stored}; {left} under a merged person", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clickhouse_writes")
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args(argv)
    run(args.events, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
