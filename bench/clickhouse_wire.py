"""What the wire costs: the ClickHouse backend through clickhouse-connect (HTTP) against the same engine in process.

Run from the repository root::

    python -m bench.clickhouse_wire [--events 2000000] [--users 100000] [--reps 3]

On the deterministic dataset of :mod:`bench.analytics` (cached under ``bench/.data/analytics-<events>``), in one run:

* ``mirror_events_per_s``: :func:`userloop.store.mirror.copy_project` into a ``clickhouse://`` URL served by
  :mod:`userloop.store.chdb_http` in another process (Arrow batches streamed over HTTP, counts verified), with the
  same copy into chdb in this process as the reference;
* ``funnel``, ``retention``, ``trend``: the Engine's definitions of :mod:`bench.analytics` through the wire, with
  the same definitions on chdb in process as the reference (same engine, same statement trees); the results
  must be equal.

The endpoint is chdb behind ClickHouse's HTTP interface, so the ratio is the wire's own cost (HTTP, Arrow
streams, a second process), not a ClickHouse server's speed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time

from bench.analytics import FUNNEL, RETENTION, TREND, generate
from bench.harness import best_of, data_dir, report


def run(events: int, users: int, reps: int) -> None:
    from userloop.query.engine import Engine
    from userloop.store import Workspace
    from userloop.store.clickhouse import ClickHouseStore
    from userloop.store.mirror import copy_project

    path = data_dir() / f"analytics-{events}"
    if not (path / "events.parquet").exists():
        generate(path, events, users)
    ws = Workspace.open(path, read_only=True)
    duck = ws.project()
    wire_dir, local_dir = data_dir() / f"clickhouse-wire-{events}", data_dir() / f"clickhouse-local-{events}"
    for folder in (wire_dir, local_dir):
        shutil.rmtree(folder, ignore_errors=True)
    wire_dir.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "userloop.store.chdb_http", "--path", str(wire_dir / "ch"), "--user", "bench"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "USERLOOP_CHDB_HTTP_PASSWORD": password},
    )  # fmt: skip
    try:
        assert server.stdout is not None
        address = server.stdout.readline().split()[1]
        wire = ClickHouseStore(f"clickhouse://bench:{password}@{address}/default")
        local = ClickHouseStore(f"chdb://{local_dir}")

        started = time.perf_counter()
        copy_project(duck, local)
        local_s = time.perf_counter() - started
        started = time.perf_counter()
        counts = copy_project(duck, wire)
        wire_s = time.perf_counter() - started
        copied = next(c.clickhouse for c in counts if c.table == "events")
        report("clickhouse_wire", "mirror_events_per_s", copied / wire_s, "events/s", events=copied, seconds=wire_s,
               reference="copy_project into chdb in process", reference_value=copied / local_s,
               ratio=wire_s / local_s)  # fmt: skip

        on_wire, in_process = Engine(wire.project(duck.schema), "UTC"), Engine(local.project(duck.schema), "UTC")
        same = {}
        for name, definition in (("funnel", FUNNEL), ("retention", RETENTION), ("trend", TREND)):
            same[name] = (
                on_wire.run(definition, use_cache=False, timeout_s=600).result
                == in_process.run(definition, use_cache=False, timeout_s=600).result
            )
            t_wire = best_of(reps, lambda d=definition: on_wire.run(d, use_cache=False, timeout_s=600))
            t_local = best_of(reps, lambda d=definition: in_process.run(d, use_cache=False, timeout_s=600))
            report("clickhouse_wire", f"{name}_seconds", t_wire, "s", events=copied, same_result=same[name],
                   reference="the same definition on chdb in process", reference_value=t_local,
                   ratio=t_wire / t_local)  # fmt: skip
        wire.close()
        local.close()
    finally:
        server.terminate()
        server.wait(60)
        ws.close()
    if not all(same.values()):
        print(f"results differ through the wire: {same}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clickhouse_wire")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    run(args.events, args.users, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
