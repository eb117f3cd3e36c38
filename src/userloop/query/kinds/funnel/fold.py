"""The plain sequential funnel (:mod:`.sequential_plain`'s case) folded outside SQL: one scan of the step rows as
Arrow (person, time, step mask and row id: no event ids), put in ``(person, time)`` order, then one linear pass per
person (:mod:`.fold_kernels`, compiled by Numba) gives ``best`` directly.

The recurrence is :mod:`.sequential_plain`'s — for a step-``k`` row, the latest start of a chain ending at step
``k−1`` among the person's strictly earlier rows, and that chain's step ``k−1`` event, the last row that ends
one — which is the per-person state ClickHouse's ``windowFunnel`` keeps while it scans a person's events in time
order (ClickHouse ``AggregateFunctionWindowFunnel.h``: ``events_timestamp[level]`` holds the latest start per
level). The pass keeps, per level, the last row ending an attempt there and the best attempt so far.

``best`` then follows the definitions (:mod:`.attempts`): per person and step the shortest attempt, then the
earliest step-``k`` event in ``(time, event_id)`` order — the first, in that order, of those with the person's
least duration. Step 1's best attempt is the person's first step-1 row in the date range. Event ids only decide
the order of one person's rows at one instant: those rows are found after the sort and only their ids are read
(by row id, on the scan's snapshot); nothing after ``best`` reads the step event's id, so ``o2`` stays empty.

The statement that reads the result is the same as the SQL path's from ``best`` on (:class:`FoldedReach`); the
engine runs the scan, the fold and that statement on one session (:class:`~userloop.query.kinds.base.Staged`).
People are keyed by ``user_id`` itself (``BIGINT NOT NULL``), so no hash stands in for them and none can collide.

Where the time goes (bench/analytics, 20M events, 6.1M scan rows, wall/CPU seconds, two helpers' work beside it):
on the clustered layout the scan as Arrow 0.14–0.22/0.27–0.43, the fold 0.18–0.19 (the two passes 0.13, the
check that the rows are in order and the search for ties the rest), the statement after ``best`` 0.06/0.10 —
0.45–0.48/0.66–0.71 in all against chdb's ``windowFunnel`` 0.53/0.97 measured alone on a quiet machine. In the
append layout the rows are first sorted by person (:func:`_person_time_order`): scattered into buckets of a
few thousand rows, then each bucket sorted and gathered within the cache, 0.20–0.26 s of CPU for the bench's
6.1M scan rows where an LSD sort of the whole and a gather across it (random reads) took 0.35–0.47 (the sorts
alone on one thread each, on a loaded machine: ``python -m bench.fold_sort``). The sort, the search for ties and
the pass run on the machine's cores, each thread over a run of people. Before (NumPy passes over the sorted rows,
event ids scanned for every row, ``best`` joined to the people): scan 0.34/0.69, fold 0.45–0.8, statement 0.33/0.63.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from userloop.query.compile import sql
from userloop.query.kinds.base import LOOKUP_KEYS, fold_threads
from userloop.query.kinds.funnel.attempts import ReachBuilder

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from userloop.query.kinds.base import Lookup

    Ints = NDArray[np.int64]

#: The name the fold's table has in the statement that reads it (fixed; nothing user-given).
RELATION = "_ul_funnel_best"
#: The fold's table: ``best``'s fields that a plain funnel fills (:func:`~.attempts.best_attempts`).
BEST_SCHEMA = pa.schema(
    [("user_id", pa.int64()), ("k", pa.int64()), ("d", pa.int64()), ("o1", pa.int64()), ("o2", pa.string()),
     ("g", pa.int64())]
)  # fmt: skip


def fold_source(scan: exp.Expr, n: int) -> exp.Expr:
    """The rows the fold reads: every scan row (each matches some step), in the scan's order, the mask of ``n``
    step bits in 32 bits where it fits. The fold sorts them itself (:func:`_person_time_order`): DuckDB's
    ``ORDER BY user_id, t`` of the Arrow result took twice the scan's CPU time on the bench's 20M events."""
    mask = exp.DataType.Type.INT if n < 32 else exp.DataType.Type.BIGINT
    return sql(
        "SELECT s.user_id AS user_id, s.t AS t, $m AS m, s.rid AS rid FROM ($scan) AS s",
        m=exp.cast(exp.column("m", "s"), mask),
        scan=scan,
    )


def id_lookup(events: exp.Expr) -> exp.Expr:
    """The ``event_id`` (``value``) of the events whose row ids (``key``, the scan's ``rid``) are asked for."""
    return sql(
        """SELECT e.rowid AS key, e.event_id AS value FROM $events AS e
           WHERE e.rowid IN (SELECT k.key FROM $keys AS k)""",
        events=events,
        keys=exp.to_identifier(LOOKUP_KEYS),
    )


def fold_best(rows: pa.Table, ids: Lookup, *, n: int, w_us: int, hi_us: int, threads: int | None = None) -> pa.Table:
    """``best`` of a plain sequential funnel of ``n`` steps and window ``w_us`` (µs) from the scan rows ``rows``
    (:func:`fold_source`: ``user_id``, ``t``, ``m``, ``rid``); step-1 rows count from before ``hi_us`` only.
    ``ids`` gives the ``event_id`` of rows by ``rid``: asked for the rows that share a person and an instant only.
    Columns: ``user_id``, ``k``, ``d``, ``o1``, ``o2`` (empty: nothing after ``best`` reads it), ``g``.

    The loops run on ``threads`` threads (default :func:`~userloop.query.kinds.base.fold_threads`), each over a
    run of people: the sort's buckets, then the rows of the people in them."""
    from userloop.query.kinds.funnel import fold_kernels as kernels  # Numba is imported by a fold only

    if rows.num_rows == 0:
        return BEST_SCHEMA.empty_table()
    # each column leaves the table as it becomes an array, so the two are not held whole at once (the table comes
    # in many chunks: an array is a copy)
    arrays = []
    for name in ("user_id", "t", "m"):
        array = rows[name].to_numpy()  # one chunk is lent, read-only: copied, so the loops see one kind of array
        arrays.append(array if array.flags.writeable else array.copy())
        rows = rows.drop_columns([name])
    (user, t, m), rid = arrays, rows["rid"]
    del rows, arrays, array
    parts = threads or fold_threads(len(user))
    with ThreadPoolExecutor(max_workers=parts) as pool:
        place = None  # the rows are in (user_id, t) order already: a clustered table's scan
        cuts = _person_cuts(user, parts)
        if not all(pool.map(kernels.clustered, *_parts(cuts, user, t))) or not _ordered_at(cuts, user, t):
            user, t, m, place, cuts = _person_time_order(kernels, pool, parts, user, t, m)
        runs = pool.map(kernels.tied, *_parts(cuts, user, t))
        tied = np.concatenate([run + a for run, a in zip(runs, cuts[:-1], strict=True)])
        m = _order_ties(ids, rid, place, user, t, m, tied)
        del rid, place, tied
        folds = pool.map(lambda u, tt, mm: kernels.fold(u, tt, mm, n, w_us, hi_us), *_parts(cuts, user, t, m))
        out = np.concatenate(list(folds), axis=1)
    del user, t, m
    g = pa.array(out[4], mask=out[4] < 0)
    columns = [pa.array(out[0]), pa.array(out[1]), pa.array(out[2]), pa.array(out[3]), pa.nulls(len(g), pa.string()), g]
    return pa.Table.from_arrays(columns, schema=BEST_SCHEMA)


def _parts(cuts: list[int], *columns: Ints) -> list[list[Ints]]:
    """Each column cut into the runs ``cuts[i]:cuts[i + 1]`` (views)."""
    return [[c[a:b] for a, b in itertools.pairwise(cuts)] for c in columns]


def _person_cuts(user: Ints, parts: int) -> list[int]:
    """Row numbers cutting ``user`` into ``parts`` runs of about equal length, each cut where the person changes
    (on rows clustered by person, each person then lies in one run)."""
    size = len(user)
    cuts = [0]
    for k in range(1, parts):
        at = max(cuts[-1], size * k // parts)
        if 0 < at < size:
            other = np.flatnonzero(user[at:] != user[at - 1])
            at = at + int(other[0]) if len(other) else size
        cuts.append(at)
    return [*cuts, size]


def _ordered_at(cuts: list[int], user: Ints, t: Ints) -> bool:
    """Whether the rows on either side of each cut are in ``(user, t)`` order."""
    return all((int(user[c - 1]), int(t[c - 1])) <= (int(user[c]), int(t[c])) for c in cuts[1:-1] if 0 < c < len(user))


def _person_time_order(
    kernels: Any, pool: ThreadPoolExecutor, parts: int, user: Ints, t: Ints, m: Ints
) -> tuple[Ints, Ints, Ints, Ints, list[int]]:
    """The rows in ``(user_id, t)`` order (ties at one instant in any order): ``user``, ``t``, ``m``, each row's
    place among those given, and cuts into ``parts`` runs at person changes (:func:`_person_cuts`).

    A radix sort on the person key less its least (Knuth TAOCP vol. 3 §5.2.5), most significant digit first: the
    rows are scattered into buckets by the key's top :data:`~.fold_kernels.TOP` bits (stable; each thread scatters
    a run of the input from its own offsets into every bucket, so the buckets keep the input's order), then each
    bucket, a few thousand rows that stay in the cache, is sorted on the remaining bits and gathered in place
    (:func:`~.fold_kernels.sort_buckets`), the threads taking runs of buckets. Stable, so rows in time order (the
    append order) stay so within each person. Keys spanning 2³² ids or more, or as many rows, take a
    lexicographic argsort."""
    size = len(user)
    lo = int(user.min())
    span = int(user.max()) - lo + 1
    if span >= 2**32 or size >= 2**32:
        order = np.lexsort((t, user))
        user = user[order]
        return user, t[order], m[order], order, _person_cuts(user, parts)
    bits = (span - 1).bit_length()
    least, most = kernels.TOP
    low = max(0, bits - min(max(least, bits - kernels.DIGIT), most))
    buckets = ((span - 1) >> low) + 1
    runs = [size * k // parts for k in range(parts + 1)]

    def count(a: int, b: int) -> Ints:
        return cast("Ints", kernels.count_buckets(user, lo, low, a, b, buckets))

    counts = list(pool.map(count, runs[:-1], runs[1:]))
    bounds = np.zeros(buckets + 1, dtype=np.int64)
    np.cumsum(np.sum(counts, axis=0), out=bounds[1:])
    at = [bounds[:-1] + sum(counts[:k], np.zeros(buckets, dtype=np.int64)) for k in range(parts)]
    word, place = np.empty(size, dtype=np.uint64), np.empty(size, dtype=np.int64)
    t1, m1 = np.empty_like(t), np.empty_like(m)

    def scatter(a: int, b: int, offsets: Ints) -> None:
        kernels.scatter(user, t, m, lo, low, a, b, offsets, word, t1, m1, place)

    list(pool.map(scatter, runs[:-1], runs[1:], at))
    firsts = [0, *(int(np.searchsorted(bounds, size * k // parts)) for k in range(1, parts)), buckets]
    firsts = list(itertools.accumulate(firsts, max))

    def sort(first: int, last: int) -> None:
        kernels.sort_buckets(bounds, first, last, low, word, t1, m1, place)

    list(pool.map(sort, firsts[:-1], firsts[1:]))
    user_s = word.view(np.int64)
    user_s += lo
    return user_s, t1, m1, place, [int(bounds[f]) for f in firsts]


def _order_ties(
    ids: Lookup, rid: pa.ChunkedArray, place: Ints | None, user: Ints, t: Ints, m: Ints, tied: Ints
) -> Ints:
    """``m`` with the rows of each person at one instant (``tied``: their places, ascending) in ``event_id``
    order, the order the definitions use (**Events a funnel sees** in :mod:`userloop.query.kinds.funnel`): such
    rows differ only in their masks, so each group's masks are dealt to the group's places in that order. Only
    the tied rows' ids are read (``ids``, by the ``rid`` of their ``place``: ``None``, the rows' own); on real
    logs they are few."""
    if len(tied) == 0:
        return m
    rows = tied if place is None else place[tied]
    sub = pa.table({"user_id": user[tied], "t": t[tied], "eid": ids(rid.take(pa.array(rows))), "at": tied})
    by_place = pc.sort_indices(sub, [("user_id", "ascending"), ("t", "ascending"), ("at", "ascending")])
    by_id = pc.sort_indices(sub, [("user_id", "ascending"), ("t", "ascending"), ("eid", "ascending")])
    m = m.copy()  # it may be a read-only view of the scan
    m[tied[by_place.to_numpy()]] = m[tied[by_id.to_numpy()]]
    return m


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
