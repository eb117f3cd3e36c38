"""The nightly maintenance job's clustering (``userloop.service.maintenance``): how long it holds the writer, and
how long a collector load started meanwhile waits.

python -m bench.maintenance --events 1000000

Figures: ``cluster_seconds`` (the job's run, the writer held for the rewrite), its ratio to ``copy_seconds`` (a plain
unsorted copy of the same table in the same run: what a rewrite costs without the sort), and ``load_wait_seconds``
(a one-event load started 0.1 s into the clustering, until it committed) against ``load_seconds`` (the same load
with nothing running). The dataset is bench/analytics' generator (events in time order, people interleaved).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.analytics import generate
from bench.harness import main_guard, report
from userloop.ingest import load_json_lines
from userloop.service.maintenance import maintenance
from userloop.store import Workspace
from userloop.store.service_tables import create_tables


def _one_load(ws: Workspace, i: int) -> float:
    record = {"type": "track", "event": "view", "distinct_id": f"bench{i}", "time": 1767600000000 + i,
              "event_id": f"bench-load-{i}", "properties": {}}  # fmt: skip
    started = time.perf_counter()
    load_json_lines(ws.project(), [json.dumps(record)], source="bench")
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.maintenance")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=0, help="People (default: a twentieth of the events).")
    args = parser.parse_args(argv)
    users = args.users or max(1, args.events // 20)
    root = Path(tempfile.mkdtemp(prefix="bench-maintenance-"))
    try:
        generate(root / "ws", args.events, users)
        ws = Workspace.open(root / "ws")
        create_tables(ws.meta)
        project = ws.project()
        base = _one_load(ws, 0)  # the first load registers the record's shape; the reference is the second
        base = _one_load(ws, 1)
        started = time.perf_counter()
        project.con.execute(f"CREATE TABLE main._copy AS SELECT * FROM {project.table('events')}")
        copy = time.perf_counter() - started
        project.con.execute("DROP TABLE main._copy")
        job = maintenance(ws, share=0.0, rows=1)
        waited: list[float] = []
        loader = threading.Timer(0.1, lambda: waited.append(_one_load(ws, 2)))
        started = time.perf_counter()
        loader.start()
        result = job.fn(ws.meta.projects()[0].name)
        cluster = time.perf_counter() - started
        loader.join()
        assert result["clustered"], result
        report("maintenance", "cluster_seconds", cluster, "s", events=result["events"], copy_seconds=copy,
               ratio_to_copy=cluster / copy)  # fmt: skip
        report("maintenance", "load_wait_seconds", waited[0], "s", load_seconds=base, ratio=waited[0] / base)
        ws.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    main_guard(main)
