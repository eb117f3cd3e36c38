"""Compile the folds' loops ahead of the first query that needs them.

The funnel's and retention's folds (:mod:`userloop.query.kinds.funnel.fold`, :mod:`userloop.query.kinds.retention.fold`)
run loops compiled by Numba, which compiles a loop for each kind of arrays it is first called with and keeps the
machine code on disk (``cache=True``). The first compile takes 10–20 s on a 2-core machine, and longer under load:
left to the first query, it counts against that query's time limit. ``make install`` runs this module, as
installing compiles Python's own byte code, so a query only ever loads the compiled loops (about a second, once
per process). It runs each fold on a few rows shaped as the scans hand them, along every path the folds take
(rows in order and not, on one thread and on several)::

    python -m userloop.query.warm
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa


def warm() -> float:
    """Run each fold once on a few rows, along each of its paths; the seconds it took."""
    from userloop.query.kinds.funnel import fold as funnel
    from userloop.query.kinds.retention import fold as retention

    began = time.perf_counter()
    rng = np.random.default_rng(0)
    size = 64
    user = rng.integers(0, 3000, size)
    for mask in (pa.int32(), pa.int64()):  # a mask in 32 bits below 32 steps, 64 from there
        rows = pa.table(
            {
                "user_id": pa.array(user, pa.int64()),
                "t": pa.array(rng.integers(0, 10, size), pa.int64()),
                "m": pa.array(rng.integers(1, 8, size), mask),
                "rid": pa.array(np.arange(size), pa.int64()),
            }
        )
        for order in (rows, rows.sort_by([("user_id", "ascending"), ("t", "ascending")])):
            for threads in (1, 2):
                funnel.fold_best(order, _ids, n=3, w_us=5, hi_us=8, threads=threads)
    schema = pa.schema([("user_id", pa.int64()), ("t", pa.int64()), ("b", pa.int16())])
    batch = pa.record_batch([pa.array(user), pa.array(np.arange(size)), pa.array(user % 13 - 1, pa.int16())], schema)
    retention.fold_people(pa.RecordBatchReader.from_batches(schema, [batch]), _ids)
    return time.perf_counter() - began


def _ids(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Event ids for row ids: the row id written out."""
    return pa.array([f"e{key:08d}" for key in keys.to_pylist()], pa.string())


if __name__ == "__main__":
    print(f"userloop: the folds' loops compiled or loaded in {warm():.1f} s")
