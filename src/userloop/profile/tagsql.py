"""From tag definitions to snapshot SQL: ``SELECT user_id, <one column per tag>`` as of the end of a local day.

Every statement is a sqlglot tree; user-given names (properties, events, model fields) enter as quoted
identifiers and values as literals (:mod:`userloop.query.compile`).

Speed comes from batching. Event tags of the same event share **one scan** of that event's rows: one
``GROUP BY user_id`` whose aggregates each carry their tag's condition as ``FILTER (WHERE …)`` (filters, window),
so many tags cost one pass and the rows of other events never meet their aggregates (one scan of everything for
all tags was 2.5 times slower on 20M events: every aggregate then filters every row). ``most_frequent`` needs
counts per (person, value) first, so each such tag adds a small grouped sub-query over its own event. The
aggregates are then joined to ``users`` (people first seen after the run date have no value; the counting
aggregates give 0 to the others), and each column is *finished*: empty strings become no value, bins cut
numbers into labels, an enumeration keeps only its listed values. Sums and averages add exact decimals, so a
value never moves in its last bit between runs (which the history would record as a change). Profile tags are
one pass over ``users``; a model tag reads one run of ``model_<name>``.

Times: ``events.time`` is naive UTC; a local day comes from :meth:`Context.local_day` (a CASE over the zone's
offset changes, no per-row zone lookup), property date-times (stored as naive UTC too) from DuckDB's zone
functions. "As of ``run_date``" means events before local midnight that ends ``run_date``.
"""

from __future__ import annotations

import difflib
from datetime import date
from typing import Literal

import pyarrow as pa
import sqlglot
from sqlglot import exp

from userloop.core.clock import today_in
from userloop.core.errors import QueryError, ValidationError
from userloop.profile.tagdefs import (
    EventSource,
    ModelSource,
    ProfileSource,
    SqlSource,
    TagDef,
)
from userloop.query.compile import Context, and_, col, literal, sql
from userloop.query.spec import ANY_EVENT, EventRef
from userloop.schema.types import PropertyType
from userloop.store.duck import ProjectStore

ValueKind = Literal["string", "number", "bool", "date"]

_KIND_OF_PROPERTY: dict[PropertyType, ValueKind] = {
    PropertyType.STRING: "string",
    PropertyType.NUMBER: "number",
    PropertyType.BOOL: "bool",
    PropertyType.DATE: "date",
    PropertyType.DATETIME: "date",
}
_NUMBER_AGGS = frozenset({"count", "sum", "avg", "distinct_count", "active_days", "days_since_first",
                          "days_since_last"})  # fmt: skip
_NUMERIC_SQL = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")  # fmt: skip
#: Columns of a model table that are not outputs.
MODEL_KEYS = frozenset({"user_id", "run_date", "model_version"})


def context(project: ProjectStore, timezone: str, today: date) -> Context:
    return Context(
        schema=project.schema,
        timezone=timezone,
        today=today,
        event_props=project.properties("events"),
        user_props=project.properties("users"),
        event_names=project.event_names(),
        passive_events=project.passive_events(),
    )


# validation against the project ---------------------------------------------------------------------------------
def check(tag: TagDef, project: ProjectStore, ctx: Context | None = None) -> ValueKind | None:
    """Raise a ValidationError if ``tag`` names something the project lacks or its type does not fit what its
    source gives; return the kind of values the source gives (None: known only when it runs)."""
    ctx = ctx or context(project, "UTC", today_in("UTC"))
    natural = value_kind(tag, project, ctx)
    _check_type(tag, natural)
    return natural


def value_kind(tag: TagDef, project: ProjectStore, ctx: Context) -> ValueKind | None:
    s = tag.source
    if isinstance(s, ProfileSource):
        return _profile_kind(s, ctx)
    if isinstance(s, EventSource):
        return _event_kind(s, ctx)
    if isinstance(s, ModelSource):
        return _model_kind(s, project)
    if isinstance(s, SqlSource):
        sql_columns(project, s)
    return None


def sql_columns(project: ProjectStore, s: SqlSource) -> list[str]:
    """The column names of a SQL tag's query, which must include ``user_id`` and ``value``; the query is checked
    and bound in the sandbox on empty views (:func:`userloop.query.sql.run_readonly_arrow`), never run."""
    from userloop.query.sql import run_readonly_arrow

    try:
        columns = list(run_readonly_arrow(project, s.query, columns_only=True).column_names)
    except sqlglot.errors.SqlglotError as exc:  # the tokenizer's errors are not parse errors
        raise ValidationError(f"the tag's query cannot be read: {str(exc).splitlines()[0]}") from exc
    except QueryError as exc:  # a refused query (ReadOnlyViolation) passes through as it is
        raise ValidationError(f"the tag's query cannot run: {exc.message}") from exc
    if "user_id" not in columns or "value" not in columns:
        raise ValidationError(
            f"a SQL tag's query must return the columns user_id and value (this one returns {', '.join(columns)})"
        )
    return columns


def _profile_kind(s: ProfileSource, ctx: Context) -> ValueKind:
    ptype = ctx.prop_type("user", s.property)
    if s.derive is not None:
        if ptype not in (PropertyType.DATE, PropertyType.DATETIME):
            raise ValidationError(
                f"derive {s.derive!r} works on a date; profile property {s.property!r} is {ptype.value}"
            )
        return "string" if s.derive == "month_day" else "number"
    if ptype not in _KIND_OF_PROPERTY:
        raise ValidationError(f"profile property {s.property!r} is a {ptype.value}; a tag holds one value per person")
    return _KIND_OF_PROPERTY[ptype]


def _event_kind(s: EventSource, ctx: Context) -> ValueKind:
    if s.event != ANY_EVENT and s.event not in ctx.event_names:
        close = difflib.get_close_matches(s.event, sorted(ctx.event_names), n=5)
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise ValidationError(f"the project has no event {s.event!r}{hint}")
    ctx.filters_cond(list(s.filters))  # unknown properties and ill-typed values fail here
    if s.property is None:
        return "date" if s.agg in ("first_time", "last_time") else "number"
    ptype = ctx.prop_type("event", s.property)
    if ptype not in _KIND_OF_PROPERTY:
        raise ValidationError(f"event property {s.property!r} is a {ptype.value}; aggregate one value per event")
    if s.agg in ("sum", "avg") and ptype != PropertyType.NUMBER:
        raise ValidationError(
            f"aggregate {s.agg!r} works on numbers; event property {s.property!r} is {ptype.value} "
            "(count it, or use distinct_count, first, last or most_frequent)"
        )
    if s.agg in ("min", "max") and ptype == PropertyType.BOOL:
        raise ValidationError(f"aggregate {s.agg!r} does not order yes/no values; count events with a filter instead")
    return "number" if s.agg in _NUMBER_AGGS else _KIND_OF_PROPERTY[ptype]


def model_columns(project: ProjectStore, model: str) -> dict[str, str] | None:
    """The output columns of ``model_<model>`` and their SQL types, or None if the model has never run."""
    rows = project.fetchall(
        sql("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?"),
        [project.schema, f"model_{model}"],
    )
    if not rows:
        return None
    return {str(n): str(t) for n, t in rows if n not in MODEL_KEYS}


def _model_kind(s: ModelSource, project: ProjectStore) -> ValueKind | None:
    columns = model_columns(project, s.model)
    if columns is None:
        from userloop.models.pipeline import MODEL_ORDER

        if s.model not in MODEL_ORDER:
            raise ValidationError(f"unknown model {s.model!r}; the models are {', '.join(MODEL_ORDER)}")
        return None  # not run yet: its fields are checked when the tag is computed
    if s.field not in columns:
        close = difflib.get_close_matches(s.field, sorted(columns), n=5) or sorted(columns)[:8]
        raise ValidationError(f"model {s.model!r} has no output {s.field!r}; its outputs include {', '.join(close)}")
    return _kind_of_sql_type(columns[s.field], f"model output {s.model}.{s.field}")


def _kind_of_sql_type(sql_type: str, what: str) -> ValueKind:
    t = sql_type.upper()
    if t == "VARCHAR":
        return "string"
    if t == "BOOLEAN":
        return "bool"
    if t == "DATE" or t.startswith("TIMESTAMP"):
        return "date"
    if t.startswith(_NUMERIC_SQL):
        return "number"
    raise ValidationError(f"{what} is {sql_type}; a tag holds a text, number, yes/no or date value")


def _check_type(tag: TagDef, natural: ValueKind | None) -> None:
    if natural is None:
        return
    if tag.bins is not None:
        if natural != "number":
            raise ValidationError(f"bins cut numbers; tag {tag.name!r} gets {natural} values from its source")
        return
    if tag.type == "enum":
        if natural != "string":
            advice = " (add bins to cut the numbers into labels)" if natural == "number" else ""
            raise ValidationError(f"an enum tag needs text values; tag {tag.name!r} gets {natural} values{advice}")
        return
    if tag.type != natural:
        raise ValidationError(f"tag {tag.name!r} is declared {tag.type} but its source gives {natural} values")


# finishing a value ------------------------------------------------------------------------------------------------
def finish(tag: TagDef, value: exp.Expr, natural: ValueKind | None) -> exp.Expr:
    """The raw value as the tag's value: '' → no value, bins → labels, an enum keeps only its listed values."""
    if natural is None:  # a SQL tag's column, whatever its type: cast to what the tag holds
        if tag.bins is not None or tag.type == "number":
            value, natural = exp.cast(value, "DOUBLE"), "number"
        else:
            value = exp.cast(value, tag.sql_type)
            natural = "string" if tag.sql_type == "VARCHAR" else None
    if natural == "string":
        value = exp.func("nullif", value, exp.Literal.string(""))
    if tag.bins is not None:
        case = exp.Case().when(exp.Is(this=value.copy(), expression=exp.Null()), exp.Null())
        for edge, label in zip(tag.bins.edges, tag.bins.labels, strict=False):
            case = case.when(exp.LT(this=value.copy(), expression=exp.convert(float(edge))), literal(label))
        return case.else_(literal(tag.bins.labels[-1]))
    if tag.type == "enum" and tag.values:
        listed = exp.In(this=value.copy(), expressions=[literal(v) for v in tag.values])
        return exp.Case().when(listed, value)
    return value


def _local_date(value: exp.Expr, timezone: str) -> exp.Expr:
    """A naive-UTC timestamp's local date (by DuckDB's zone database: for property values of any era)."""
    return sql("CAST(timezone($tz, timezone('UTC', $v)) AS DATE)", tz=timezone, v=value)


# profile tags: one pass over users ------------------------------------------------------------------------------------
def profile_batch(ctx: Context, tags: list[tuple[TagDef, ValueKind | None]], run_date: date) -> exp.Select:
    """``SELECT user_id, <tag>…`` for profile tags, as of ``run_date``."""
    columns: list[exp.Expr] = [col("user_id", "u")]
    for tag, natural in tags:
        assert isinstance(tag.source, ProfileSource)
        columns.append(exp.alias_(finish(tag, _profile_value(ctx, tag.source, run_date), natural), tag.name,
                                  quoted=True))  # fmt: skip
    return exp.select(*columns).from_(ctx.table("users", "u"))


def _profile_value(ctx: Context, s: ProfileSource, run_date: date) -> exp.Expr:
    ptype = ctx.prop_type("user", s.property)
    value: exp.Expr = col(s.property, "u")
    if ptype == PropertyType.DATETIME:
        value = _local_date(value, ctx.timezone)
    if s.derive is None:
        return value
    if s.derive == "month_day":
        return exp.func("strftime", value, exp.Literal.string("%m-%d"))
    r = literal(run_date)
    if s.derive == "days_since":
        return sql("CASE WHEN $d > $r THEN NULL ELSE date_diff('day', $d, $r) END", d=value, r=r)
    # whole years: a birthday on 29 February counts from 1 March in other years
    return sql(
        "CASE WHEN $d > $r THEN NULL ELSE $y - year($d) - CASE WHEN month($d) * 100 + day($d) > $md THEN 1 "
        "ELSE 0 END END",
        d=value,
        r=r,
        y=run_date.year,
        md=run_date.month * 100 + run_date.day,
    )


# model tags -------------------------------------------------------------------------------------------------------
def model_select(ctx: Context, tag: TagDef, natural: ValueKind | None, run_date: date) -> exp.Select:
    """``SELECT user_id, value`` from the latest run of the model on or before ``run_date``."""
    s = tag.source
    assert isinstance(s, ModelSource)
    latest = sql(
        "SELECT max($rd) FROM $t WHERE $rd <= $d",
        rd=col("run_date", "r"),
        t=ctx.table(f"model_{s.model}", "r"),
        d=literal(run_date),
    )
    value = finish(tag, col(s.field, "m"), natural)
    return (
        exp.select(col("user_id", "m"), exp.alias_(value, "value", quoted=True))
        .from_(ctx.table(f"model_{s.model}", "m"))
        .where(exp.EQ(this=col("run_date", "m"), expression=exp.Subquery(this=latest)))
    )


# SQL tags ----------------------------------------------------------------------------------------------------------
def sql_values(project: ProjectStore, tag: TagDef, timeout_s: float) -> pa.Table:
    """``user_id, value`` of a SQL tag: its query run in the analyst-SQL sandbox (personal data masked, no file,
    extension or network reachable, stopped after ``timeout_s``), cast and finished there."""
    from userloop.query.sql import run_readonly_arrow

    s = tag.source
    assert isinstance(s, SqlSource)

    def finish_values(inner: exp.Expr) -> exp.Expr:
        q = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("q")))
        return exp.select(
            exp.alias_(exp.cast(col("user_id", "q"), "BIGINT"), "user_id", quoted=True),
            exp.alias_(finish(tag, col("value", "q"), None), "value", quoted=True),
        ).from_(q)

    return run_readonly_arrow(project, s.query, wrap=finish_values, timeout_s=timeout_s)


# event tags: one scan per event --------------------------------------------------------------------------------
class _EventColumns:
    """What a batch computes: per event name, the aggregates of one grouped scan of its rows (``scans``); the
    sub-queries of most_frequent tags (``joins``); each tag's finished value over them (``outer``)."""

    def __init__(self) -> None:
        self.scans: dict[str, list[exp.Expr]] = {}
        self.joins: list[tuple[str, exp.Select]] = []
        self.outer: list[exp.Expr] = []


def event_batch(
    ctx: Context,
    tags: list[tuple[TagDef, ValueKind | None]],
    run_date: date,
    first_day: date,
    *,
    touched: str | None = None,
) -> exp.Select:
    """``SELECT user_id, <tag>…`` for event tags as of the end of ``run_date``.

    Tags of the same event share one grouped scan of that event's rows (the rows of other events never meet
    their aggregates); ``first_day`` is a local day on or before the earliest event (the span of local-day
    conversions); ``touched`` names a relation of ``user_id`` to restrict the computation to (an incremental run).
    """
    hi = ctx.utc_bounds(run_date, run_date)[1]
    cols = _EventColumns()
    for i, (tag, natural) in enumerate(tags):
        _add_tag(ctx, cols, i, tag, natural, run_date, first_day, hi, touched)
    users = ctx.table("users", "u")
    seen = sql("$f < $hi OR $f IS NULL", f=col("first_seen", "u"), hi=literal(hi))
    where = [seen] if touched is None else [seen, _in_touched(col("user_id", "u"), touched)]
    query = exp.select(col("user_id", "u"), *cols.outer).from_(users)
    subs: list[tuple[str, exp.Select]] = list(cols.joins)
    sources = {t.name: t.source for t, _ in tags}
    for g, (event, aggregates) in enumerate(cols.scans.items()):
        group = [s for s in sources.values() if isinstance(s, EventSource) and s.event == event]
        scan = (
            exp.select(col("user_id", "e"), *aggregates)
            .from_(ctx.table("events", "e"))
            .where(_prefilter(ctx, event, group, run_date, hi, touched))
            .group_by(col("user_id", "e"))
        )
        subs.append((_scan_alias(g), scan))
    for alias, sub in subs:
        on = sql("$a = $b", a=col("user_id", alias), b=col("user_id", "u"))
        query = query.join(_sub(sub, alias), on=on, join_type="left")
    return query.where(and_(where))


def _scan_alias(group: int) -> str:
    return f"g{group}"


def _add_tag(
    ctx: Context,
    cols: _EventColumns,
    i: int,
    tag: TagDef,
    natural: ValueKind | None,
    run_date: date,
    first_day: date,
    hi: object,
    touched: str | None,
) -> None:
    s = tag.source
    assert isinstance(s, EventSource)
    prop = col(s.property, "e") if s.property is not None else None
    ptype = ctx.prop_type("event", s.property) if s.property is not None else None
    if s.agg == "most_frequent":
        assert prop is not None
        cond = and_([_condition(ctx, s, run_date), _prefilter(ctx, s.event, [s], run_date, hi, touched)])
        cols.joins.append((f"m{i}", _most_frequent(ctx, cond, prop)))
        ref = col("value", f"m{i}")
    else:
        # the event name is the scan's own filter; a tag's aggregate filters on the rest of its condition
        group = list(cols.scans).index(s.event) if s.event in cols.scans else len(cols.scans)
        aggregates = cols.scans.setdefault(s.event, [])
        aggregates.append(exp.alias_(_aggregate(ctx, s.agg, _condition(ctx, s, run_date, named=False), prop,
                                                first_day, run_date), f"c{i}"))  # fmt: skip
        ref = col(f"c{i}", _scan_alias(group))
    value: exp.Expr = ref
    if s.agg in ("count", "sum", "distinct_count", "active_days"):
        value = exp.func("coalesce", ref, exp.Literal.number(0))
    elif s.agg in ("first_time", "last_time"):
        value = ctx.local_day(ref, first_day, run_date)
    elif s.agg in ("days_since_first", "days_since_last"):
        value = sql("date_diff('day', $d, $r)", d=ctx.local_day(ref, first_day, run_date), r=literal(run_date))
    elif ptype == PropertyType.DATETIME:
        value = _local_date(ref, ctx.timezone)
    cols.outer.append(exp.alias_(finish(tag, value, natural), tag.name, quoted=True))


def _aggregate(
    ctx: Context, agg: str, cond: exp.Expr, prop: exp.Expr | None, first_day: date, run_date: date
) -> exp.Expr:
    t, eid = col("time", "e"), col("event_id", "e")
    if agg == "count":
        return sql("count(*) FILTER (WHERE $c)", c=cond)
    if agg == "active_days":
        return sql("count(DISTINCT $d) FILTER (WHERE $c)", d=ctx.local_day(t, first_day, run_date), c=cond)
    if agg in ("first_time", "days_since_first"):
        return sql("min($t) FILTER (WHERE $c)", t=t, c=cond)
    if agg in ("last_time", "days_since_last"):
        return sql("max($t) FILTER (WHERE $c)", t=t, c=cond)
    assert prop is not None
    if agg == "distinct_count":
        return sql("count(DISTINCT $p) FILTER (WHERE $c)", p=prop, c=cond)
    if agg in ("first", "last"):
        has = and_([cond, exp.Not(this=exp.Is(this=prop.copy(), expression=exp.Null()))])
        return sql(_ORDERED_AGGS[agg], p=prop, t=t, i=eid, c=has)
    if agg in ("sum", "avg"):
        # exact decimal sums: a parallel float sum depends on the order rows meet, and a value that moved in its
        # last bit would look like a change in the history
        prop = exp.cast(prop, exp.DataType.build("DECIMAL(38, 9)"))
    return sql(_VALUE_AGGS[agg], p=prop, c=cond)


#: The value on a person's first or last matching event, in the order of (time, event id).
_ORDERED_AGGS = {
    "first": "arg_min($p, ($t, $i)) FILTER (WHERE $c)",
    "last": "arg_max($p, ($t, $i)) FILTER (WHERE $c)",
}
#: Aggregates of a property's values over the matching events.
_VALUE_AGGS = {
    "sum": "sum($p) FILTER (WHERE $c)",
    "avg": "avg($p) FILTER (WHERE $c)",
    "min": "min($p) FILTER (WHERE $c)",
    "max": "max($p) FILTER (WHERE $c)",
}


def _most_frequent(ctx: Context, cond: exp.Expr, prop: exp.Expr) -> exp.Select:
    """Per person, the value on most matching events; ties go to the smallest value."""
    has = and_([cond, exp.Not(this=exp.Is(this=prop.copy(), expression=exp.Null()))])
    counts = (
        exp.select(
            col("user_id", "e"), exp.alias_(prop, "v", quoted=True), exp.alias_(sql("count(*)"), "n", quoted=True)
        )
        .from_(ctx.table("events", "e"))
        .where(has)
        .group_by(col("user_id", "e"), prop.copy())
    )
    pick = sql("arg_min($v, (-$n, $v))", v=col("v", "c"), n=col("n", "c"))
    return (
        exp.select(col("user_id", "c"), exp.alias_(pick, "value", quoted=True))
        .from_(_sub(counts, "c"))
        .group_by(col("user_id", "c"))
    )


def _condition(ctx: Context, s: EventSource, run_date: date, *, named: bool = True) -> exp.Expr:
    """The event name (unless ``named`` is false), filters and window of one tag; the end of the run date is
    in the scan's pre-filter."""
    if named or s.event == ANY_EVENT:  # ``$any`` is every active event, whatever the scan's pre-filter
        parts = [ctx.event_cond(EventRef(event=s.event, filters=list(s.filters), name=None), "e")]
    else:  # the scan already keeps only ``s.event``, which may be a passive event named on purpose
        parts = [ctx.filters_cond(list(s.filters), "e")]
    window = _window(s, run_date)
    if window is not None:
        first, last = window
        parts.append(ctx.time_cond(first, last, "e") if first <= last else exp.false())
    return and_(parts)


def _window(s: EventSource, run_date: date) -> tuple[date, date] | None:
    if s.window is None:
        return None
    first, last = s.window.resolve(run_date, current=True)
    return first, min(last, run_date)


def _prefilter(
    ctx: Context, event: str, sources: list[EventSource], run_date: date, hi: object, touched: str | None
) -> exp.Expr:
    """Rows some of ``sources`` can use: of ``event``, before the end of the run date, after the earliest window
    start (when every source has a window), of touched people."""
    parts: list[exp.Expr] = [exp.LT(this=col("time", "e"), expression=literal(hi))]
    if event != ANY_EVENT:
        parts.append(exp.EQ(this=col("event", "e"), expression=literal(event)))
    windows = [_window(s, run_date) for s in sources]
    if windows and all(w is not None for w in windows):
        starts = [ctx.utc_bounds(w[0], w[0])[0] for w in windows if w is not None]
        parts.append(exp.GTE(this=col("time", "e"), expression=literal(min(starts))))
    if touched is not None:
        parts.append(_in_touched(col("user_id", "e"), touched))
    return and_(parts)


def _in_touched(column: exp.Expr, relation: str) -> exp.Expr:
    ids = exp.select(col("user_id", "t")).from_(exp.table_(relation, alias="t", quoted=True))
    return exp.In(this=column, query=exp.Subquery(this=ids))


def _sub(tree: exp.Select, alias: str) -> exp.Subquery:
    return exp.Subquery(this=tree, alias=exp.TableAlias(this=exp.to_identifier(alias)))


__all__ = [
    "MODEL_KEYS",
    "ValueKind",
    "check",
    "context",
    "event_batch",
    "finish",
    "model_columns",
    "model_select",
    "profile_batch",
    "sql_values",
    "value_kind",
]
