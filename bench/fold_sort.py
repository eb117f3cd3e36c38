"""The funnel fold's sort by person alone, against NumPy's stable sort of the same rows.

    python -m bench.fold_sort [--rows 6100000] [--people 1000000] [--reps 5]

Rows in time order (the append layout: each person's rows in time order, people interleaved, one in a thousand
arriving late), person keys drawn as bench/analytics draws them, as its funnel scan hands them (6.1M step rows of 20M
events). Ours is :func:`userloop.query.kinds.funnel.fold._person_time_order` on one thread and on the machine's
cores; the reference is ``np.lexsort((t, user))`` and a gather of the columns — the same output (both sorts are
stable), which is checked. Best of ``--reps``, wall and CPU seconds (every thread), and the CPU ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bench.harness import main_guard, report


def rows(size: int, people: int) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(18)
    t = np.sort(rng.integers(0, 180 * 86_400 * 10**6, size))
    late = rng.integers(0, size, size // 1000)
    t[late] -= rng.integers(1, 10**10, len(late))
    # as bench/analytics draws them: a person's share of rows falls as 1/√key (a few people have most of them)
    user = 1 + np.floor(people * rng.random(size) ** 2).astype(np.int64)
    return user, t, rng.integers(1, 8, size).astype(np.int32)


def best(fn: Callable[[], Any], reps: int) -> tuple[Any, float, float]:
    wall = cpu = float("inf")
    out = None
    for _ in range(reps):
        out = None
        c, w = time.process_time(), time.perf_counter()
        out = fn()
        cpu, wall = min(cpu, time.process_time() - c), min(wall, time.perf_counter() - w)
    return out, wall, cpu


def main(argv: list[str]) -> int:
    from userloop.query.kinds.funnel import fold
    from userloop.query.kinds.funnel import fold_kernels as kernels

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=6_100_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    user, t, m = rows(args.rows, args.people)

    def reference() -> tuple[Any, ...]:
        order = np.lexsort((t, user))
        return user[order], t[order], m[order], order

    want, ref_wall, ref_cpu = best(reference, args.reps)
    for threads in sorted({1, min(os.cpu_count() or 1, 8)}):
        with ThreadPoolExecutor(threads) as pool:
            fold._person_time_order(kernels, pool, threads, user[:1000], t[:1000], m[:1000])  # compiled or loaded

            def ours(pool: ThreadPoolExecutor = pool, threads: int = threads) -> tuple[Any, ...]:
                return fold._person_time_order(kernels, pool, threads, user, t, m)

            got, wall, cpu = best(ours, args.reps)
        assert all(np.array_equal(a, b) for a, b in zip(got[:4], want, strict=True))  # both stable: the same rows
        report("fold_sort", f"sort_by_person_{threads}_threads", wall, "s", cpu_s=cpu, rows=args.rows,
               reference="numpy lexsort + gather", reference_value=ref_wall, reference_cpu_s=ref_cpu,
               cpu_ratio=cpu / ref_cpu)  # fmt: skip
    return 0


if __name__ == "__main__":
    main_guard(main)
