"""Stage an Arrow table of canonical columns and typed property columns (simulator, SDK adapters)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa

from userloop.ingest.source import CANONICAL, CANONICAL_TYPES, PropSource, Staged
from userloop.store.duck import ProjectStore
from userloop.store.sqltext import ident

_counter = itertools.count()


def stage_arrow(project: ProjectStore, table: pa.Table, *, source: str, first_row: int = 1) -> Staged:
    """Register ``table`` and a view that gives it every canonical column.

    Columns not in the canonical set are properties; their Arrow type decides the property type.
    A missing ``event_id`` is derived from a hash of the record, so re-loading the same rows adds nothing.
    """
    name = f"_ul_arrow_{next(_counter)}"
    if "_row" not in table.column_names:  # numbered here: a numbering window in SQL would serialise the scan
        table = table.append_column("_row", pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64)))
    project.con.register(name, table)
    present = set(table.column_names)
    props = [
        PropSource(col, "typed", col, _duck_type(table.schema.field(col).type))
        for col in table.column_names
        if col not in CANONICAL
    ]
    select = []
    for col in CANONICAL:
        if col == "event_id":  # records without an id (profiles, items) get a stable hash of themselves
            given = f"CAST({ident(col)} AS VARCHAR)" if col in present else "NULL::VARCHAR"
            expr = f"coalesce({given}, {_row_hash(present - {'event_id'}, props)})"
        elif col in present:
            expr = f"CAST({ident(col)} AS {CANONICAL_TYPES[col]})"
        else:
            expr = f"NULL::{CANONICAL_TYPES[col]}"
        select.append(f"{expr} AS {ident(col)}")
    select += [ident(p.column) for p in props]
    staged = f"{name}_s"
    # A view, not a copy: DuckDB scans the Arrow buffers in place (dictionary-encoded strings stay encoded
    # until a step needs them), and each of the loader's passes reads only the columns it uses.
    project.con.execute(f"CREATE OR REPLACE TEMP VIEW {staged} AS SELECT {', '.join(select)} FROM {name}")
    return Staged(
        relation=staged, source=source, props=props, raw_available=False, cleanup=[f"VIEW {staged}"], registered=[name]
    )


def stage_relation(project: ProjectStore, table: str, *, source: str, infer_text: bool = False) -> Staged:
    """A temp table that already has the canonical columns (file import): its other columns are properties."""
    described = project.con.execute(f"DESCRIBE {table}").fetchall()
    props = [
        PropSource(str(name), "typed", str(name), str(dtype)) for name, dtype, *_ in described if name not in CANONICAL
    ]
    return Staged(
        relation=table,
        source=source,
        props=props,
        raw_available=False,
        cleanup=[f"TABLE {table}"],
        infer_text=infer_text,
    )


def _row_hash(present: set[str], props: list[PropSource]) -> str:
    """A stable id for a record without one: the MD5 of its fields."""
    fields = ("type", "event", "distinct_id", "is_login_id", "original_id", "time", "item_type", "item_id")
    parts = [f"CAST({ident(c)} AS VARCHAR)" for c in fields if c in present]
    parts += [f"CAST({ident(p.column)} AS VARCHAR)" for p in props]
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"


def _duck_type(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_integer(dtype):
        return "BIGINT"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "DOUBLE"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_dictionary(dtype):
        return "VARCHAR"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP"
    if pa.types.is_date(dtype):
        return "DATE"
    if (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) and (
        pa.types.is_string(dtype.value_type) or pa.types.is_large_string(dtype.value_type)
    ):
        return "VARCHAR[]"
    return str(dtype).upper()
