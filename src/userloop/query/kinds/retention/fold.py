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

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from userloop.query.kinds.base import FoldDeclined

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from userloop.query.kinds.base import Lookup

#: The name the fold's table has in the statement that reads it (fixed; nothing user-given).
RELATION = "_ul_retention_u"
#: Slots any fold may hold (16 bytes each), whatever the rows.
DENSE_SLOTS = 1 << 24
#: Past :data:`DENSE_SLOTS`, slots allowed per row seen.
SPARSE_FACTOR = 4
NEVER = np.iinfo(np.int64).max


class _People:
    """Per-person state over a range of person keys that grows to cover the keys seen."""

    def __init__(self) -> None:
        self.lo = 0
        self.t0: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.m: NDArray[np.uint64] = np.empty(0, dtype=np.uint64)
        self.rows = 0

    def cover(self, lo: int, hi: int, rows: int) -> None:
        """Make room for the keys ``lo``–``hi``; declines when the range is too sparse for an array."""
        self.rows += rows
        if len(self.t0) and self.lo <= lo and hi < self.lo + len(self.t0):
            return
        new_lo = lo if not len(self.t0) else min(lo, self.lo)
        new_hi = hi if not len(self.t0) else max(hi, self.lo + len(self.t0) - 1)
        size = new_hi - new_lo + 1
        if size > max(DENSE_SLOTS, SPARSE_FACTOR * self.rows):
            raise FoldDeclined(f"person keys span {size} ids for {self.rows} rows")
        size = max(size, min(2 * len(self.t0), max(DENSE_SLOTS, SPARSE_FACTOR * self.rows)))  # grow by doubling
        t0, m = np.full(size, NEVER, dtype=np.int64), np.zeros(size, dtype=np.uint64)
        at = self.lo - new_lo
        t0[at : at + len(self.t0)], m[at : at + len(self.m)] = self.t0, self.m
        self.lo, self.t0, self.m = new_lo, t0, m


def fold_people(rows: pa.RecordBatchReader, ids: Lookup) -> pa.Table:
    """``u`` of :func:`~.one_pass.one_pass_cells` from the rows of :func:`~.one_pass.one_pass_rows`: per person
    seen, ``user_id``, the earliest time ``t0`` and the period bits ``m`` (0 where none, which the statement
    counts as SQL's empty ``bit_or``: such a person's first event is before the range, and is not counted)."""
    from userloop.query.kinds.retention.fold_kernels import first_and_periods  # Numba, for a fold only

    people = _People()
    for batch in rows:
        if batch.num_rows == 0:
            continue
        user = batch.column(0).to_numpy()
        people.cover(int(user.min()), int(user.max()), batch.num_rows)
        t, b = batch.column(1).to_numpy(), batch.column(2).to_numpy()
        first_and_periods(user, t, b, people.lo, people.t0, people.m)
    seen = np.flatnonzero(people.t0 != NEVER)
    return pa.table(
        {
            "user_id": pa.array(seen + people.lo, pa.int64()),
            "t0": pa.array(people.t0[seen], pa.int64()).cast(pa.timestamp("us")),
            "m": pa.array(people.m[seen], pa.uint64()),
        }
    )
