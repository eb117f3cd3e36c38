"""Simulator speed: events per second of pure generation (Arrow tables, nothing loaded).

    python -m bench.sim_generate [--users 100000] [--days 180] [--workers 1] [--repeat 1]

The reference, measured in the same run, is numpy filling as many random int64 values as there are events
(in arrays of a million): the ratio ours/reference says how many "random integers' worth" of work one event
costs, which drifts less than seconds on a shared machine; events per CPU second (all threads of this
process) and the load average say how much of the machine the run had. The issue asks for at least
3,000,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date

import numpy as np

from bench.harness import best_of, main_guard, peak_rss_bytes, report, timed

END_DATE = date(2024, 12, 31)
FILL_BATCH = 1_000_000


def generate(users: int, days: int, workers: int) -> tuple[int, int, float, float]:
    """Run the simulator once; return (events, records, seconds, CPU seconds of this process)."""
    from userloop.sim import SimConfig, simulate

    config = SimConfig(users=users, days=days, end_date=END_DATE)
    events = records = 0
    cpu = time.process_time()
    with timed() as timer:
        for table in simulate(config, workers=workers):
            records += table.num_rows
            if table.column("type")[0].as_py() in ("track", "track_signup"):
                events += table.num_rows
    return events, records, timer.seconds, time.process_time() - cpu


def fill_random(count: int) -> None:
    """The reference: ``count`` random int64 values, written into arrays of a million."""
    rng = np.random.default_rng(0)
    out = np.empty(FILL_BATCH, dtype=np.int64)
    for start in range(0, count, FILL_BATCH):
        size = min(FILL_BATCH, count - start)
        out[:size] = rng.integers(0, 2**62, size=size)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_generate", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--workers",
        default="0,1",
        help="comma-separated settings of simulate(workers=…) to measure: 0 = in the caller's thread, "
        "1 = one background thread (the default of simulate)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; the fastest counts")
    args = parser.parse_args(argv)

    reference: float | None = None
    for workers in (int(w) for w in args.workers.split(",")):
        runs = [generate(args.users, args.days, workers) for _ in range(args.repeat)]
        events, records, seconds, cpu = min(runs, key=lambda run: run[2])
        if reference is None:
            reference = best_of(3, lambda n=events: fill_random(n))
            report("sim_generate", "events", events, "events", records=records, users=args.users, days=args.days)
        report(
            "sim_generate",
            "events_per_second",
            events / seconds,
            "events/s",
            workers=workers,
            seconds=seconds,
            cpu_seconds=cpu,
            events_per_cpu_second=round(events / cpu),
            load_average=round(os.getloadavg()[0], 2),
            reference="numpy: as many random int64 into arrays",
            reference_value=reference,
            ratio=seconds / reference,
            target=">= 3000000 events/s",
            peak_rss_mib=round(peak_rss_bytes() / 2**20),
        )
    return 0


if __name__ == "__main__":
    main_guard(main)
