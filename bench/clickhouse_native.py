"""The ClickHouse backend's native shapes against its generic ones and against chdb's bare functions, same data,
same run.

Run from the repository root::

    python -m bench.clickhouse_native [--events 2000000] [--users 100000] [--reps 5]

On the deterministic dataset of :mod:`bench.analytics` (cached under ``bench/.data/analytics-<events>``), mirrored
into chdb as the backend lays it out:

* ``retention_native_seconds``: the bench's weekly first-time retention through the Engine on the ClickHouse
  backend with its native shape (:mod:`userloop.query.kinds.retention.native`, ``Capability.RETENTION_FN``),
  beside the same backend with the capability withdrawn (the generic statement) and chdb's bare ``retention()``
  query (:data:`bench.analytics.CH_RETENTION`); the three must give the same cells;
* ``funnel_seconds``: the bench's 3-step funnel through the Engine on the backend (no native shape: see the
  ClickHouse section of ``docs/architecture.md``), with ``inline_ctes`` the same statement with its materialized
  CTEs left to ClickHouse instead of staged as temporary tables (:func:`userloop.store.dialects.staged`), beside
  chdb's bare ``windowFunnel`` (:data:`bench.analytics.CH_FUNNEL`, levels only), the reference the acceptance bar
  names.

Each figure is the best of ``--reps`` wall-clock runs; ``cpu`` is the process CPU time of that run (chdb runs in
this process), which a loaded machine disturbs less than the wall clock.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.analytics import CH_FUNNEL, FUNNEL, RETENTION, ch_retention_sql, generate
from bench.harness import data_dir, report


def best(reps: int, fn: Callable[[], Any]) -> tuple[float, float]:
    """The fastest of ``reps`` runs of ``fn`` (wall seconds) and the CPU seconds of that run."""
    runs = []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def run(events: int, users: int, reps: int) -> bool:
    import chdb

    import userloop.store.clickhouse as chstore
    from userloop.query.engine import Engine
    from userloop.store import Workspace
    from userloop.store.backend import Capability
    from userloop.store.clickhouse import ClickHouseStore
    from userloop.store.mirror import copy_project

    path = data_dir() / f"analytics-{events}"
    if not (path / "events.parquet").exists():
        generate(path, events, users)
    ws = Workspace.open(path, read_only=True)
    duck = ws.project()
    target = data_dir() / f"clickhouse-native-{events}"
    shutil.rmtree(target, ignore_errors=True)
    store = ClickHouseStore(f"chdb://{target}")
    copy_project(duck, store)
    copied = store.project(duck.schema).scalar(_count(duck.schema))
    engine = Engine(store.project(duck.schema), "UTC")
    native_caps = store.capabilities
    generic_caps = native_caps - {Capability.RETENTION_FN}

    def on(caps: frozenset[Capability], definition: dict[str, Any]) -> Any:
        store.capabilities = caps
        return engine.run(definition, use_cache=False, timeout_s=600).result

    con = chdb.connect(str(target))  # the references' own line to the same folder: raw SQL, no trees
    con.query(f"USE `{duck.schema}`")
    agree = True

    native = on(native_caps, RETENTION)
    generic = on(generic_caps, RETENTION)
    cells = {(int(c), int(n)): int(u) for c, n, u in _rows(con, ch_retention_sql())}
    # cohort i is chdb's week i + 1 (bench.analytics.CH_WEEK); cells of periods not started are None here
    differ = [(i, n) for i, c in enumerate(native["cohorts"]) for n, v in enumerate(c["counts"])
              if v is not None and cells.get((i + 1, n), 0) != v]  # fmt: skip
    same = native == generic and not differ
    agree &= same
    t_native, c_native = best(reps, lambda: on(native_caps, RETENTION))
    t_generic, c_generic = best(reps, lambda: on(generic_caps, RETENTION))
    t_bare, c_bare = best(reps, lambda: con.query(ch_retention_sql(), "CSV"))
    report("clickhouse_native", "retention_native_seconds", t_native, "s", events=copied, cpu=c_native,
           generic=t_generic, generic_cpu=c_generic, ratio_to_generic=t_native / t_generic,
           reference="chdb retention()", reference_value=t_bare, reference_cpu=c_bare, ratio=t_native / t_bare,
           same_result=same)  # fmt: skip

    ours_funnel = on(native_caps, FUNNEL)
    levels = {int(level): int(n) for level, n in _rows(con, CH_FUNNEL)}
    reached = [sum(n for level, n in levels.items() if level >= k) for k in range(1, len(ours_funnel["steps"]) + 1)]
    counts = [int(s["count"]) for s in ours_funnel["steps"]]
    t_funnel, c_funnel = best(reps, lambda: on(native_caps, FUNNEL))
    # the same statement with its MATERIALIZED CTEs left to ClickHouse (not staged as temporary tables)
    staged = chstore.staged
    chstore.staged = lambda tree, name: ([], tree)  # type: ignore[assignment]
    try:
        inline = on(native_caps, FUNNEL)
        t_inline, c_inline = best(reps, lambda: on(native_caps, FUNNEL))
    finally:
        chstore.staged = staged
    agree &= inline == ours_funnel
    t_wf, c_wf = best(reps, lambda: con.query(CH_FUNNEL, "CSV"))
    report("clickhouse_native", "funnel_seconds", t_funnel, "s", events=copied, cpu=c_funnel,
           inline_ctes=t_inline, inline_ctes_cpu=c_inline, reference="chdb windowFunnel (levels only)",
           reference_value=t_wf, reference_cpu=c_wf, ratio=t_funnel / t_wf, counts=counts,
           window_funnel_counts=reached)  # fmt: skip
    con.close()
    store.close()
    ws.close()
    return agree


def _count(schema: str) -> Any:
    from userloop.store.sqlbuild import sql, table

    return sql("SELECT count(*) FROM $e", e=table(schema, "events"))


def _rows(con: Any, text: str) -> list[list[str]]:
    out = con.query(text, "CSV").bytes().decode().strip()
    return [line.split(",") for line in out.splitlines()] if out else []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clickhouse_native")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    if not run(args.events, args.users, args.reps):
        print("the native and generic shapes (or chdb's retention()) disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
