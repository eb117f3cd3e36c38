"""The retention fold (query/kinds/retention/fold.py) alone: batches whose person keys arrive in any order and
range, against a dictionary; keys too sparse for its arrays make it decline, and the engine then answers in SQL
(the engine's side is in tests/query/test_retention.py, against the reference and the SQL statements)."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.query.test_funnel import SETTINGS
from userloop.query.kinds.base import FoldDeclined
from userloop.query.kinds.retention import fold as retention_fold
from userloop.query.kinds.retention.fold import fold_people

SCHEMA = pa.schema([("user_id", pa.int64()), ("t", pa.int64()), ("b", pa.int16())])


def _reader(batches: list[list[tuple[int, int, int]]]) -> pa.RecordBatchReader:
    def batch(rows: list[tuple[int, int, int]]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], SCHEMA)

    return pa.RecordBatchReader.from_batches(SCHEMA, [batch(rows) for rows in batches])


def _no_lookup(keys: Any) -> pa.Array:
    raise AssertionError("the retention fold reads no event ids")


@SETTINGS
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(-40, 40), st.integers(-(10**6), 10**6), st.integers(-1, 63)), max_size=30),
        max_size=6,
    ),
    base=st.sampled_from([0, 2**40, -(2**40)]),
    threads=st.sampled_from([1, 2, 3]),
)
def test_each_person_gets_the_earliest_time_and_the_bits_of_their_periods(
    batches: list[list[tuple[int, int, int]]], base: int, threads: int
) -> None:
    batches = [[(base + u, t, b) for u, t, b in batch] for batch in batches]
    want: dict[int, tuple[int, int]] = {}
    for u, t, b in (row for batch in batches for row in batch):
        t0, m = want.get(u, (t, 0))
        want[u] = (min(t0, t), m | (1 << b if b >= 0 else 0))
    # small batches are folded on one thread otherwise: here on `threads`, each taking a range of people
    with (
        patch.object(retention_fold, "fold_threads", lambda rows: threads),
        patch.object(retention_fold, "BATCH_PARALLEL_ROWS", 1),
    ):
        got = fold_people(_reader(batches), _no_lookup)
    assert got.schema.field("t0").type == pa.timestamp("us")
    rows = zip(got["user_id"].to_pylist(), got["t0"].cast(pa.int64()).to_pylist(), got["m"].to_pylist(), strict=True)
    assert {u: (t0, m) for u, t0, m in rows} == want
    assert got["user_id"].to_pylist() == sorted(want)


def test_person_keys_too_sparse_for_arrays_decline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention_fold, "DENSE_SLOTS", 1000)
    rows = [(1, 5, 0), (2, 6, 1)]
    assert fold_people(_reader([rows]), _no_lookup).num_rows == 2
    with pytest.raises(FoldDeclined):
        fold_people(_reader([rows, [(10**6, 7, 2)]]), _no_lookup)
    # a wide range is fine once there are rows enough for it (SPARSE_FACTOR slots a row)
    many = [(k, k, 0) for k in range(0, 4000, 3)]
    assert fold_people(_reader([many]), _no_lookup).num_rows == len(many)
    assert np.array_equal(fold_people(_reader([many[::-1]]), _no_lookup)["user_id"].to_numpy(), np.arange(0, 4000, 3))
