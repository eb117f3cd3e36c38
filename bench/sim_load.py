"""Simulator + load, end to end: events per second into a fresh workspace.

    python -m bench.sim_load [--users 100000] [--days 180] [--big-users N --big-days D]

Figures: events/s end to end for the default demo size and for a ~20M-event run (the issue asks for
≥ 1,000,000 events/s). The same-run references: the simulator alone (generation only), and DuckDB inserting
the same Arrow tables into a plain table with no checks (what loading costs without validation, identity or
dedupe). Each measured step runs in a fresh child process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import date

from bench.harness import data_dir, report

END = date(2026, 10, 31)

CHILD = """
import sys, time, shutil, resource
from datetime import date
from pathlib import Path
mode, users, days, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
from userloop.sim import SimConfig, simulate
config = SimConfig(users=users, days=days, seed=42, end_date=date(2026, 10, 31))
shutil.rmtree(path, ignore_errors=True)
events = 0
t = time.perf_counter()
if mode == "generate":
    for table in simulate(config):
        events += table.num_rows
elif mode == "raw":
    import duckdb
    path.mkdir(parents=True)
    con = duckdb.connect(str(path / "raw.duckdb"))
    for i, table in enumerate(simulate(config)):
        con.register("t", table)
        con.execute(f"CREATE TABLE t{i} AS SELECT * FROM t")
        con.unregister("t")
        events += table.num_rows
    con.close()
else:
    from userloop.store import Workspace
    from userloop.sim.run import run_simulation
    ws, _ = Workspace.init(path)
    result = run_simulation(ws, "default", users=users, days=days, seed=42, end_date=date(2026, 10, 31))
    events = result.result.events
    ws.close()
seconds = time.perf_counter() - t
print(seconds, events, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def run(mode: str, users: int, days: int) -> tuple[float, int, int]:
    path = data_dir() / f"sim-{mode}"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(users), str(days), str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    subprocess.run(["rm", "-rf", str(path)], check=True)
    return float(out[0]), int(out[1]), int(out[2])


def measure(label: str, users: int, days: int) -> None:
    generate, records, _ = run("generate", users, days)
    raw, _, _ = run("raw", users, days)
    ours, events, rss = run("ours", users, days)
    report(
        "sim_load",
        f"{label}_events_per_s",
        events / ours,
        "events/s",
        users=users,
        days=days,
        events=events,
        records=records,
        seconds=ours,
        peak_rss_gib=rss / 2**30,
        reference="simulator alone (generation)",
        reference_value=generate,
        ratio=ours / generate,
        raw_insert_seconds=raw,
        ratio_to_raw_insert=ours / raw,
        target=">= 1000000 events/s",
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--big-users", type=int, default=0, help="people for the ~20M-event run (0: skip)")
    parser.add_argument("--big-days", type=int, default=180)
    args = parser.parse_args(argv)
    measure("demo", args.users, args.days)
    if args.big_users:
        measure("big", args.big_users, args.big_days)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
