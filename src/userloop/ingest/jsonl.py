"""JSON lines in the Sensors Analytics record format.

One record per line::

    {"type": "track", "event": "order_paid", "distinct_id": "u1", "time": 1700000000000,
     "properties": {"$is_login_id": true, "order_amount": 35.5}, "lib": {"$lib": "python"}}

Fields: ``type``, ``event``, ``distinct_id``, ``original_id``, ``time`` (epoch ms), ``properties``,
``identities`` (ID-Mapping 3.0), ``item_type``/``item_id``, ``lib.$lib``, and a dedupe id: ``event_id`` when
given, else one derived from ``_track_id``, else the MD5 of the line, so a file imported twice adds nothing.
Parsing happens inside DuckDB, vectorised; a line that is not JSON is a reject with its line number.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from userloop.ingest.source import Staged
from userloop.store.duck import ProjectStore

CHUNK_BYTES = 64 << 20
_counter = itertools.count()

_PATHS = [
    "$.type",
    "$.event",
    "$.distinct_id",
    "$.original_id",
    "$.time",
    "$.event_id",
    "$._track_id",
    '$.lib."$lib"',
    "$.item_type",
    "$.item_id",
    "$.properties",
    "$.identities",
    '$.properties."$is_login_id"',
]


def open_bytes(path: Path) -> Iterator[bytes]:
    """The file's bytes in chunks, gunzipped when it is gzip (by magic number, not by name)."""
    with path.open("rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def iter_line_chunks(path: Path) -> Iterator[tuple[int, pa.Array]]:
    """(number of the first line, the lines as an Arrow string array; NULL where a line is not UTF-8)."""
    line_no = 1
    tail = b""
    for chunk in open_bytes(path):
        data = tail + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            tail = data
            continue
        tail = data[cut + 1 :]
        lines = split_lines(data[:cut])
        yield line_no, lines
        line_no += len(lines)
    if tail.strip():
        yield line_no, split_lines(tail)


def split_lines(data: bytes) -> pa.Array:
    """Split on newlines in Arrow (vectorised); a line that is not UTF-8 becomes NULL, the others stay."""
    parts = pc.split_pattern(pa.array([data], pa.binary()), b"\n").flatten()
    try:
        return parts.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([_utf8_or_none(b) for b in parts.to_pylist()], pa.string())


def _utf8_or_none(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def stage_json_lines(
    project: ProjectStore, lines: pa.Array | list[str | None], first_line: int, *, source: str
) -> Staged:
    """Stage JSON lines for the loader; ``first_line`` is the number of the first (blank lines are skipped)."""
    name = f"_ul_jsonl_{next(_counter)}"
    array = lines if isinstance(lines, pa.Array) else pa.array(lines, pa.string())
    rows = pa.array(range(first_line, first_line + len(array)), pa.int64())
    project.con.register(name, pa.table({"_row": rows, "line": array}))
    paths = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in _PATHS) + "]"
    view = f"{name}_v"
    # Materialised: the loader reads the staged records several times, and each line is parsed only here.
    project.con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {view} AS
        SELECT _row, coalesce(line, '<not UTF-8>') AS _raw,
               CASE WHEN line IS NULL THEN 'line is not valid UTF-8'
                    WHEN NOT ok THEN 'malformed JSON: ' || left(line, 80)
                    WHEN json_type(line) <> 'OBJECT' THEN 'record is not a JSON object'
                    WHEN x[5] IS NOT NULL AND json_type(x[5]) NOT IN ('BIGINT', 'UBIGINT', 'NULL')
                        THEN 'time must be an integer: epoch milliseconds (UTC)'
               END AS _error,
               x[1]->>'$' AS type, x[2]->>'$' AS event,
               coalesce(x[3]->>'$', x[12]->>'$."$identity_login_id"', x[12]->>'$."$identity_anonymous_id"')
                   AS distinct_id,
               coalesce(TRY_CAST(x[13] AS BOOLEAN), x[3] IS NULL AND x[12]->>'$."$identity_login_id"' IS NOT NULL)
                   AS is_login_id,
               x[4]->>'$' AS original_id,
               TRY_CAST(x[5] AS BIGINT) AS time,
               coalesce(x[6]->>'$',
                        CASE WHEN x[7] IS NOT NULL THEN md5(concat_ws(chr(31), x[3]->>'$', x[2]->>'$', x[5]::VARCHAR,
                                                                   x[7]::VARCHAR)) END,
                        md5(line)) AS event_id,
               x[8]->>'$' AS lib, x[9]->>'$' AS item_type, x[10]->>'$' AS item_id,
               x[12] AS identities, x[11] AS properties,
               CASE WHEN json_type(x[11]) = 'OBJECT' THEN json_keys(x[11]) END AS _k
        FROM (SELECT _row, line, ok,
                     CASE WHEN ok AND json_type(line) = 'OBJECT' THEN json_extract(line, {paths}) END AS x
              FROM (SELECT _row, line, coalesce(json_valid(line), false) AS ok
                    FROM (SELECT _row, rtrim(line, chr(13)) AS line FROM {name})
                    WHERE line IS NULL OR trim(line) <> ''))
        """
    )
    return Staged(
        relation=view,
        source=source,
        json_props_column="properties",
        ignore_keys=("$is_login_id",),
        cleanup=[f"TABLE {view}"],
        registered=[name],
    )
