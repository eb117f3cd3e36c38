"""Reading a query's rows under a cap on the reply's size, so a wide or long result is never held in full.

Rows are fetched a chunk at a time and measured as the JSON they become; fetching stops at the row cap or as soon
as the next chunk would pass the byte cap, and the reason is returned for the reply to carry.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

#: Rows read at a time: small enough that one chunk never weighs much more than the cap allows.
CHUNK_ROWS = 1_000


class _Rows(Protocol):
    def fetchmany(self, n: int) -> list[Any]: ...


def json_size(rows: list[Any]) -> int:
    """The size of ``rows`` as JSON (values JSON cannot hold are counted as their text)."""
    return len(orjson.dumps([list(r) for r in rows], default=str, option=orjson.OPT_PASSTHROUGH_DATACLASS))


def fetch_capped(result: _Rows, max_rows: int, max_bytes: int | None) -> tuple[list[Any], str | None]:
    """At most ``max_rows`` rows of ``result`` whose JSON stays under ``max_bytes``, and why it stopped early
    (None when every row is there)."""
    rows: list[Any] = []
    size = 0
    while len(rows) <= max_rows:
        chunk = result.fetchmany(min(CHUNK_ROWS, max_rows + 1 - len(rows)))
        if not chunk:
            return rows, None
        if max_bytes is not None:
            chunk_size = json_size(chunk)
            if size + chunk_size > max_bytes:
                rows.extend(_fitting(chunk, max_bytes - size))
                return (
                    rows,
                    f"the reply reached its cap of {max_bytes} bytes of JSON; add LIMIT or select fewer columns",
                )
            size += chunk_size
        rows.extend(chunk)
    return rows[:max_rows], f"more than {max_rows} rows; raise the limit or add LIMIT"


def _fitting(chunk: list[Any], room: int) -> list[Any]:
    """The leading rows of ``chunk`` whose JSON fits in ``room`` bytes."""
    out: list[Any] = []
    for row in chunk:
        room -= json_size([row])
        if room < 0:
            break
        out.append(row)
    return out
