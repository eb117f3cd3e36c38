"""Arrow column builders shared by the record tables: labels from small vocabularies, sparse columns.

Every string property with few distinct values (``$os``, ``event``, ``category``, ``product_id`` …) is a
dictionary array, ``dictionary<int32, string>``, which the loader reads as a STRING property: building one costs
an index array instead of a copy of every string, which is what makes the simulator fast. Identifiers
(``distinct_id``, ``event_id``, ``order_id``, ``item_id``) are plain strings.

A null means "not set on this record". Columns are assembled from numpy buffers and a packed validity bitmap
(``pa.Array.from_buffers``), which is several times cheaper than letting ``pa.array`` convert a mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

TIMESTAMP_MS = pa.timestamp("ms")
_NUMPY_OF = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64, TIMESTAMP_MS: np.int64}


def vocabulary(values: Sequence[str]) -> pa.StringArray:
    return pa.array(list(values), type=pa.string())


def _bitmap(valid: np.ndarray | None) -> pa.Buffer | None:
    if valid is None:
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def numbers(values: np.ndarray, missing: np.ndarray | None, dtype: pa.DataType) -> pa.Array:
    """A numeric, boolean or timestamp column from ``values``, null where ``missing``."""
    valid = None if missing is None else ~missing
    if pa.types.is_boolean(dtype):
        data = pa.py_buffer(np.packbits(np.asarray(values, dtype=bool), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values, dtype=_NUMPY_OF[dtype]))
    return pa.Array.from_buffers(dtype, len(values), [_bitmap(valid), data])


def labels(vocab: pa.Array, index: np.ndarray, missing: np.ndarray | None = None) -> pa.DictionaryArray:
    """``vocab[index]`` per row as a dictionary array, null where ``missing`` (default: where ``index < 0``).

    Indices must be valid wherever the row is not null (they are not checked).
    """
    index = np.asarray(index, dtype=np.int32)
    if missing is None:
        missing = index < 0
    indices = numbers(index, missing if missing.any() else None, pa.int32())
    return pa.DictionaryArray.from_arrays(indices, vocab, safe=False)


def bitmap_at(n: int, at: np.ndarray) -> pa.Buffer:
    """A validity bitmap of ``n`` rows with only the (ascending, distinct) rows ``at`` set.

    Few rows: set their bits directly, in O(len(at)); many rows: pack a full mask, which is cheaper then.
    """
    if len(at) * 32 > n:
        valid = np.zeros(n, dtype=bool)
        valid[at] = True
        return pa.py_buffer(np.packbits(valid, bitorder="little"))
    bitmap = np.zeros((n + 7) // 8, dtype=np.uint8)
    if len(at):
        byte = at >> 3
        starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        bits = np.left_shift(1, at & 7).astype(np.uint8)
        bitmap[byte[starts]] = np.bitwise_or.reduceat(bits, starts)
    return pa.py_buffer(bitmap)


def sparse_labels(vocab: pa.Array, n: int, at: np.ndarray, index: np.ndarray) -> pa.DictionaryArray:
    """A label column of ``n`` rows: ``vocab[index]`` at the ascending rows ``at``, null elsewhere."""
    data = np.zeros(n, dtype=np.int32)
    data[at] = index
    indices = pa.Array.from_buffers(pa.int32(), n, [bitmap_at(n, at), pa.py_buffer(data)])
    return pa.DictionaryArray.from_arrays(indices, vocab, safe=False)


def sparse_numbers(n: int, at: np.ndarray, values: np.ndarray, dtype: pa.DataType) -> pa.Array:
    """A numeric, boolean or timestamp column of ``n`` rows: ``values`` at the ascending rows ``at``, null
    elsewhere. Costs the number of values set (plus zeroed memory), not ``n``."""
    if pa.types.is_boolean(dtype):
        flags = np.zeros(n, dtype=bool)
        flags[at] = values
        data = pa.py_buffer(np.packbits(flags, bitorder="little"))
    else:
        full = np.zeros(n, dtype=_NUMPY_OF[dtype])
        full[at] = values
        data = pa.py_buffer(full)
    return pa.Array.from_buffers(dtype, n, [bitmap_at(n, at), data])


def sparse_strings(values: pa.StringArray, n: int, at: np.ndarray, index: np.ndarray) -> pa.Array:
    """A string column of ``n`` rows: ``values[index]`` at the ascending rows ``at``, null elsewhere.

    Null rows take no bytes, so the data buffer is the gathered values and the offsets repeat between them.
    """
    picked = values.take(pa.array(index, type=pa.int64()))
    offsets_in = np.frombuffer(picked.buffers()[1], dtype=np.int32, count=len(picked) + 1, offset=picked.offset * 4)
    sizes = np.zeros(n, dtype=np.int32)
    sizes[at] = np.diff(offsets_in)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, dtype=np.int32, out=offsets[1:])
    data = picked.buffers()[2]
    start = int(offsets_in[0])
    if start:
        data = data.slice(start)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), data, bitmap_at(n, at))


def string_lists(vocab: pa.Array, n: int, at: np.ndarray, lengths: np.ndarray, values: np.ndarray) -> pa.Array:
    """A ``list<string>`` column of ``n`` rows: at row ``at[i]`` the next ``lengths[i]`` of ``values``."""
    sizes = np.zeros(n, dtype=np.int32)
    sizes[at] = lengths
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(sizes, dtype=np.int32, out=offsets[1:])
    valid = np.zeros(n, dtype=bool)
    valid[at] = True
    items = vocab.take(pa.array(values, type=pa.int32()))
    return pa.ListArray.from_buffers(
        pa.list_(pa.string()), n, [_bitmap(valid), pa.py_buffer(offsets)], children=[items]
    )


def constant(vocab: pa.Array, n: int) -> pa.DictionaryArray:
    """A label column whose every row is ``vocab[0]`` (e.g. the record ``type``)."""
    return labels(vocab, np.zeros(n, dtype=np.int32), None)


def constant_of(value: str, n: int) -> pa.DictionaryArray:
    return constant(vocabulary([value]), n)
