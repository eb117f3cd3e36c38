"""What every benchmark shares: timing, peak memory and the JSON line it prints.

A figure is printed as one JSON object per line::

    {"bench": "import_parquet", "figure": "seconds", "value": 3.1, "unit": "s",
     "reference": "duckdb CTAS read_parquet", "reference_value": 2.7, "ratio": 1.15, "target": "<= 1.25"}

The machine is shared and noisy, so absolute times drift; the ratio against a reference measured in the same
run is the figure to compare across runs.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / ".data"


@dataclass
class Timer:
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def timed() -> Iterator[Timer]:
    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start


def best_of(n: int, fn: Callable[[], Any]) -> float:
    """The fastest of ``n`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_bytes(children: bool = False) -> int:
    """Peak resident set size of this process (or of its finished children), in bytes (Linux reports KiB)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss * 1024


def report(bench: str, figure: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    """Print one figure as a JSON line and return it."""
    row: dict[str, Any] = {"bench": bench, "figure": figure, "value": round(value, 4), "unit": unit}
    for key, val in extra.items():
        row[key] = round(val, 4) if isinstance(val, float) else val
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def data_dir() -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR


def main_guard(fn: Callable[[list[str]], int]) -> None:
    sys.exit(fn(sys.argv[1:]))
