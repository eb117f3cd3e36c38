"""The fold's loops (:mod:`.fold`), compiled to machine code by Numba (``cache=True``: compiled once per machine,
then loaded from Numba's cache). Kept apart so that importing the funnel does not import Numba: only a fold does.

Each loop is one linear pass over the rows, the shape ClickHouse's ``windowFunnel`` has (one state per person,
updated event by event, ``AggregateFunctionWindowFunnel.h``); the reasoning about what they compute is in
:mod:`.fold`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

_jit: Any = njit(cache=True, nogil=True)


@_jit
def clustered(user: Any, t: Any) -> bool:
    """Whether the rows are in ``(user, t)`` order already (a clustered table's scan)."""
    for i in range(1, len(user)):  # noqa: SIM110 (a loop Numba compiles; a generator it does not)
        if user[i] < user[i - 1] or (user[i] == user[i - 1] and t[i] < t[i - 1]):
            return False
    return True


#: Most bits of the person key placed per pass of :func:`sort_buckets` (4,096 counts: they stay in the L1 cache).
DIGIT = 12
#: Fewest and most bits of the person key that choose a row's bucket in :func:`scatter`: at least 1,024 buckets,
#: as many more as leave :data:`DIGIT` bits to sort within each (one pass), up to 65,536.
TOP = (10, 16)


@_jit
def count_buckets(user: Any, lo: int, low: int, start: int, stop: int, buckets: int) -> Any:
    """Rows of ``user[start:stop]`` per bucket: the person key's bits above ``low``."""
    count = np.zeros(buckets, dtype=np.int64)
    for i in range(start, stop):
        count[(user[i] - lo) >> low] += 1
    return count


@_jit
def scatter(
    user: Any,
    t: Any,
    m: Any,
    lo: int,
    low: int,
    start: int,
    stop: int,
    at: Any,
    word: Any,
    t1: Any,
    m1: Any,
    place: Any,
) -> None:
    """Rows ``start:stop`` moved to their buckets (each from its position ``at[bucket]`` on, in order: stable):
    the person key's low ``low`` bits above the row's new position in ``word``, its time, mask and old place."""
    keep = np.int64((1 << low) - 1)
    for i in range(start, stop):
        key = user[i] - lo
        d = key >> low
        p = at[d]
        at[d] = p + 1
        word[p] = (np.uint64(key & keep) << np.uint64(32)) | np.uint64(p)
        t1[p], m1[p], place[p] = t[i], m[i], i


@_jit
def sort_buckets(bounds: Any, first: int, last: int, low: int, word: Any, t1: Any, m1: Any, place: Any) -> None:
    """Buckets ``first:last`` (rows ``bounds[b]:bounds[b + 1]``) put in ``(person, time)`` order in place: an LSD
    radix sort of each bucket's words on the low key bits, a gather of the bucket's rows (all within the bucket:
    it stays in the cache), and each person's rows sorted by time where they are not in order already (late
    events). ``word`` ends holding each row's person key less ``lo``."""
    most = 0
    for b in range(first, last):
        most = max(most, bounds[b + 1] - bounds[b])
    spare = np.empty(most, dtype=np.uint64)
    tt, mm, pp = np.empty(most, dtype=t1.dtype), np.empty(most, dtype=m1.dtype), np.empty(most, dtype=place.dtype)
    passes = max(1, (low + DIGIT - 1) // DIGIT)
    digit = (low + passes - 1) // passes
    radix = 1 << digit
    count = np.empty(radix + 1, dtype=np.int64)
    low_mask = np.uint64(0xFFFFFFFF)
    for b in range(first, last):
        s, e = bounds[b], bounds[b + 1]
        size = e - s
        if size == 0:
            continue
        src, dst = word[s:e], spare[:size]
        shift = 32
        while shift < 32 + low:
            count[:] = 0
            for i in range(size):
                count[((src[i] >> np.uint64(shift)) & np.uint64(radix - 1)) + 1] += 1
            for d in range(radix):
                count[d + 1] += count[d]
            for i in range(size):
                d = (src[i] >> np.uint64(shift)) & np.uint64(radix - 1)
                dst[count[d]] = src[i]
                count[d] += 1
            src, dst = dst, src
            shift += digit
        base = np.uint64(b) << np.uint64(low)
        for j in range(size):
            w = src[j]
            p = np.int64(w & low_mask)
            tt[j], mm[j], pp[j] = t1[p], m1[p], place[p]
            word[s + j] = (w >> np.uint64(32)) + base
        t1[s:e], m1[s:e], place[s:e] = tt[:size], mm[:size], pp[:size]
        i = s
        while i < e:
            end = i + 1
            in_order = True
            while end < e and word[end] == word[i]:
                in_order = in_order and t1[end] >= t1[end - 1]
                end += 1
            if not in_order:
                again = np.argsort(t1[i:end], kind="mergesort")
                t1[i:end] = t1[i:end][again]
                m1[i:end] = m1[i:end][again]
                place[i:end] = place[i:end][again]
            i = end


@_jit
def tied(user: Any, t: Any) -> Any:
    """Places of the rows (in ``(user, t)`` order) sharing person and instant with a neighbour: the runs whose
    order the event ids decide."""
    count = 0
    for i in range(1, len(user)):
        if user[i - 1] == user[i] and t[i - 1] == t[i]:
            count += 1
    out = np.empty(2 * count, dtype=np.int64)
    size = 0
    for i in range(1, len(user)):
        if user[i - 1] == user[i] and t[i - 1] == t[i]:
            if size == 0 or out[size - 1] != i - 1:
                out[size] = i - 1
                size += 1
            out[size] = i
            size += 1
    return out[:size]


@_jit
def fold(user: Any, t: Any, m: Any, n: int, w_us: int, hi_us: int) -> Any:
    """``best`` of a plain sequential funnel of ``n`` steps from rows in ``(user, time, event_id)`` order.
    Returns one row per person and level reached, as the columns of a 5 × rows array: ``user``, ``k``, ``d``,
    ``o1``, ``g`` (``g`` is −1 for step 1, which has none).

    Per person and level ``k`` the state is the last row so far ending an attempt at ``k`` (its start's time and
    its own); a step-``k`` row extends the chain through the last row strictly before it ending at ``k − 1``
    when that chain's start lies within the window. Levels are visited from ``n`` down, so a row matching
    several steps is extended only by strictly earlier rows. The best attempt per level is the first with the
    least duration. Two passes: the first counts the rows, so only they are held."""
    rows = _fold(user, t, m, n, w_us, hi_us, None)
    out = np.empty((5, rows), dtype=np.int64)
    _fold(user, t, m, n, w_us, hi_us, out)
    return out


@_jit
def _fold(user: Any, t: Any, m: Any, n: int, w_us: int, hi_us: int, out: Any) -> int:
    """:func:`fold`'s pass: the number of ``best`` rows, written into ``out`` (``user``, ``k``, ``d``, ``o1``,
    ``g`` by row) unless it is ``None`` (the first pass, which sizes it)."""
    size = len(user)
    start = np.empty(n + 1, dtype=np.int64)  # per level: the start time of the last row ending there
    last = np.empty(n + 1, dtype=np.int64)  # and that row's time
    ends = np.zeros(n + 1, dtype=np.bool_)
    found = np.zeros(n + 1, dtype=np.bool_)
    best_d = np.empty(n + 1, dtype=np.int64)
    best_o1 = np.empty(n + 1, dtype=np.int64)
    best_g = np.empty(n + 1, dtype=np.int64)
    written = 0
    i = 0
    while i < size:
        person = user[i]
        ends[:] = False
        found[:] = False
        while i < size and user[i] == person:
            time, mask = t[i], m[i]
            for k in range(n, 1, -1):
                if (mask >> (k - 1)) & 1 and ends[k - 1] and time - start[k - 1] <= w_us:
                    d = time - start[k - 1]
                    if not found[k] or d < best_d[k]:
                        found[k] = True
                        best_d[k], best_o1[k], best_g[k] = d, time, time - last[k - 1]
                    ends[k] = True
                    start[k], last[k] = start[k - 1], time
            if mask & 1 and time < hi_us:
                if not found[1]:
                    found[1] = True
                    best_d[1], best_o1[1], best_g[1] = 0, time, -1
                ends[1] = True
                start[1], last[1] = time, time
            i += 1
        for k in range(1, n + 1):
            if found[k]:
                if out is not None:
                    out[0, written], out[1, written], out[2, written] = person, k, best_d[k]
                    out[3, written], out[4, written] = best_o1[k], best_g[k]
                written += 1
    return written
