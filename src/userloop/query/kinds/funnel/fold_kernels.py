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


#: Bits of the person key placed per pass of :func:`by_person` (4,096 counts: they stay in the L1 cache).
DIGIT = 12


@_jit
def by_person(user: Any, t: Any, m: Any, lo: int, span: int) -> Any:
    """The rows in ``(user, t)`` order, as ``user``, ``t``, ``m`` and each row's place in the input.

    An LSD radix sort (Knuth TAOCP vol. 3 §5.2.5) on ``user − lo`` (below ``span`` < 2³²), :data:`DIGIT` bits a
    pass, of one 64-bit word per row, the key above the row's place, so each pass streams one array into 4,096
    runs; stable, so rows already in time order (the append order) stay so. Then the rows are gathered, and each
    person's rows sorted by time where they are not in order already (late events)."""
    size = len(user)
    words = np.empty(size, dtype=np.uint64)
    for i in range(size):
        words[i] = (np.uint64(user[i] - lo) << np.uint64(32)) | np.uint64(i)
    spare = np.empty(size, dtype=np.uint64)
    radix = 1 << DIGIT
    shift = 32
    while (1 << (shift - 32)) < span:
        count = np.zeros(radix + 1, dtype=np.int64)
        for i in range(size):
            count[((words[i] >> np.uint64(shift)) & np.uint64(radix - 1)) + 1] += 1
        for d in range(radix):
            count[d + 1] += count[d]
        for i in range(size):
            d = (words[i] >> np.uint64(shift)) & np.uint64(radix - 1)
            spare[count[d]] = words[i]
            count[d] += 1
        words, spare = spare, words
        shift += DIGIT
    spare = np.empty(0, dtype=np.uint64)  # freed before the gathered columns are made
    user_s, t_s = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    m_s, place = np.empty(size, dtype=m.dtype), np.empty(size, dtype=np.int64)
    for j in range(size):
        at = np.int64(words[j] & np.uint64(0xFFFFFFFF))
        user_s[j], t_s[j], m_s[j], place[j] = np.int64(words[j] >> np.uint64(32)) + lo, t[at], m[at], at
    start = 0
    while start < size:
        end = start + 1
        in_order = True
        while end < size and user_s[end] == user_s[start]:
            in_order = in_order and t_s[end] >= t_s[end - 1]
            end += 1
        if not in_order:
            again = np.argsort(t_s[start:end], kind="mergesort")
            t_s[start:end] = t_s[start:end][again]
            m_s[start:end] = m_s[start:end][again]
            place[start:end] = place[start:end][again]
        start = end
    return user_s, t_s, m_s, place


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
