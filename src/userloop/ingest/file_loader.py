"""The loader of file imports: the one :class:`~userloop.ingest.loader.Loader`, reading properties staged as fields.

A JSON lines file is staged with its properties as a struct of JSON values, one field per property name of the
file (:func:`userloop.ingest.jsonl.stage_json_file`), because DuckDB builds a map per record slowly. Every step of
the loader reads a property by its constant name, which a struct serves as a map does, except the discovery of a
new property's first value, which reads a map by a name held in a column. Here that step reads the struct's
fields by constant name instead: one aggregate per new name, in one pass, with the same result.
"""

from __future__ import annotations

from sqlglot import exp

from userloop.ingest.checks import KEYS, UNTYPED_PROPERTY_RECORDS
from userloop.ingest.jsonl import TYPED_RELATION, TYPED_TABLE
from userloop.ingest.loader import TABLE_CASE, Loader, _Seen
from userloop.ingest.source import Staged
from userloop.schema.names import name_problem
from userloop.store import sqlbuild as sb
from userloop.store.sqlbuild import sql

#: What discovery reports of a JSON property: table, name, kind and text of its first value, that value's row.
_Found = tuple[str, str, str | None, str | None, int | None]
#: Rows the first look at a batch's new names reads (the head almost always decides, as in the loader).
HEAD_ROWS = 10_000


class FileLoader(Loader):
    """The loader, able to read a batch whose JSON properties are struct fields (``Staged.json_fields``), and a
    JSON lines batch whose properties were read typed (:func:`userloop.ingest.jsonl._stage_typed`)."""

    def _discover(self, staged: Staged, tables: set[str]) -> dict[tuple[str, str], _Seen]:
        """As the loader discovers, and for a typed JSON lines batch as its JSON path would: a new name is placed
        by the row of its first value among the records judged (registration order), and a name whose values are
        all in records refused while read (``_error``) is not new at all (it had no value to type)."""
        seen = super()._discover(staged, tables)
        if staged.relation != TYPED_RELATION or not staged.props:
            return seen
        firsts = [
            sql("min(_row) FILTER (WHERE $c IS NOT NULL AND _error IS NULL)", c=sb.col(p.column)) for p in staged.props
        ]
        rows = self.s.fetchone(sql("SELECT $firsts FROM $rel", firsts=firsts, rel=staged.ref)) or ()
        registry = self.project.registry()
        for prop, row in zip(staged.props, rows, strict=True):
            key = (TYPED_TABLE, prop.name)
            if key not in seen or key in registry:
                continue
            if row is None:
                del seen[key]
            else:
                source, kind, first, _ = seen[key]
                seen[key] = (source, kind, first, int(row))
        return seen

    def _discover_json(self, staged: Staged) -> list[_Found]:
        if staged.json_fields is None:
            return super()._discover_json(staged)
        assert staged.json_props_column
        judged = sql(
            "_error IS NULL AND $keys IS NOT NULL AND NOT list_contains($untyped, type)",
            keys=KEYS,
            untyped=list(UNTYPED_PROPERTY_RECORDS),
        )
        ignore = list(staged.ignore_keys) or [""]
        keys = self.s.fetchall(
            sql(
                """SELECT DISTINCT tbl, k FROM (
                    SELECT tbl, unnest(_k) AS k FROM (
                        SELECT DISTINCT $tbl AS tbl, $keys AS _k FROM $rel WHERE $judged))
                WHERE tbl IS NOT NULL AND NOT list_contains($ignore, k)""",
                tbl=TABLE_CASE,
                keys=KEYS,
                rel=staged.ref,
                judged=judged,
                ignore=ignore,
            )
        )
        registry = self.project.registry()
        known: list[_Found] = [(t, k, None, None, None) for t, k in keys if (t, k) in registry or name_problem(k)]
        new = [(str(t), str(k)) for t, k in keys if (t, k) not in registry and not name_problem(k)]
        if not new:
            return known
        props = sb.col(staged.json_props_column)
        head = sql("(SELECT * FROM $rel ORDER BY _row LIMIT $n)", rel=staged.ref, n=HEAD_ROWS)
        firsts: dict[tuple[str, str], tuple[str | None, str | None, int | None]] = {}
        for relation in (head, staged.ref):
            missing = [pair for pair in new if pair not in firsts]
            if not missing:
                break
            firsts.update(self._first_values(relation, props, judged, missing))
        return known + [(t, k, *firsts.get((t, k), (None, None, None))) for t, k in new]

    def _first_values(
        self, relation: exp.Expr, props: exp.Expr, judged: exp.Expr, missing: list[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str | None, str | None, int | None]]:
        """For each (table, name), the JSON kind and text of its first non-null value and that value's row."""
        names = sorted({k for _, k in missing})
        aggregates: list[exp.Expr] = []
        for name in names:
            value = exp.Bracket(this=props.copy(), expressions=[exp.Literal.string(name)])
            present = sql("json_type($v) <> 'NULL'", v=value)
            aggregates += [
                sql("arg_min(json_type($v), _row) FILTER (WHERE $p)", v=value, p=present),
                sql("arg_min($v ->> '$', _row) FILTER (WHERE $p)", v=value, p=present),
                sql("min(_row) FILTER (WHERE $p)", p=present),
            ]
        stmt = sql(
            """SELECT tbl, $aggregates FROM (
                SELECT _row, $props, $tbl AS tbl FROM $relation WHERE $judged)
            WHERE tbl IS NOT NULL GROUP BY tbl""",
            aggregates=aggregates,
            props=props,
            tbl=TABLE_CASE,
            relation=relation,
            judged=judged,
        )
        wanted = set(missing)
        out: dict[tuple[str, str], tuple[str | None, str | None, int | None]] = {}
        for tbl, *values in self.s.fetchall(stmt):
            for i, name in enumerate(names):
                kind, first, row = values[3 * i : 3 * i + 3]
                if (tbl, name) in wanted and row is not None:
                    out[(tbl, name)] = (kind, first, row)
        return out
