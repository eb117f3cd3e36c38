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

from sqlglot import exp

from userloop.store.duck import DuckSession
from userloop.store.sqlbuild import sql, table

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
    """A staged relation (a view or temp table on the store's writer) ready for the loader.

    ``cleanup``: the (kind, name) of the views and temp tables to drop once loaded, ``registered`` the Arrow
    registrations to drop."""

    relation: str
    source: str
    props: list[PropSource] = field(default_factory=list)
    json_props_column: str | None = None
    raw_available: bool = True
    ignore_keys: tuple[str, ...] = ()
    infer_text: bool = False  # text columns (CSV) of new properties are typed by their first value
    #: When set, the JSON properties column is a struct with these fields (JSON values), one per property name
    #: of the batch, rather than a map: its values are read by constant name only.
    json_fields: tuple[str, ...] | None = None
    cleanup: list[tuple[str, str]] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)

    @property
    def ref(self) -> exp.Table:
        """The staged relation as a tree node."""
        return table(None, self.relation)

    def release(self, session: DuckSession) -> None:
        """Drop the temporary views and registrations this staging made."""
        for kind, name in self.cleanup:
            session.execute(drop(kind, name))
        for name in self.registered:
            session.unregister(name)


def drop(kind: str, name: str) -> exp.Expr:
    """``DROP VIEW|TABLE IF EXISTS name`` for a temporary relation."""
    template = {"VIEW": "DROP VIEW IF EXISTS $t", "TABLE": "DROP TABLE IF EXISTS $t"}[kind]
    return sql(template, t=table(None, name))
