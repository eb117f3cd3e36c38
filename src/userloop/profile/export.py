"""Export a set of people to CSV or Parquet with chosen fields, phone numbers and emails masked.

Fields are named by kind:

- ``user_id``: the person key;
- ``property:<name>``: a profile column (engine times such as ``first_seen`` in the project's local time);
- ``tag:<name>``: the tag's current value (:func:`userloop.profile.history.values_on`);
- ``model:<model>.<field>``: an output of the model's latest run (``model_<model>`` table);
- ``identity:<id_type>``: one id of that type, the earliest the person got (ties: the smallest value).

The whole export is one DuckDB ``COPY (SELECT …) TO '<path>'`` built as a sqlglot tree: the path is a string
literal (sqlglot doubles any quote in it), field names become quoted identifiers, and a sensitive field
(:func:`userloop.query.masking.is_sensitive`) is masked by an SQL expression inside the ``COPY`` unless the
caller may see personal data, so clear values never leave the database.

>>> export_segment(project, members, ["user_id", "property:city", "property:phone"], path=Path("/tmp/x.csv"),
...                format="csv", timezone="Asia/Shanghai", unmask=False, tags=set(), limit=None)  # doctest: +SKIP
{'rows': 1520, 'bytes': 48211, 'fields': [...], 'masked': ['property:phone'], ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlglot import exp

from userloop.core.clock import check_timezone
from userloop.core.errors import ValidationError
from userloop.ingest.identity import ANONYMOUS, LOGIN
from userloop.profile import history
from userloop.profile.user360 import USER_TIMES, model_tables
from userloop.query.compile import USER_COLUMNS, col, sql
from userloop.query.masking import Kind, is_sensitive, mask_sql
from userloop.schema.types import PropertyType
from userloop.store.duck import ProjectStore

Format = Literal["csv", "parquet"]
FORMATS = ("csv", "parquet")
MAX_FIELDS = 200
#: Model table columns that describe the run, not the person.
RUN_COLUMNS = ("user_id", "run_date", "model_version")
#: SQL types of tag and model columns, as property types (for masking numbers without a trailing ``.0``).
_SQL_PTYPES = {"DOUBLE": PropertyType.NUMBER, "BIGINT": PropertyType.NUMBER, "INTEGER": PropertyType.NUMBER}


@dataclass(frozen=True)
class Field:
    """One exportable field: its name, kind, where its value comes from and whether it is personal data."""

    name: str
    kind: str  # user_id | property | tag | model | identity
    type: str
    sensitive: Kind | None
    table: str | None = None  # tag, model: the project table read
    column: str | None = None  # property, model: the column read; identity: the id type

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.name, "kind": self.kind, "type": self.type, "sensitive": self.sensitive}


# what can be exported -----------------------------------------------------------------------------------------
def export_fields(project: ProjectStore, tags: Iterable[str]) -> list[dict[str, Any]]:
    """Every field :func:`export_segment` accepts, with its type and ``sensitive`` (``phone``/``email``/None)."""
    return [f.as_dict() for f in _catalog(project, set(tags)).values()]


def _catalog(project: ProjectStore, tags: set[str]) -> dict[str, Field]:
    fields = [Field("user_id", "user_id", "NUMBER", None)]
    for name, ptype in sorted({**USER_COLUMNS, **project.properties("users")}.items()):
        fields.append(Field(f"property:{name}", "property", ptype.value, is_sensitive(name), "users", name))
    for tag in sorted(tags):
        table = f"tag_{tag}"
        if history.exists(project, table):
            vtype = _column_types(project, table)["value"]
            fields.append(Field(f"tag:{tag}", "tag", vtype, is_sensitive(tag), table, "value"))
    for table in model_tables(project):
        for column, ctype in _column_types(project, table).items():
            if column not in RUN_COLUMNS:
                name = f"model:{table.removeprefix('model_')}.{column}"
                fields.append(Field(name, "model", ctype, is_sensitive(column), table, column))
    for id_type in _id_types(project):
        fields.append(Field(f"identity:{id_type}", "identity", "STRING", is_sensitive(id_type), "identities", id_type))
    return {f.name: f for f in fields}


def _column_types(project: ProjectStore, table: str) -> dict[str, str]:
    rows = project.fetchall(
        sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position"),
        [project.schema, table],
    )  # fmt: skip
    return dict(rows)


def _id_types(project: ProjectStore) -> list[str]:
    rows = project.fetchall(sql("SELECT DISTINCT id_type FROM $i", i=project.ref("identities")))
    return sorted({LOGIN, ANONYMOUS, *(r[0] for r in rows)})


def _choose(catalog: dict[str, Field], names: list[str], tags: set[str]) -> list[Field]:
    if not isinstance(names, list) or not names or len(names) > MAX_FIELDS:
        raise ValidationError(f"fields: a list of 1 to {MAX_FIELDS} field names")
    seen: set[str] = set()
    out = []
    for name in names:
        if not isinstance(name, str):
            raise ValidationError(f"fields: {name!r} is not a field name")
        if name in seen:
            raise ValidationError(f"fields: {name!r} is asked for twice")
        seen.add(name)
        if name not in catalog:
            raise ValidationError(_unknown(name, catalog, tags))
        out.append(catalog[name])
    return out


def _unknown(name: str, catalog: dict[str, Field], tags: set[str]) -> str:
    kind, _, rest = name.partition(":")
    if kind == "tag" and rest in tags:
        return f"fields: tag {rest!r} has never been computed; refresh it before exporting it"
    valid = list(catalog)
    shown = ", ".join(valid[:60]) + (f", … ({len(valid) - 60} more)" if len(valid) > 60 else "")
    return f"fields: unknown field {name[:200]!r}; valid fields: {shown}"


# the export ---------------------------------------------------------------------------------------------------
def export_segment(
    project: ProjectStore,
    members: exp.Select,
    fields: list[str],
    *,
    path: Path,
    format: Format,
    timezone: str,
    unmask: bool,
    tags: set[str],
    limit: int | None = None,
) -> dict[str, Any]:
    """Write the people of ``members`` (a ``SELECT user_id``) with ``fields`` to ``path``, one row per person.

    Parameters
    ----------
    fields : list of str
        Field names (:func:`export_fields`); an unknown one is a ValidationError listing the valid ones.
    format : {"csv", "parquet"}
        CSV with a header row, or Parquet.
    unmask : bool
        Write phone numbers and emails in clear (the caller holds the ``pii`` grant); else masked in SQL.
    tags : set of str
        The project's tag names (tags never computed cannot be exported).
    limit : int, optional
        At most this many people (lowest person keys first).

    Returns
    -------
    dict
        ``rows``, ``bytes``, ``fields``, ``masked`` (the fields written masked), ``path``, ``format``, ``seconds``.
    """
    started = time.perf_counter()
    check_timezone(timezone)
    if format not in FORMATS:
        raise ValidationError(f"format: one of {', '.join(FORMATS)}, not {format!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"limit: a positive number of people, not {limit!r}")
    target = _check_path(path)
    chosen = _choose(_catalog(project, tags), fields, tags)
    masked = [f.name for f in chosen if f.sensitive is not None and not unmask]
    query = _select(project, members, chosen, timezone, unmask, limit)
    rows = _copy(project, copy_statement(query, target, format))
    return {
        "rows": rows,
        "bytes": target.stat().st_size,
        "fields": [f.name for f in chosen],
        "masked": masked,
        "path": str(target),
        "format": format,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _check_path(path: Path) -> Path:
    text = str(path)
    if not text or any(ord(c) < 32 for c in text):
        raise ValidationError("path: a file name without control characters")
    target = Path(text).absolute()
    if target.is_dir():
        raise ValidationError(f"path: {text!r} is a folder; give a file name")
    if not target.parent.is_dir():
        raise ValidationError(f"path: the folder {str(target.parent)!r} does not exist")
    # checked here, in the caller's terms, rather than read from the engine's error after the query ran
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise ValidationError(f"path: cannot write {str(target)!r}: permission denied")
    return target


def copy_statement(query: exp.Select, path: Path, format: Format) -> exp.Copy:
    """``COPY (query) TO 'path' (FORMAT …)`` as a tree; the path is a string literal, never spliced text."""
    params = [exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var(format.upper()))]
    if format == "csv":
        params.append(exp.CopyParameter(this=exp.var("HEADER")))
    return exp.Copy(this=exp.Subquery(this=query), kind=False, files=[exp.Literal.string(str(path))], params=params)


def _copy(project: ProjectStore, statement: exp.Copy) -> int:
    with project.session() as s:  # a long write: a private session, so it does not hold the store's lock
        rows = s.fetchall(statement)
    return int(rows[0][0]) if rows else 0


def _select(
    project: ProjectStore, members: exp.Select, chosen: list[Field], timezone: str, unmask: bool, limit: int | None
) -> exp.Select:
    """``SELECT m.user_id, <field values> FROM members m LEFT JOIN <sources>``, one row per person."""
    people = exp.select(exp.alias_(exp.cast(col("user_id", "s"), exp.DataType.Type.BIGINT), "user_id", quoted=True))
    people = people.from_(exp.Subquery(this=members.copy(), alias=exp.TableAlias(this=exp.to_identifier("s"))))
    query = exp.select().from_(exp.Subquery(this=people.distinct(), alias=exp.TableAlias(this=exp.to_identifier("m"))))
    joins: dict[tuple[str | None, str | None], str] = {}
    for field in chosen:
        alias = _join(project, query, field, joins)
        value = _value(field, alias, timezone)
        if field.sensitive is not None and not unmask:
            value = mask_sql(field.sensitive, value, _ptype(field))
        query = query.select(exp.alias_(value, field.name, quoted=True), copy=False)
    query = query.order_by(col("user_id", "m"), copy=False)
    return query.limit(limit, copy=False) if limit is not None else query


def _join(
    project: ProjectStore, query: exp.Select, field: Field, joins: dict[tuple[str | None, str | None], str]
) -> str:
    """Join the source of ``field`` once (per table; per id type for identities) and return its alias."""
    if field.kind == "user_id":
        return "m"
    key = (field.table, field.column if field.kind == "identity" else None)
    if key not in joins:
        alias = joins[key] = f"j{len(joins)}"
        source = _source(project, field)
        on = sql("$a = $b", a=col("user_id", alias), b=col("user_id", "m"))
        query.join(
            exp.Subquery(this=source, alias=exp.TableAlias(this=exp.to_identifier(alias))),
            on=on,
            join_type="left",
            copy=False,
        )
    return joins[key]


def _source(project: ProjectStore, field: Field) -> exp.Select:
    schema = project.schema
    assert field.table is not None and field.column is not None
    table = exp.table_(field.table, db=schema, quoted=True, alias="t")
    if field.kind == "tag":
        return history.values_on(schema, field.table)
    if field.kind == "model":
        latest = exp.select(exp.func("max", col("run_date", "r"))).from_(
            exp.table_(field.table, db=schema, quoted=True, alias="r")
        )
        return exp.select(exp.Star()).from_(table).where(sql("$d = ($latest)", d=col("run_date", "t"), latest=latest))
    if field.kind == "identity":
        first = sql(
            "row_number() OVER (PARTITION BY $u ORDER BY $c, $v) = 1",
            u=col("user_id", "t"),
            c=col("created_at", "t"),
            v=col("id_value", "t"),
        )
        return (
            exp.select(col("user_id", "t"), exp.alias_(col("id_value", "t"), "value", quoted=True))
            .from_(table)
            .where(sql("$t = $want", t=col("id_type", "t"), want=exp.Literal.string(field.column)))
            .qualify(first)
        )
    return exp.select(exp.Star()).from_(table)  # users


def _value(field: Field, alias: str, timezone: str) -> exp.Expr:
    if field.kind == "user_id":
        return col("user_id", "m")
    if field.kind == "identity":
        return col("value", alias)
    assert field.column is not None
    value = col(field.column, alias)
    if field.kind == "property" and field.column in USER_TIMES:  # engine times are UTC; show them local
        return sql("timezone($tz, CAST($v AS TIMESTAMPTZ))", tz=exp.Literal.string(timezone), v=value)
    return value


def _ptype(field: Field) -> PropertyType | None:
    if field.kind == "property":
        return PropertyType(field.type)
    if field.type.endswith("[]"):
        return PropertyType.LIST
    return _SQL_PTYPES.get(field.type)
