"""One-pass retention (:mod:`.one_pass`) grouped by person outside SQL: the events stream out of the scan as
Arrow batches and each updates its person's earliest time and period bits in arrays indexed by the person key
(:mod:`.fold_kernels`), ClickHouse's ``retention()`` state without a hash table. The rest — cohorts, cells, sizes —
is the SQL path's statement reading the fold's table.

Why: DuckDB's grouping of the events by person is a hash aggregate whose table outgrows the caches as people grow,
and it is fastest when a person's events sit together (the clustered layout); person keys are handed out in
sequence (:class:`~userloop.ingest.identity.PersonKeys`), so an array indexed by them is dense and each event
costs one update where it lies, in any layout. At 20M events in the append order (bench/analytics' data): the
grouping 1.4–1.9 s of CPU in SQL, 0.64–0.67 s streamed and folded. Person keys spread too thinly for an array
(more than :data:`SPARSE_FACTOR` slots per row seen, past :data:`DENSE_SLOTS`) make the fold decline, and the
statement runs in SQL alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from userloop.query.kinds.base import FOLD_PARALLEL_ROWS, FoldDeclined, fold_threads

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from userloop.query.kinds.base import Lookup

    Ints = NDArray[np.int64]

#: The name the fold's table has in the statement that reads it (fixed; nothing user-given).
RELATION = "_ul_retention_u"
#: Slots any fold may hold (16 bytes each), whatever the rows.
DENSE_SLOTS = 1 << 24
#: Past :data:`DENSE_SLOTS`, slots allowed per row seen.
SPARSE_FACTOR = 4
NEVER = np.iinfo(np.int64).max
#: Rows a batch needs for its fold to be shared among threads (the scan hands 100,000 at a time).
BATCH_PARALLEL_ROWS = 1 << 12


class _People:
    """Per-person state over a range of person keys that grows to cover the keys seen."""

    def __init__(self) -> None:
        self.lo = 0
        #: per person the earliest time and the period bits (an int64 holding 64 bits)
        self.state: NDArray[np.int64] = np.empty((0, 2), dtype=np.int64)
        self.rows = 0

    def cover(self, lo: int, hi: int, rows: int) -> None:
        """Make room for the keys ``lo``–``hi``; declines when the range is too sparse for an array."""
        self.rows += rows
        held = len(self.state)
        if held and self.lo <= lo and hi < self.lo + held:
            return
        new_lo = lo if not held else min(lo, self.lo)
        new_hi = hi if not held else max(hi, self.lo + held - 1)
        size = new_hi - new_lo + 1
        if size > max(DENSE_SLOTS, SPARSE_FACTOR * self.rows):
            raise FoldDeclined(f"person keys span {size} ids for {self.rows} rows")
        size = max(size, min(2 * held, max(DENSE_SLOTS, SPARSE_FACTOR * self.rows)))  # grow by doubling
        state = np.zeros((size, 2), dtype=np.int64)
        state[:, 0] = NEVER
        at = self.lo - new_lo
        state[at : at + held] = self.state
        self.lo, self.state = new_lo, state


def fold_people(rows: pa.RecordBatchReader, ids: Lookup) -> pa.Table:
    """``u`` of :func:`~.one_pass.one_pass_cells` from the rows of :func:`~.one_pass.one_pass_rows`: per person
    seen, ``user_id``, the earliest time ``t0`` and the period bits ``m`` (0 where none, which the statement
    counts as SQL's empty ``bit_or``: such a person's first event is before the range, and is not counted)."""
    from userloop.query.kinds.retention.fold_kernels import first_and_periods  # Numba, for a fold only

    people = _People()
    threads = fold_threads(FOLD_PARALLEL_ROWS)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for batch in rows:
            if batch.num_rows == 0:
                continue
            user = batch.column(0).to_numpy()
            least, most = int(user.min()), int(user.max())
            people.cover(least, most, batch.num_rows)
            t, b = batch.column(1).to_numpy(), batch.column(2).to_numpy()
            # each thread reads the whole batch and updates its own range of people: their state apart in memory
            parts = threads if batch.num_rows >= BATCH_PARALLEL_ROWS else 1
            first, span = least - people.lo, most - least + 1
            cuts = [first + span * k // parts for k in range(parts + 1)]

            def fold(first: int, stop: int, user: Ints = user, t: Ints = t, b: Ints = b) -> None:
                first_and_periods(user, t, b, people.lo, people.state, first, stop)

            list(pool.map(fold, cuts[:-1], cuts[1:]))
    seen = np.flatnonzero(people.state[:, 0] != NEVER)
    return pa.table(
        {
            "user_id": pa.array(seen + people.lo, pa.int64()),
            "t0": pa.array(people.state[seen, 0], pa.int64()).cast(pa.timestamp("us")),
            "m": pa.array(people.state[seen, 1].view(np.uint64), pa.uint64()),
        }
    )
