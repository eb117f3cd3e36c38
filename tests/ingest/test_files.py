"""File import: JSON lines, CSV and Parquet, gzip, column mapping, time formats, rejects file, re-import."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import NOW_MS, rows
from tests.ingest.helpers import track
from userloop.core.errors import ValidationError
from userloop.ingest.files import ColumnMapping, import_files
from userloop.store import ProjectStore

TZ = "Asia/Shanghai"


def test_jsonl_gzip_rejects_file_and_reimport(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    records = [json.dumps(track("view", f"u{i}", price=float(i))) for i in range(50)]
    records.insert(10, "{oops")
    with gzip.open(path, "wt") as f:
        f.write("\n".join(records) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    summary = import_files(project, [path], kind="events", timezone=TZ, rejects_path=rejects)
    assert (summary.result.events, summary.result.rejected) == (50, 1)
    [reject] = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert reject["row"] == 11 and reject["raw"] == "{oops" and "malformed JSON" in reject["reason"]
    again = import_files(project, [path], kind="events", timezone=TZ)
    assert (again.result.events, again.result.duplicates) == (0, 50)


def test_csv_mapping_and_time_formats(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "uid,what,when,amount,zip\n"
        "u1,order_paid,2026-01-01 10:00:00,35.5,0210\n"  # ISO without zone: project time zone
        "u2,order_paid,2026-01-01T10:00:00Z,12,0211\n"  # ISO with zone
        "u3,order_paid,1767232800,7,0212\n"  # epoch seconds
        "u4,order_paid,1767232800000,8,0213\n"  # epoch milliseconds
        "u5,order_paid,someday,9,0214\n"  # unreadable
        "u6,order_paid,2026-01-01 10:00:00,lots,0215\n"  # not a number
    )
    mapping = ColumnMapping(user="uid", event="what", time="when", login=True)
    summary = import_files(project, [path], kind="events", timezone=TZ, mapping=mapping)
    assert (summary.result.events, summary.result.rejected) == (4, 2)
    got = dict(rows(project, "SELECT distinct_id, strftime(time, '%Y-%m-%d %H:%M:%S') FROM {events}"))
    assert got == {
        "u1": "2026-01-01 02:00:00",
        "u2": "2026-01-01 10:00:00",
        "u3": "2026-01-01 02:00:00",
        "u4": "2026-01-01 02:00:00",
    }
    assert rows(project, "SELECT zip FROM {events} WHERE distinct_id = 'u1'") == [("0210",)]
    reasons = dict(rows(project, "SELECT row_no, reason FROM {rejects}"))
    assert "is neither epoch seconds" in reasons[5] and 'cannot read "lots" as NUMBER' in reasons[6]
    assert rows(project, "SELECT id_type FROM {identities} WHERE id_value = 'u1'") == [("$identity_login_id",)]


def test_csv_bad_column_name_is_refused_before_anything_is_written(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("distinct_id,event,time,order date\nu1,a,1767232800,2026-01-01\n")
    with pytest.raises(ValidationError, match=r"column 'order date' cannot be a property.*--rename"):
        import_files(project, [path], kind="events", timezone=TZ)
    assert rows(project, "SELECT count(*) FROM {events}") == [(0,)]
    mapping = ColumnMapping(rename={"order date": "order_date"})
    assert import_files(project, [path], kind="events", timezone=TZ, mapping=mapping).result.events == 1


def test_missing_mapped_column_names_the_options(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user,event,time\nu1,a,1767232800\n")
    with pytest.raises(ValidationError, match="no column 'distinct_id'.*--user-column"):
        import_files(project, [path], kind="events", timezone=TZ)


def test_parquet_typed_columns_and_row_hash_dedupe(project: ProjectStore, tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    n = 1000
    pq.write_table(
        pa.table(
            {
                "distinct_id": [f"u{i % 37}" for i in range(n)],
                "event": ["view_item"] * n,
                "time": pa.array([NOW_MS - i * 1000 for i in range(n)], pa.int64()),
                "price": [i * 0.5 for i in range(n)],
                "in_stock": [i % 2 == 0 for i in range(n)],
                "tags": [["a", "b"]] * n,
                "seen_on": pa.array([None] * n, pa.date32()),
            }
        ),
        path,
        row_group_size=300,
    )
    summary = import_files(project, [path], kind="events", timezone=TZ)
    assert (summary.result.events, summary.result.rejected) == (n, 0)
    types = dict(rows(project, "SELECT name, type FROM {registry}"))
    assert types == {"price": "NUMBER", "in_stock": "BOOL", "tags": "LIST", "seen_on": "DATE"}
    assert rows(project, "SELECT count(DISTINCT user_id) FROM {events}") == [(37,)]
    again = import_files(project, [path], kind="events", timezone=TZ)
    assert (again.result.events, again.result.duplicates) == (0, n)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_parquet_timestamp_time_column_of_every_unit(project: ProjectStore, tmp_path: Path, unit: str) -> None:
    """Zone-less Arrow timestamps of any unit are project-local wall time (DuckDB 2.0 needs a cast for s/ms/ns)."""
    path = tmp_path / f"t_{unit}.parquet"
    local_wall_ms = NOW_MS - NOW_MS % 1000  # whole seconds, representable in every unit
    scale = {"s": 1 / 1000, "ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    wall = pa.array([int(local_wall_ms * scale)], pa.int64()).cast(pa.timestamp(unit))
    pq.write_table(pa.table({"distinct_id": ["u1"], "event": ["view_item"], "time": wall}), path)
    summary = import_files(project, [path], kind="events", timezone=TZ)
    assert (summary.result.events, summary.result.rejected) == (1, 0)
    shanghai_offset_ms = 8 * 3600 * 1000  # Asia/Shanghai has no daylight saving time
    assert rows(project, "SELECT epoch_ms(time) FROM {events}") == [(local_wall_ms - shanghai_offset_ms,)]


def test_users_and_items_csv(project: ProjectStore, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("distinct_id,gender,birthday,vip\nL1,f,1990-05-01,true\nL2,m,1985-12-31,false\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,name,price\np1,Apple,3.5\np2,Milk,2\n")
    assert (
        import_files(project, [users], kind="users", timezone=TZ, mapping=ColumnMapping(login=True)).result.accepted
        == 2
    )
    mapping = ColumnMapping(default_item_type="product")
    assert import_files(project, [items], kind="items", timezone=TZ, mapping=mapping).result.accepted == 2
    assert rows(project, "SELECT first_id, gender, birthday::VARCHAR, vip FROM {users} ORDER BY 1") == [
        ("L1", "f", "1990-05-01", True),
        ("L2", "m", "1985-12-31", False),
    ]
    assert rows(project, "SELECT item_type, item_id, price FROM {items} ORDER BY 2") == [
        ("product", "p1", 3.5),
        ("product", "p2", 2.0),
    ]


def test_fast_and_line_by_line_paths_agree_on_ids(project: ProjectStore, tmp_path: Path) -> None:
    """A clean file is read by DuckDB's reader, a file with a bad line line by line: same records, same ids."""
    records = [
        json.dumps(track("view", f"u{i}", price=float(i), tags=["a"]))
        if i % 3
        else json.dumps({**track("buy", f"u{i}"), "_track_id": i})
        for i in range(30)
    ]
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(records) + "\n")
    first = import_files(project, [clean], kind="events", timezone=TZ)
    assert (first.result.events, first.result.rejected) == (30, 0)
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text("\n".join([*records[:5], "{broken", *records[5:]]) + "\n")
    second = import_files(project, [dirty], kind="events", timezone=TZ)
    assert (second.result.events, second.result.duplicates, second.result.rejected) == (0, 30, 1)
    assert rows(project, "SELECT row_no FROM {rejects}") == [(6,)]
