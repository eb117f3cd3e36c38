"""Stage an Arrow table of canonical columns and typed property columns (simulator, SDK adapters)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlglot import exp

from userloop.ingest.source import CANONICAL, CANONICAL_TYPES, PropSource, Staged
from userloop.store.duck import DuckSession
from userloop.store.sqlbuild import col, name, sql, table, type_

#: The registered table and the view over it (one staging at a time: the writer is held throughout).
REGISTERED = "_ul_arrow"
STAGED = "_ul_arrow_s"


def stage_arrow(session: DuckSession, data: pa.Table, *, source: str, first_row: int = 1) -> Staged:
    """Register ``data`` and a view that gives it every canonical column (``session``: the store's writer).

    Columns not in the canonical set are properties; their Arrow type decides the property type.
    A missing ``event_id`` is derived from a hash of the record, so re-loading the same rows adds nothing.
    """
    if "_row" not in data.column_names:  # numbered here: a numbering window in SQL would serialise the scan
        data = data.append_column("_row", pa.array(np.arange(first_row, first_row + data.num_rows, dtype=np.int64)))
    session.register(REGISTERED, data)
    present = set(data.column_names)
    props = [
        PropSource(c, "typed", c, _duck_type(data.schema.field(c).type))
        for c in data.column_names
        if c not in CANONICAL
    ]
    select: list[exp.Expr] = []
    for c in CANONICAL:
        if c == "event_id":  # records without an id (profiles, items) get a stable hash of themselves
            given = _cast(col(c) if c in present else exp.null(), "VARCHAR")
            expr: exp.Expr = exp.func("coalesce", given, _row_hash(present - {"event_id"}, props))
        else:
            expr = _cast(col(c) if c in present else exp.null(), CANONICAL_TYPES[c])
        select.append(exp.alias_(expr, name(c)))
    select += [col(p.column) for p in props]
    # A view, not a copy: DuckDB scans the Arrow buffers in place (dictionary-encoded strings stay encoded
    # until a step needs them), and each of the loader's passes reads only the columns it uses.
    session.execute(
        sql(
            "CREATE OR REPLACE TEMP VIEW $view AS SELECT $select FROM $data",
            view=table(None, STAGED),
            select=select,
            data=table(None, REGISTERED),
        )
    )
    return Staged(
        relation=STAGED,
        source=source,
        props=props,
        raw_available=False,
        cleanup=[("VIEW", STAGED)],
        registered=[REGISTERED],
    )


def stage_relation(
    session: DuckSession, relation: str, *, source: str, infer_text: bool = False, kind: str = "TABLE"
) -> Staged:
    """A temp table or view (``kind``) that already has the canonical columns (file import): its other columns
    are properties."""
    described = session.fetchall(sql("DESCRIBE $t", t=table(None, relation)))
    props = [PropSource(str(n), "typed", str(n), str(dtype)) for n, dtype, *_ in described if n not in CANONICAL]
    return Staged(
        relation=relation,
        source=source,
        props=props,
        raw_available=False,
        cleanup=[(kind, relation)],
        infer_text=infer_text,
    )


def _cast(value: exp.Expr, sql_type: str) -> exp.Expr:
    return exp.Cast(this=value, to=type_(sql_type))


def _row_hash(present: set[str], props: list[PropSource]) -> exp.Expr:
    """A stable id for a record without one: the MD5 of its fields."""
    fields = ("type", "event", "distinct_id", "is_login_id", "original_id", "time", "item_type", "item_id")
    parts = [_cast(col(c), "VARCHAR") for c in fields if c in present]
    parts += [_cast(col(p.column), "VARCHAR") for p in props]
    return sql("md5(concat_ws(chr(31), $parts))", parts=parts)


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
