"""Sources: turn input into one staged relation of canonical columns.

Every input — an Arrow table from the simulator or an SDK adapter, JSON lines, a CSV or Parquet file —
becomes a DuckDB relation with the canonical columns below plus one column per property. The loader never
looks at the input again, so every source gets the same checks and the same rejects.

Canonical columns (all may be NULL):
``_row`` (source line or row number), ``_raw`` (the input text, for the rejects file), ``_error`` (a problem
found while reading, e.g. malformed JSON), ``type``, ``event``, ``distinct_id``, ``is_login_id``,
``original_id``, ``time`` (epoch ms), ``event_id``, ``lib``, ``item_type``, ``item_id``, ``identities``
(JSON object of identity type → value).

Properties come in two forms: *typed* columns (Arrow, Parquet, CSV: the column's own type) or *json* values
extracted from a record's ``properties`` object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import duckdb

CANONICAL = (
    "_row",
    "_raw",
    "_error",
    "type",
    "event",
    "distinct_id",
    "is_login_id",
    "original_id",
    "time",
    "event_id",
    "lib",
    "item_type",
    "item_id",
    "identities",
)

CANONICAL_TYPES = {
    "_row": "BIGINT",
    "_raw": "VARCHAR",
    "_error": "VARCHAR",
    "type": "VARCHAR",
    "event": "VARCHAR",
    "distinct_id": "VARCHAR",
    "is_login_id": "BOOLEAN",
    "original_id": "VARCHAR",
    "time": "BIGINT",
    "event_id": "VARCHAR",
    "lib": "VARCHAR",
    "item_type": "VARCHAR",
    "item_id": "VARCHAR",
    "identities": "JSON",
}


@dataclass(frozen=True)
class PropSource:
    """Where a property's values come from in the staged relation.

    ``column`` is the staged column; for ``json`` sources it holds each record's ``properties`` object and the
    value is at key ``name``; for ``typed`` sources it holds the value itself, of DuckDB type ``duck_type``.
    """

    name: str
    kind: Literal["typed", "json"]
    column: str
    duck_type: str = "JSON"
    index: int = 0  # json sources: position in the loader's one-pass extraction of all property values


@dataclass
class Staged:
    """A staged relation (a view or temp table in the store's connection) ready for the loader."""

    relation: str
    source: str
    props: list[PropSource] = field(default_factory=list)
    json_props_column: str | None = None
    raw_available: bool = True
    ignore_keys: tuple[str, ...] = ()
    infer_text: bool = False  # text columns (CSV) of new properties are typed by their first value
    cleanup: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the temporary views and registrations this staging made."""
        for what in self.cleanup:
            kind, name = what.split()
            con.execute(f"DROP {kind} IF EXISTS {name}")
        for name in self.registered:
            con.unregister(name)
