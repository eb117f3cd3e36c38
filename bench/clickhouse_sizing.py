"""The ClickHouse backend's own figures, for sizing a deployment (``docs/deploy.md``).

Run from the repository root::

    python -m bench.clickhouse_sizing [--events 5000000] [--users 250000] [--reps 3]

On the deterministic dataset of :mod:`bench.analytics` (cached under ``bench/.data/analytics-<events>``):

* ``mirror_events_per_s``: events (and their people) copied from DuckDB into the ClickHouse layout by
  :func:`userloop.store.mirror.copy_project` (Arrow batches into a MergeTree by month and (person, time)), against
  a bare ``INSERT … SELECT FROM file(Parquet)`` of the same events into a plain MergeTree in the same run;
* ``bytes_per_event``: compressed bytes on disk per event of the events table after merging, beside the DuckDB
  file's bytes per event (both hold the same columns);
* ``funnel``, ``retention``, ``trend``: the Engine's definitions of :mod:`bench.analytics` run on the ClickHouse
  backend (the same statement trees, rendered for ClickHouse) and on DuckDB, with chdb's hand-written
  ``windowFunnel`` as the reference; the numbers must agree;
* ``scan_events_per_core_s``: events the funnel covers per second per core on ClickHouse, the figure the
  10-billion-events-a-month plan divides by.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any

from bench.analytics import CH_FUNNEL, FUNNEL, RETENTION, TREND, generate
from bench.harness import best_of, data_dir, report

#: The reference's table: the bench's events as a plain MergeTree, the layout ClickHouse users start from.
BARE_TABLE = (
    "CREATE TABLE default.bare (user_id UInt64, event LowCardinality(String), time DateTime64(3, 'UTC'), "
    "os LowCardinality(String), amount Nullable(Float64)) ENGINE = MergeTree ORDER BY (user_id, time)"
)


def run(events: int, users: int, reps: int) -> None:
    import chdb

    from userloop.query.engine import Engine
    from userloop.store import Workspace
    from userloop.store.clickhouse import ClickHouseStore
    from userloop.store.mirror import copy_project

    path = data_dir() / f"analytics-{events}"
    if not (path / "events.parquet").exists():
        generate(path, events, users)
    ws = Workspace.open(path, read_only=True)
    duck = ws.project()
    target = data_dir() / f"clickhouse-sizing-{events}"
    shutil.rmtree(target, ignore_errors=True)
    store = ClickHouseStore(f"chdb://{target}")

    started = time.perf_counter()
    counts = copy_project(duck, store)
    mirror_s = time.perf_counter() - started
    copied = next(c.clickhouse for c in counts if c.table == "events")
    con = chdb.connect(str(target))  # the reference's own line to the same folder: raw SQL, no trees
    started = time.perf_counter()
    con.query(BARE_TABLE)
    con.query(f"INSERT INTO default.bare SELECT * FROM file('{path / 'events.parquet'}', Parquet)")
    bare_s = time.perf_counter() - started
    con.query(f"OPTIMIZE TABLE `{duck.schema}`.events FINAL")
    compressed = (
        con.query(
            f"SELECT sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts "
            f"WHERE database = '{duck.schema}' AND table = 'events' AND active",
            "CSV",
        )
        .bytes()
        .decode()
        .strip()
        .split(",")
    )
    con.query(f"USE `{duck.schema}`")
    report("clickhouse_sizing", "mirror_events_per_s", copied / mirror_s, "events/s", events=copied,
           seconds=mirror_s, reference="chdb INSERT FROM file(Parquet), plain MergeTree",
           reference_value=events / bare_s, ratio=(events / bare_s) / (copied / mirror_s))  # fmt: skip
    duck_bytes = (path / "events.duckdb").stat().st_size
    report("clickhouse_sizing", "bytes_per_event", int(compressed[0]) / copied, "bytes", events=copied,
           uncompressed=int(compressed[1]) / copied, duckdb_file=duck_bytes / copied)  # fmt: skip

    ch_engine = Engine(store.project(duck.schema), "UTC")
    duck_engine = Engine(duck, "UTC")
    checks = {}
    for name, definition in (("funnel", FUNNEL), ("retention", RETENTION), ("trend", TREND)):
        ours = duck_engine.run(definition, use_cache=False, timeout_s=600).result
        theirs = ch_engine.run(definition, use_cache=False, timeout_s=600).result
        checks[name] = ours == theirs
        t_ch = best_of(reps, lambda d=definition: ch_engine.run(d, use_cache=False, timeout_s=600))
        t_duck = best_of(reps, lambda d=definition: duck_engine.run(d, use_cache=False, timeout_s=600))
        extra: dict[str, Any] = {"duckdb": t_duck, "same_result": checks[name]}
        if name == "funnel":
            native = best_of(reps, lambda: con.query(CH_FUNNEL, "CSV"))
            extra |= {"reference": "chdb windowFunnel", "reference_value": native, "ratio": t_ch / native}
            cores = os.cpu_count() or 1
            report("clickhouse_sizing", "scan_events_per_core_s", copied / t_ch / cores, "events/s/core",
                   cores=cores)  # fmt: skip
        report("clickhouse_sizing", f"{name}_seconds", t_ch, "s", events=copied, **extra)
    ws.close()
    con.close()
    store.close()
    if not all(checks.values()):
        print(f"results differ between the backends: {checks}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clickhouse_sizing")
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=250_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    run(args.events, args.users, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
