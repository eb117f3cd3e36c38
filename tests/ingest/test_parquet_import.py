"""Parquet import against a Python model: checks, duplicates inside the file and against stored events, chunks.

The loader stages a Parquet file as a view (each pass decodes only its columns), keeps only the refused rows of
its check pass, and looks for repeated ids only when a count of distinct ids says there are some. The model
here knows none of that: it walks the rows in order, refuses those that break a rule, and skips an id already
accepted earlier (in the file or in a previous import); each new user takes the next person key by its first
written row, with first and last seen from its written rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import userloop.ingest.files as files
from tests.conftest import NOW_MS, examples, rows
from userloop.ingest.files import import_files
from userloop.store import ProjectStore, Workspace

TZ = "Asia/Shanghai"
FUTURE_MS = NOW_MS + 10 * 86_400_000  # past the hour of clock skew a project accepts


@dataclass(frozen=True)
class Row:
    event_id: str
    user: str | None
    time: int | None


def _write(path: Path, data: list[Row], row_group_size: int) -> None:
    pq.write_table(
        pa.table(
            {
                "event_id": [r.event_id for r in data],
                "distinct_id": pa.array([r.user for r in data], pa.string()),
                "event": ["view_item"] * len(data),
                "time": pa.array([r.time for r in data], pa.int64()),
                "price": [float(i) for i in range(len(data))],
            }
        ),
        path,
        row_group_size=row_group_size,
    )


def _model(data: list[Row], stored: set[str]) -> tuple[list[Row], dict[int, str], int]:
    """(rows written in file order, refused row number → field, duplicates), walking the rows one by one."""
    written: list[Row] = []
    refused: dict[int, str] = {}
    seen = set(stored)
    duplicates = 0
    for row_no, r in enumerate(data, start=1):
        if not r.user:
            refused[row_no] = "distinct_id"
        elif r.time is None or r.time > NOW_MS + 3_600_000:
            refused[row_no] = "time"
        elif r.event_id in seen:
            duplicates += 1
        else:
            seen.add(r.event_id)
            written.append(r)
    return written, refused, duplicates


def _import(project: ProjectStore, path: Path) -> tuple[int, int, int]:
    r = import_files(project, [path], kind="events", timezone=TZ).result
    return r.events, r.rejected, r.duplicates


def _people(history: list[Row]) -> list[tuple[str, int, int, int]]:
    """(distinct id, person key, first seen, last seen in ms) of the persons of the rows written so far, in
    import order: a new id takes the next key, by its first written row."""
    people: dict[str, list[int]] = {}
    for r in history:
        assert r.user is not None and r.time is not None
        person = people.setdefault(r.user, [len(people) + 1, r.time, r.time])
        person[1], person[2] = min(person[1], r.time), max(person[2], r.time)
    return sorted((user, *person) for user, person in people.items())


def _check_against_model(
    project: ProjectStore, path: Path, data: list[Row], stored: set[str], history: list[Row] | None = None
) -> None:
    """The import of ``data`` against the model; ``history``: the rows written before (appended to)."""
    written, refused, duplicates = _model(data, stored)
    before = {str(e) for (e,) in rows(project, "SELECT event_id FROM {events}")}
    assert _import(project, path) == (len(written), len(refused), duplicates)
    after = {str(e) for (e,) in rows(project, "SELECT event_id FROM {events}")}
    assert after - before == {r.event_id for r in written} and len(after) == len(before) + len(written)
    got = dict(rows(project, "SELECT row_no, field FROM {rejects} WHERE source = ?", [str(path)]))
    assert got == refused
    # every written event has its person: one per distinct_id (these files bind no ids)
    assert rows(project, "SELECT count(DISTINCT distinct_id) = count(DISTINCT user_id) FROM {events}") == [(True,)]
    assert rows(project, "SELECT count(*) FROM {events} WHERE user_id IS NULL") == [(0,)]
    history = [] if history is None else history
    history += written
    people = "SELECT first_id, user_id, epoch_ms(first_seen), epoch_ms(last_seen) FROM {users} ORDER BY first_id"
    assert rows(project, people) == _people(history)
    assert rows(project, "SELECT id_value, user_id FROM {identities} ORDER BY id_value") == [
        (user, key) for user, key, _, _ in _people(history)
    ]


def test_unique_ids_are_all_written_and_a_second_import_adds_nothing(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "unique.parquet"
    data = [Row(f"e{i}", f"u{i % 7}", NOW_MS - i * 1000) for i in range(50)]
    _write(path, data, row_group_size=16)
    assert _import(project, path) == (50, 0, 0)
    assert rows(project, "SELECT count(DISTINCT user_id) FROM {events}") == [(7,)]
    assert _import(project, path) == (0, 0, 50)


def test_repeated_ids_keep_the_first_valid_row_and_refused_rows_claim_no_id(
    project: ProjectStore, tmp_path: Path
) -> None:
    path = tmp_path / "repeats.parquet"
    data = [
        Row("a", "u1", NOW_MS - 5000),
        Row("b", None, NOW_MS - 4000),  # refused: no user; the next "b" is the first valid one
        Row("a", "u2", NOW_MS - 5000),  # repeat of row 1
        Row("b", "u2", NOW_MS - 4000),
        Row("c", "u3", FUTURE_MS),  # refused: in the future
        Row("c", "u3", NOW_MS - 3000),
        Row("a", "u1", NOW_MS - 5000),  # repeat again
    ]
    _write(path, data, row_group_size=3)
    _check_against_model(project, path, data, set())
    assert dict(rows(project, "SELECT event_id, distinct_id FROM {events}")) == {"a": "u1", "b": "u2", "c": "u3"}


def test_repeats_across_chunks_are_found_among_the_stored_events(
    project: ProjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "PARQUET_BATCH_ROWS", 4)  # chunks of 4 rows (row groups of 2)
    path = tmp_path / "chunks.parquet"
    data = [Row(f"e{i % 5}", f"u{i % 3}", NOW_MS - (i % 5) * 1000) for i in range(12)]
    _write(path, data, row_group_size=2)
    _check_against_model(project, path, data, set())
    assert rows(project, "SELECT count(*) FROM {events}") == [(5,)]


@st.composite
def files_of_rows(draw: st.DrawFn) -> tuple[list[Row], int, int]:
    """Rows whose ids come from a small pool (so that they repeat); an id keeps its time, as a resent event
    does; some rows lack a user or have a time out of the window."""
    n = draw(st.integers(1, 40))
    data: list[Row] = []
    for _ in range(n):
        k = draw(st.integers(0, 12))
        fault = draw(st.sampled_from(["", "", "", "user", "no time", "future"]))
        user = None if fault == "user" else draw(st.sampled_from(["u0", "u1", "u2", "u3"]))
        t = None if fault == "no time" else FUTURE_MS if fault == "future" else NOW_MS - k * 60_000
        data.append(Row(f"id{k}", user, t))
    return data, draw(st.sampled_from([1, 3, 8, 64])), draw(st.sampled_from([2, 5, 1000]))


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=files_of_rows(), again=files_of_rows())
def test_import_matches_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[list[Row], int, int], again: tuple[list[Row], int, int]
) -> None:
    ws, _ = Workspace.init(tmp_path / f"w{time.monotonic_ns()}")
    try:
        project = ws.project()
        stored: set[str] = set()
        history: list[Row] = []
        for i, (data, row_group_size, batch_rows) in enumerate((case, again)):
            monkeypatch.setattr(files, "PARQUET_BATCH_ROWS", batch_rows)
            path = tmp_path / f"f{time.monotonic_ns()}_{i}.parquet"
            _write(path, data, row_group_size)
            _check_against_model(project, path, data, stored, history)
            stored |= {r.event_id for r in _model(data, stored)[0]}
    finally:
        ws.close()
