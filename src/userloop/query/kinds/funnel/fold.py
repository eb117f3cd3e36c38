"""The plain sequential funnel (:mod:`.sequential_plain`'s case) folded outside SQL: one scan of the step rows as
Arrow, sorted by person and ``(time, event_id)``, then a few linear numpy passes give ``best`` directly.

The recurrence is :mod:`.sequential_plain`'s — for a step-``k`` row, the latest start of a chain ending at step
``k−1`` among the person's strictly earlier rows, and that chain's step ``k−1`` event, the last row that ends
one — which is the per-person state ClickHouse's ``windowFunnel`` keeps while it scans a person's events in time
order (ClickHouse ``AggregateFunctionWindowFunnel.h``: ``events_timestamp[level]`` holds the latest start per
level). Here it is computed for all people at once, one step after the other: rows are held by position in the sorted
order, and the rows ending an attempt at step ``k`` come from those ending one at ``k−1`` by one binary search per
step-``k`` row (``np.searchsorted``: the last such row strictly before it, kept when it is the same person's and
its start lies within the window), so each step costs its own rows, not the whole scan.

``best`` then follows the definitions (:mod:`.attempts`): per person and step the shortest attempt, then the
earliest step-``k`` event in ``(time, event_id)`` order — the first row, in the sorted order, of those with the
person's least duration. Step 1's best attempt is the person's first step-1 row in the date range.

The statement that reads the result is the same as the SQL path's from ``best`` on (:class:`FoldedReach`); the
engine runs the scan, the fold and that statement on one session (:class:`~userloop.query.kinds.base.Staged`).
People are keyed by ``user_id`` itself (``BIGINT NOT NULL``), so no hash stands in for them and none can collide.

Where the time goes (bench/analytics, 20M events, 6.1M scan rows, CPU seconds, load 2 on 2 cores): the scan as
Arrow 0.70 (0.34 of it the ``event_id`` strings), the fold 0.94 (about half the sort by person), the statement
after ``best`` 0.65 — 2.8 against 4.9 for :mod:`.sequential_plain` in SQL, chdb's ``windowFunnel`` 1.2. Not
tried yet: reading row ids instead of ``event_id`` and fetching the ids of the chosen and tied rows only (about
0.2 s less), and folding ``persons`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.funnel.attempts import ReachBuilder

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Ints = NDArray[np.int64]
    Bools = NDArray[np.bool_]

#: The name the fold's table has in the statement that reads it (fixed; nothing user-given).
RELATION = "_ul_funnel_best"
#: The fold's table: ``best``'s fields that a plain funnel fills (:func:`~.attempts.best_attempts`).
BEST_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("k", pa.int64()), ("d", pa.int64()), ("o1", pa.int64()), ("o2", pa.string()),
     ("g", pa.int64())]
)  # fmt: skip


def fold_source(scan: exp.Expr) -> exp.Expr:
    """The rows the fold reads: every scan row (each matches some step), in the scan's order. The fold sorts
    them itself (:func:`_person_time_order`): DuckDB's ``ORDER BY user_id, t`` of the Arrow result took twice
    the scan's CPU time on the bench's 20M events, three times with ``event_id`` as a key."""
    return sql("SELECT s.user_id AS user_id, s.t AS t, s.eid AS eid, s.m AS m FROM ($scan) AS s", scan=scan)


#: Rows folded at once. The fold's working arrays (order, sorted keys, step rows) come to several times its rows'
#: 8 bytes (100M events, 30.5M rows in one piece: about 2 GB beside the scan's 1.06 GB of Arrow); past this many
#: rows the people are folded in blocks, so the working set stays that of one block as data grows. Time is not
#: what they are for: in one run (load 2.4–3.4) the fold took 0.82–1.0 s of CPU at 20M and 8.0–8.9 s at 100M in
#: one piece, 6.6–10.6 s in blocks of 4M rows — within the noise of this machine.
BLOCK_ROWS = 4_000_000


def fold_best(rows: pa.Table, n: int, w_us: int, hi_us: int, *, block_rows: int = BLOCK_ROWS) -> pa.Table:
    """``best`` of a plain sequential funnel of ``n`` steps and window ``w_us`` (µs) from the scan rows ``rows``
    (:func:`fold_source`: ``user_id``, ``t``, ``eid``, ``m``); step-1 rows count from before ``hi_us`` only.
    Columns: ``user_id``, ``k``, ``d``, ``o1``, ``o2``, ``g``. People are folded in blocks of about
    ``block_rows`` rows (each person's rows in one block: ``best`` is per person)."""
    if rows.num_rows == 0:
        return BEST_SCHEMA.empty_table()
    user, t, m, eid = _ints(rows, "user_id"), _ints(rows, "t"), _ints(rows, "m"), rows["eid"]
    del rows  # the caller hands the scan over: its other columns are freed once copied (0.7 GB at 100M events)
    pa.default_memory_pool().release_unused()  # and given back to the system, not kept by Arrow's allocator
    parts: list[pa.Table] = []
    for where in _person_blocks(user, block_rows):
        if where is None:
            parts += _fold_block(eid, None, user, t, m, n, w_us, hi_us)
        else:
            parts += _fold_block(eid, where, user[where], t[where], m[where], n, w_us, hi_us)
    return pa.concat_tables(parts)


def _person_blocks(user: Ints, limit: int) -> Iterator[Ints | None]:
    """The rows of each block of people, in the scan's order (so rows in time order stay so), each block a range
    of person keys holding about ``limit`` rows when keys are spread evenly; ``None`` for one block of everything.
    One stable radix pass on the block number places the rows."""
    count = min(-(-len(user) // limit), 2**16 - 1)
    if count <= 1:
        yield None
        return
    lo = int(user.min())
    width = (int(user.max()) - lo) // count + 1
    block = ((user - lo) // width).astype(np.uint16)
    order = np.argsort(block, kind="stable")
    start = 0
    for end in np.cumsum(np.bincount(block, minlength=count)).tolist():
        if end > start:
            yield order[start:end]
        start = end


def _fold_block(
    eid: pa.ChunkedArray, where: Ints | None, user: Ints, t: Ints, m: Ints, n: int, w_us: int, hi_us: int
) -> list[pa.Table]:
    """``best`` of one block of people: ``user``, ``t``, ``m`` are its rows, ``where`` their places in the scan
    (``None``: all of it), through which ``eid`` is read."""
    order, user, t = _person_time_order(user, t)
    order = _order_ties(eid, where, order, user, t)  # reorders rows of one person and instant: user and t stay
    m = m[order]
    ids = _Ids(eid, order if where is None else where[order])
    ends = np.flatnonzero(((m & 1) != 0) & (t < hi_us))  # step-1 rows: each starts its own attempt
    starts = ends
    zero = np.zeros(len(ends), dtype=np.int64)
    parts = [_best_of_step(user, t, None, 1, ends, zero, None)]
    for k in range(2, n + 1):
        ends, starts, prev = _step(user, t, np.flatnonzero((m & (1 << (k - 1))) != 0), w_us, ends, starts)
        parts.append(_best_of_step(user, t, ids, k, ends, t[ends] - t[starts], t[ends] - t[prev]))
    return parts


def _step(user: Ints, t: Ints, rows_k: Ints, w_us: int, ends: Ints, starts: Ints) -> tuple[Ints, Ints, Ints]:
    """The rows among ``rows_k`` (the step-``k`` rows) that end an attempt at step ``k``, with its start and its
    step ``k−1`` row, from the rows ``ends`` (ascending) that end one at ``k−1`` and their ``starts``.

    The chain a step-``k`` row extends is the one through the last row strictly before it that ends at
    ``k−1`` (a binary search in ``ends``): its start is the latest (starts never decrease along a person's
    rows), and that row is the latest step ``k−1`` event of a chain with that start. It counts when it is the
    same person's and the start lies within the window."""
    if len(ends) == 0:
        return ends, ends, ends
    j = np.searchsorted(ends, rows_k, side="left") - 1
    found = j >= 0
    j = np.where(found, j, 0)
    last, start = ends[j], starts[j]
    ok = found & (user[last] == user[rows_k]) & (t[rows_k] - t[start] <= w_us)
    return rows_k[ok], start[ok], last[ok]


class _Ids:
    """The ``event_id`` of sorted positions: the Arrow column stays in the scan's order (copying 6M strings
    into the sorted order costs more than the fold), and only the chosen rows' ids are taken."""

    def __init__(self, eid: pa.ChunkedArray, order: Ints) -> None:
        self.eid, self.order = eid, order

    def at(self, positions: Ints) -> pa.Array | pa.ChunkedArray:
        return self.eid.take(pa.array(self.order[positions])).cast(pa.string())


def _best_of_step(user: Ints, t: Ints, ids: _Ids | None, k: int, at: Ints, d: Ints, g: Ints | None) -> pa.Table:
    """The best attempt per person among those ending at rows ``at`` (ascending) with durations ``d`` and gaps
    ``g``: the least duration, then the first row in ``(time, event_id)`` order. Step 1's attempts have no
    ``event_id`` key (``o2``) nor gap, as in the SQL path."""
    chosen = _first_least(user[at], d)
    rows_at = at[chosen]
    count = len(rows_at)
    columns = [
        pa.array(user[rows_at]),
        pa.array(np.full(count, k, dtype=np.int64)),
        pa.array(d[chosen]),
        pa.array(t[rows_at]),
        ids.at(rows_at) if ids is not None else pa.nulls(count, pa.string()),
        pa.array(g[chosen]) if g is not None else pa.nulls(count, pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=BEST_SCHEMA)


def _first_least(group: Ints, d: Ints) -> Ints:
    """Indices (into ``d``) of the first element with the least ``d`` of each run of equal ``group`` values."""
    if len(d) == 0:
        return np.zeros(0, dtype=np.int64)
    new_run = np.r_[True, group[1:] != group[:-1]]
    run = np.cumsum(new_run) - 1
    least = np.flatnonzero(d == np.minimum.reduceat(d, np.flatnonzero(new_run))[run])
    return least[np.r_[True, run[least][1:] != run[least][:-1]]]


def _person_time_order(user: Ints, t: Ints) -> tuple[Ints, Ints, Ints]:
    """The permutation putting rows in ``(user_id, t)`` order (ties at one instant in any order), with the
    sorted ``user_id`` and ``t``.

    Rows already in that order (a clustered table, :meth:`~userloop.store.duck.ProjectStore.cluster_events`)
    stay. Rows in time order (the append order) only need a stable sort by person: two passes of NumPy's radix
    sort on 16-bit halves of the person key (an LSD radix sort, Knuth TAOCP vol. 3 §5.2.5), linear where a
    stable argsort of 64-bit keys is not (20M events, 6.1M rows: 0.33 s of CPU against 0.93 s). Anything else,
    or people more than 2³² ids apart, takes a lexicographic argsort."""
    if _ascending(user) and ((user[1:] > user[:-1]) | (t[1:] >= t[:-1])).all():
        return np.arange(len(t)), user, t
    lo = int(user.min())
    key = user - lo
    if int(key.max()) < 2**32 and _ascending(t):
        low = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        order = low[np.argsort((key >> 16).astype(np.uint16)[low], kind="stable")]
        counts = np.bincount(key)  # the sorted person keys, without gathering them
        return order, np.repeat(np.arange(lo, lo + len(counts), dtype=np.int64), counts), t[order]
    order = np.lexsort((t, user))
    return order, user[order], t[order]


def _ascending(values: Ints) -> bool:
    """Whether ``values`` never decrease (a prefix first: shuffled rows fail there, without a full pass)."""
    head = values[:4096]
    return bool((head[1:] >= head[:-1]).all()) and bool((values[1:] >= values[:-1]).all())


def _order_ties(eid: pa.ChunkedArray, where: Ints | None, order: Ints, user: Ints, t: Ints) -> Ints:
    """``order`` with each run of one person's rows at one instant in ``event_id`` order, the order the
    definitions use (**Events a funnel sees** in :mod:`userloop.query.kinds.funnel`). Only the tied rows are
    sorted again; on real logs they are few."""
    same = (user[1:] == user[:-1]) & (t[1:] == t[:-1])
    if not same.any():
        return order
    tied = np.flatnonzero(np.r_[same, False] | np.r_[False, same])
    places = order[tied] if where is None else where[order[tied]]
    sub = pa.table({"user_id": user[tied], "t": t[tied], "eid": eid.take(pa.array(places)).cast(pa.string())})
    again = pc.sort_indices(sub, [("user_id", "ascending"), ("t", "ascending"), ("eid", "ascending")])
    order = order.copy()
    order[tied] = order[tied[again.to_numpy()]]
    return order


def _ints(rows: pa.Table, name: str) -> Ints:
    return rows[name].to_numpy().astype(np.int64, copy=False)


class FoldedReach(ReachBuilder):
    """``best`` read from the fold's table (the SQL after it is the SQL path's): each row becomes the struct
    :func:`~userloop.query.kinds.funnel.attempts.best_attempts` makes, with the fields a plain funnel leaves
    empty (no breakdown value, no exclusion)."""

    def build(self) -> None:
        self.ctes.add(
            "best",
            sql(
                """SELECT f.user_id AS user_id, f.k AS k,
                     {'d': f.d, 'o1': f.o1, 'o2': f.o2, 'g': f.g, 'bv': CAST(NULL AS VARCHAR), 'lt': f.o1,
                      'xs': FALSE} AS s
                   FROM $folded AS f""",
                folded=exp.to_identifier(RELATION),
            ),
            shared=True,
        )
