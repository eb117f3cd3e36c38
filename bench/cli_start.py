"""CLI start-up: the median wall time of ``userloop --help`` in a fresh process.

    python -m bench.cli_start [--runs 15]

The reference, measured in the same run, is ``python -c pass`` with the same interpreter: the ratio says how
many bare interpreter starts one ``userloop --help`` costs, which drifts less than seconds on a shared machine.
The issue asks for at most 0.3 s (the command line loads each command's module only when that command runs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import main_guard, report

TARGET_SECONDS = 0.3


def userloop_script() -> list[str]:
    """How to run ``userloop`` with this interpreter: its console script beside it, else the module."""
    script = Path(sys.executable).with_name("userloop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "userloop.cli.main"]


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_start")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    cmd = [*userloop_script(), "--help"]
    median_seconds(cmd, 2)  # warm the file cache and the bytecode
    ours = median_seconds(cmd, args.runs)
    reference = median_seconds([sys.executable, "-c", "pass"], args.runs)
    row = report(
        "cli_start",
        "seconds",
        ours,
        "s",
        runs=args.runs,
        reference="python -c pass",
        reference_value=reference,
        ratio=ours / reference,
        target=f"<= {TARGET_SECONDS}",
    )
    return 0 if row["value"] <= TARGET_SECONDS else 1


if __name__ == "__main__":
    main_guard(main)
