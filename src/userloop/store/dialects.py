"""Per-dialect rendering: one statement tree, the SQL each backend runs.

sqlglot knows most functions in every dialect and transpiles them itself (``date_trunc``, ``count(DISTINCT)``,
casts). Where it does not, a dialect's table says what to do, as data:

* an *anonymous* call (a DuckDB function sqlglot does not know, printed verbatim) is either ``native`` (the
  dialect has it under the same name) or has a ``rewrite`` built from the call's arguments;
* a *typed* node sqlglot knows but prints wrongly for the dialect (a name the dialect lacks, or a function of the
  same name with other semantics: ClickHouse's ``lag`` defaults to 0, not NULL; its ``median`` is approximate) has
  a ``nodes`` rewrite built from the node;
* a typed function sqlglot prints under its generic name (no dialect-specific spelling) must be one the dialect
  has: its name is in ``native``.

:meth:`Dialect.unportable` lists what a tree uses that a dialect cannot run; the dialect test renders every
snapshot statement, segment rule and model read for DuckDB and ClickHouse and fails on any name it returns, so a
new DuckDB-only function in ``query/``, ``profile/`` or ``models/`` is seen the day it is written, not the day
the ClickHouse backend runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect as SqlglotDialect
from sqlglot.errors import ErrorLevel, UnsupportedError

#: An anonymous call's arguments -> the dialect's equivalent.
Rewrite = Callable[[list[exp.Expr]], exp.Expr]
#: A typed node -> the dialect's equivalent (built from the node's arguments).
NodeRewrite = Callable[[Any], exp.Expr]


@dataclass(frozen=True)
class Dialect:
    """How one backend spells what sqlglot does not translate for it."""

    #: sqlglot's name of the dialect
    name: str
    #: functions the dialect has under the name sqlglot prints (lower case): anonymous calls, generic typed nodes
    native: frozenset[str] = frozenset()
    #: anonymous function (lower case) -> its equivalent, built from the call's arguments
    rewrite: Mapping[str, Rewrite] = field(default_factory=dict)
    #: typed node sqlglot prints wrongly for the dialect -> its equivalent
    nodes: Mapping[type[exp.Expr], NodeRewrite] = field(default_factory=dict)
    #: quote every identifier (ClickHouse reads some bare names as keywords: ``top.bd`` is a syntax error)
    quote_identifiers: bool = False

    def translate(self, tree: exp.Expr) -> exp.Expr:
        """A copy of ``tree`` with the table's rewrites applied, innermost first (a rewrite sees rewritten
        arguments)."""
        if not self.rewrite and not self.nodes:
            return tree
        tree = tree.copy()
        for node in reversed(list(tree.walk())):
            swapped = self._swap(node)
            if swapped is not node:
                if node is tree:
                    return swapped
                node.replace(swapped)
        return tree

    def _swap(self, node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous):
            build = self.rewrite.get(str(node.this).lower())
            return node if build is None else build(list(node.expressions))
        node_build = self.nodes.get(type(node))
        return node if node_build is None else node_build(node)

    def render(self, tree: exp.Expr) -> str:
        return self.translate(tree).sql(dialect=self.name, identify=self.quote_identifiers)

    def unportable(self, tree: exp.Expr) -> list[str]:
        """What ``tree`` uses that this dialect cannot run: unknown anonymous functions, typed functions printed
        under a generic name the dialect lacks, and constructs sqlglot reports as unsupported."""
        problems = {
            f"function {name}()"
            for node in tree.find_all(exp.Anonymous)
            if (name := str(node.this).lower()) not in self.native and name not in self.rewrite
        }
        translated = self.translate(tree)
        generator = SqlglotDialect.get_or_raise(self.name).generator_class
        problems |= {
            f"function {node.sql_name()}() (sqlglot's generic spelling)"
            for node in translated.find_all(exp.Func)
            if not isinstance(node, exp.Anonymous)
            and type(node) not in generator.TRANSFORMS
            and not hasattr(generator, f"{node.key}_sql")
            and node.sql_name().lower() not in self.native
        }
        found = sorted(problems)
        try:
            translated.sql(dialect=self.name, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as exc:
            found.append(f"unsupported: {str(exc).splitlines()[0]}")
        return found


#: DuckDB: the templates' own dialect; every function it parses, it runs.
DUCKDB = Dialect(name="duckdb")


# ClickHouse -----------------------------------------------------------------------------------------------------
def _call(name: str, *args: exp.Expr | None) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[a for a in args if a is not None])


def _rename(name: str) -> Rewrite:
    return lambda args: _call(name, *args)


def _micros(value: exp.Expr) -> exp.Expr:
    """Microseconds since the epoch of a timestamp (DuckDB ``epoch_us``)."""
    return _call("toUnixTimestamp64Micro", _call("toDateTime64", value, exp.Literal.number(6)))


#: DuckDB's ``quantile_cont`` over the sorted non-NULL values ``a``: with ``rn = (n - 1) * q``, ``d = rn - floor(rn)``,
#: ``lo`` the value at ``floor(rn)`` and ``hi`` at ``ceil(rn)``, it returns ``lo * (1 - d) + hi * d`` (Hyndman & Fan
#: type 7, computed in this order, so the last bit agrees too: checked against DuckDB on DOUBLE and BIGINT values);
#: NULL when there are no values.
_INTERPOLATE = (
    "if(length(a) = 0, NULL, a[toUInt64(floor((length(a) - 1) * __q)) + 1] * (1 - ((length(a) - 1) * __q "
    "- floor((length(a) - 1) * __q))) + a[toUInt64(ceil((length(a) - 1) * __q)) + 1] "
    "* ((length(a) - 1) * __q - floor((length(a) - 1) * __q)))"
)


def _quantile(args: list[exp.Expr]) -> exp.Expr:
    """DuckDB ``quantile_cont(x, q)`` (linear interpolation, Hyndman & Fan type 7) on ClickHouse.

    Not ``quantileExactInclusive``: it interpolates in another order and differs in the last bit (14.800000000000002
    where DuckDB gives 14.800000000000004). The values are gathered and sorted (``arraySort(groupArray(x))``, as
    exact and as costly as ``quantileExact``) and interpolated as DuckDB does; a list of fractions gives a list."""
    value, fractions = args[0], args[1]
    if isinstance(fractions, exp.Array):
        body = sqlglot.parse_one(_INTERPOLATE, read="clickhouse")
        body = body.transform(lambda n: exp.column("q") if isinstance(n, exp.Column) and n.name == "__q" else n)
        per_q = _call("arrayMap", exp.Lambda(this=body, expressions=[exp.to_identifier("q")]), fractions)
        inner: exp.Expr = per_q
    else:
        inner = sqlglot.parse_one(_INTERPOLATE, read="clickhouse")
        inner = inner.transform(lambda n: fractions.copy() if isinstance(n, exp.Column) and n.name == "__q" else n)
    sorted_values = exp.Array(expressions=[_call("arraySort", _call("groupArray", value))])
    mapped = _call("arrayMap", exp.Lambda(this=inner, expressions=[exp.to_identifier("a")]), sorted_values)
    return _call("arrayElement", mapped, exp.Literal.number(1))


def _series(node: exp.GenerateSeries) -> exp.Expr:
    """DuckDB ``generate_series(a, b)`` includes ``b``, ``range(a, b)`` does not; ClickHouse's ``range`` never
    does. As a table (``FROM range(0, k) AS r(k)``) the table's rewrite takes it."""
    if isinstance(node.parent, exp.Table):
        return node
    end = node.args["end"]
    if not node.args.get("is_end_exclusive"):
        end = exp.Add(this=exp.paren(end), expression=exp.Literal.number(1))
    return _call("range", node.args["start"], end, node.args.get("step"))


def _rows_of(array: exp.Expr, alias: exp.TableAlias | None) -> exp.Expr:
    """A table function over one array (``unnest(list) AS h(n)``, ``range(0, k) AS r(k)``) as ClickHouse's
    ``(SELECT arrayJoin(list) AS n) AS h``."""
    columns = alias.args.get("columns") if alias is not None else None
    name = columns[0] if columns else exp.to_identifier("unnest")
    return exp.select(exp.alias_(_call("arrayJoin", array), name)).subquery(alias.this if alias is not None else None)


def _table_function(node: exp.Table) -> exp.Expr:
    inner = node.this
    if isinstance(inner, exp.GenerateSeries):
        inner.pop()
        return _rows_of(_series(inner), node.args.get("alias"))
    return node


def _unnest(node: exp.Unnest) -> exp.Expr:
    arrays = node.expressions
    if len(arrays) == 1 and isinstance(node.parent, exp.From | exp.Join):
        return _rows_of(arrays[0], node.args.get("alias"))
    return node


def _with_null_default(name: str) -> NodeRewrite:
    """DuckDB's ``lag``/``lead`` give NULL past the partition's edge; ClickHouse's give the type's default (0)
    unless the value is nullable and the default NULL."""

    def build(node: exp.Lag | exp.Lead) -> exp.Expr:
        offset = node.args.get("offset") or exp.Literal.number(1)
        default = node.args.get("default") or exp.null()
        return _call(name, _call("toNullable", node.this), offset, default)

    return build


def _sort(node: exp.ArraySort) -> exp.Expr:
    descending = node.args.get("asc") is not None and not node.args["asc"].this
    return _call("arrayReverseSort" if descending else "arraySort", node.this)


def _epoch_seconds(node: exp.TimeToUnix) -> exp.Expr:
    """DuckDB ``epoch(x)``: seconds (with fraction) of an interval ``a - b`` or since the epoch of a timestamp."""
    value = node.this
    if isinstance(value, exp.Sub):
        micros = _call("dateDiff", exp.Literal.string("microsecond"), value.expression, value.this)
    else:
        micros = _micros(value)
    return exp.Div(this=micros, expression=exp.Literal.number("1000000.0"))


def _named_tuple(node: exp.Struct) -> exp.Expr:
    """DuckDB ``{k: v}`` / ``struct_pack(k := v)`` as a ClickHouse named tuple, read by ``tupleElement(t, 'k')``.

    Not ``tuple(v AS k)`` where it can be helped: an alias inside a ClickHouse expression is visible in the whole
    select (an element named ``t`` hides the column ``t`` of the same scope). The tuple is cast to its named type
    instead, the type spelled from each element's ``toTypeName`` (a constant the engine folds before the cast);
    over aggregates, whose type name is not folded there, the aliased form is kept (the session sets
    ``enable_named_columns_in_function_tuple``)."""
    keys: list[str] = []
    values: list[exp.Expr] = []
    for i, item in enumerate(node.expressions):
        if isinstance(item, exp.PropertyEQ | exp.Slice | exp.EQ):
            key = item.this.name if isinstance(item.this, exp.Expr) else str(item.this)
            keys.append(key)
            values.append(item.expression)
        else:
            keys.append(item.alias_or_name or f"_{i + 1}")
            values.append(item.unalias() if isinstance(item, exp.Alias) else item)
    if any(v.find(exp.AggFunc, exp.Window) for v in values):
        # toTypeName of an aggregate is not a constant where it is computed: the aliased form, whose names must
        # then not be columns of the same select
        return _call("tuple", *(exp.alias_(v, k, quoted=True) for k, v in zip(keys, values, strict=True)))
    if any(not k.replace("_", "").isalnum() for k in keys):
        raise ValueError(f"struct field names must be plain words: {keys}")
    # a bare column names its element after itself (enable_named_columns_in_function_tuple), and a CAST between
    # named tuples matches elements by name: {'e': q.eid} would read e as '' (no element "e" in (t, eid)).
    # identity() leaves the element unnamed, so the cast takes it by position.
    values = [_call("identity", v) if isinstance(v, exp.Column) else v for v in values]
    parts: list[exp.Expr] = [exp.Literal.string("Tuple(")]
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        parts.append(exp.Literal.string(f"{', ' if i else ''}`{key}` "))
        parts.append(_call("toTypeName", value.copy()))
    parts.append(exp.Literal.string(")"))
    return _call("CAST", _call("tuple", *values), _call("concat", *parts))


def _cte(node: exp.CTE) -> exp.Expr:
    """DuckDB's ``AS [NOT] MATERIALIZED`` hint on a CTE. ClickHouse inlines a CTE wherever it is named, so a CTE
    read by several later ones (a funnel's scan and per-step passes) runs again for each reader; ``AS
    MATERIALIZED`` (ClickHouse 25.11+, with ``enable_materialized_cte``, which every session sets) computes it once
    into a temporary table, as DuckDB does. ``NOT MATERIALIZED`` is ClickHouse's default and is dropped."""
    if node.args.get("materialized") is not False:
        return node
    return exp.CTE(this=node.this, alias=node.args.get("alias"))


def _source(column: exp.Column) -> exp.Expr | None:
    """The table or subquery in the nearest enclosing FROM/JOIN that ``column`` reads from (by its qualifier, or
    the FROM's own when it has none)."""
    scope = column.parent
    while scope is not None:
        if isinstance(scope, exp.Select) and scope.args.get("from_") is not None:
            sources = [scope.args["from_"].this, *(j.this for j in scope.args.get("joins") or [])]
            if not column.table:
                return sources[0]
            for source in sources:
                if source.alias_or_name == column.table:
                    return source
        scope = scope.parent
    return None


def _rowid(node: exp.Column) -> exp.Expr:
    """DuckDB's ``rowid`` pseudo-column (a row's number in its table) is, in a ClickHouse MergeTree, the row's part
    offset plus the part's first row number in the query (``_part_starting_offset``): unique per row, as a
    pointer to the row needs. Only of a stored table (named with its database): a CTE or subquery that
    passes ``rowid`` on (``SELECT *, rowid AS rowid FROM events``) has it as a column of its own."""
    if node.name != "rowid" or node.this.args.get("quoted"):
        return node
    source = _source(node)
    while isinstance(source, exp.Table) and isinstance(source.this, exp.Table):  # ``$events AS e`` nests tables
        source = source.this
    if source is not None and not (isinstance(source, exp.Table) and source.args.get("db")):
        return node
    where = node.table or None
    return exp.Add(this=exp.column("_part_starting_offset", where), expression=exp.column("_part_offset", where))


_TIMESTAMPS = (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME)


def _cast(node: exp.Cast) -> exp.Expr:
    """Casts whose meaning differs. ``CAST(x AS TIMESTAMP)`` keeps microseconds (``DateTime64(6, 'UTC')``, as
    stored). ``CAST(x AS VARCHAR)``: DuckDB writes an integral double with ``.0`` (``67.0``), ClickHouse without
    (``67``). Which one ``x`` is is known only to the engine, so the text is chosen by ``x``'s type name there
    (a constant per block); other types cast as they are. A NULL cast to a list is an empty list (ClickHouse
    has no nullable arrays)."""
    kind = node.args.get("to")
    if kind is not None and kind.is_type(*_TIMESTAMPS):
        # DuckDB's TIMESTAMP keeps microseconds; ClickHouse's DateTime (sqlglot's spelling) keeps seconds
        to = exp.DataType.build("Nullable(DateTime64(6, 'UTC'))", dialect="clickhouse")
        return exp.Cast(this=node.this.copy(), to=to)
    if kind is not None and kind.is_type(exp.DataType.Type.ARRAY) and isinstance(node.this, exp.Null):
        # ClickHouse has no NULL array: a typed NULL list is an empty one
        return exp.Cast(this=exp.Array(expressions=[]), to=kind.copy())
    if (
        kind is not None
        and kind.is_type(exp.DataType.Type.DECIMAL)
        and not isinstance(node.this, exp.Literal | exp.Null)
    ):
        return _decimal_cast(node, kind)
    if kind is None or not kind.is_type(*exp.DataType.TEXT_TYPES) or isinstance(node.this, exp.Literal | exp.Null):
        return node
    value = node.this
    text = _call("toString", value.copy())
    number = _call("toFloat64OrNull", text.copy())
    integral = exp.and_(
        exp.EQ(this=number, expression=_call("trunc", number.copy())),
        exp.LT(this=_call("abs", number.copy()), expression=exp.Literal.number("1e15")),
    )
    is_float = _call("match", _call("toTypeName", value.copy()), exp.Literal.string("^(Nullable\\()?Float"))
    with_point = _call("if", integral, _call("concat", text.copy(), exp.Literal.string(".0")), text.copy())
    return _call("if", is_float, with_point, node.copy())


def _decimal_cast(node: exp.Cast, kind: exp.DataType) -> exp.Expr:
    """``CAST(x AS DECIMAL(p, s))`` of a DOUBLE as DuckDB rounds it: the nearest multiple of 10⁻ˢ, halves away
    from zero (``x · 10ˢ`` rounded), where ClickHouse truncates (65.6, stored as 65.5999999999999943…, becomes
    65.599999999 at scale 9, and a tag's average order value moved in its 10th digit). Checked against DuckDB on
    3,000 doubles below 10⁷ in magnitude, ties included; beyond that DuckDB's own product (in long double) has
    digits a double cannot give. Other source types cast as they are (chosen by ``x``'s type name, a constant)."""
    params = [p.this for p in kind.expressions if isinstance(p, exp.DataTypeParam)]
    scale = int(params[1].name) if len(params) > 1 else 0
    value = node.this
    y = exp.Mul(this=_call("toFloat64", value.copy()), expression=exp.Literal.number(f"1e{scale}"))
    whole = _call("floor", _call("abs", y.copy()))
    half_up = exp.GTE(
        this=exp.Sub(this=_call("abs", y.copy()), expression=whole.copy()), expression=exp.Literal.number("0.5")
    )
    rounded = exp.Mul(this=_call("sign", y), expression=exp.paren(exp.Add(this=whole, expression=exp.paren(half_up))))
    units = _call("toDecimal128", _call("toInt128", rounded), exp.Literal.number(scale))
    exact = exp.Div(this=units, expression=exp.Literal.number(10**scale))
    is_float = _call("match", _call("toTypeName", value.copy()), exp.Literal.string("^(Nullable\\()?Float"))
    return exp.Cast(this=_call("if", is_float, exact, node.copy()), to=kind.copy())


def _slice(node: exp.Bracket) -> exp.Expr:
    """DuckDB's list slice ``l[a:b]`` (1-based, both ends included) as ``arraySlice(l, a, b - a + 1)``. A NULL end
    gives NULL in DuckDB but the rest of the list here (ClickHouse has no nullable arrays); the product slices only
    up to a found position."""
    items = node.expressions
    if len(items) != 1 or not isinstance(items[0], exp.Slice):
        return node
    lo, hi = items[0].this, items[0].expression
    if lo is None or hi is None:
        return _call("arraySlice", node.this, lo or exp.Literal.number(1))
    length = exp.Add(this=exp.Sub(this=hi, expression=lo.copy()), expression=exp.Literal.number(1))
    return _call("arraySlice", node.this, lo, _call("greatest", length, exp.Literal.number(0)))


_UNIT_MICROS = {"SECOND": 10**6, "MINUTE": 60 * 10**6, "HOUR": 3600 * 10**6, "DAY": 86400 * 10**6}


def _gap_against_interval(node: exp.Binary) -> exp.Expr:
    """DuckDB compares a difference of timestamps (an interval) with an interval (``a - b > INTERVAL 1800
    SECOND``); in ClickHouse ``a - b`` of two DateTime64 is a number, so both sides become microseconds:
    ``dateDiff('microsecond', b, a) > 1800 * 1000000`` (exact integers)."""
    left, right = node.this, node.expression
    gap_on_left = isinstance(right, exp.Interval)
    gap, interval = (left, right) if gap_on_left else (right, left)
    if not isinstance(interval, exp.Interval):
        return node
    gap = gap.unnest() if isinstance(gap, exp.Paren) else gap
    unit = interval.text("unit").upper()
    if not isinstance(gap, exp.Sub) or unit not in _UNIT_MICROS:
        return node
    micros = _call("dateDiff", exp.Literal.string("microsecond"), gap.expression, gap.this)
    amount = exp.Mul(this=_call("toInt64", interval.this), expression=exp.Literal.number(_UNIT_MICROS[unit]))
    return type(node)(this=micros, expression=amount) if gap_on_left else type(node)(this=amount, expression=micros)


#: strftime specifiers that mean the same in ClickHouse's formatDateTime (zero-padded year, month, day, hour).
_SAME_SPECIFIERS = frozenset("YmdH")


def _strftime(args: list[exp.Expr]) -> exp.Expr:
    """DuckDB ``strftime(x, fmt)`` as ClickHouse ``formatDateTime(x, fmt)``, for a literal ``fmt`` whose
    specifiers mean the same in both (``%Y``, ``%m``, ``%d``, ``%H``); any other is refused here rather than
    printed differently (ClickHouse's ``%M`` is a month name, DuckDB's the minute)."""
    value, fmt = args
    text = fmt.name if isinstance(fmt, exp.Literal) and fmt.is_string else None
    specifiers = [part[:1] for part in (text or "").split("%")[1:]]
    if text is None or any(spec not in _SAME_SPECIFIERS for spec in specifiers):
        raise ValueError(f"strftime format {fmt.sql()} has no checked ClickHouse equivalent")
    return _call("formatDateTime", value, fmt)


def _binary(name: str) -> NodeRewrite:
    return lambda node: _call(name, node.this, node.expression)


def _decimal(value: exp.Expr) -> bool:
    return isinstance(value, exp.Cast) and any(
        t.this == exp.DataType.Type.DECIMAL for t in value.to.find_all(exp.DataType)
    )


def _decimal_mean(node: exp.Avg) -> exp.Expr:
    """``avg`` of a DECIMAL as its exact sum over its count, in DOUBLE, as DuckDB computes it: ClickHouse divides
    in the DECIMAL's scale and truncates (37.96666666633333 for DuckDB's 37.96666666666667). Tags average money
    as DECIMAL(38, 9) so the sum is exact (profile/tagsql)."""
    if not _decimal(node.this) or isinstance(node.parent, exp.Filter | exp.Window):
        return node
    return exp.Div(this=_call("toFloat64", exp.Sum(this=node.this)), expression=exp.Count(this=node.this.copy()))


def _filtered_mean(node: exp.Filter) -> exp.Expr:
    """``avg(x) FILTER (WHERE c)`` of a DECIMAL: the filtered sum over the filtered count (:func:`_decimal_mean`)."""
    mean = node.this
    if not isinstance(mean, exp.Avg) or not _decimal(mean.this):
        return node
    where = node.expression
    total = exp.Filter(this=exp.Sum(this=mean.this), expression=where.copy())
    count = exp.Filter(this=exp.Count(this=mean.this.copy()), expression=where.copy())
    return exp.Div(this=_call("toFloat64", total), expression=count)


def _shift(name: str) -> NodeRewrite:
    """A bit shift whose count is never negative. DuckDB refuses a negative count, but only where it evaluates
    one: ``CASE WHEN t >= lo THEN 1 << period(t) END`` never shifts an earlier row. ClickHouse evaluates both
    branches of a ``CASE`` over the whole block and fails on that row; a count clamped at 0 gives the rows DuckDB
    skips a value the ``CASE`` then drops, and changes nothing DuckDB computes."""
    return lambda node: _call(name, node.this, _call("greatest", node.expression, exp.Literal.number(0)))


#: Functions ClickHouse has under the name sqlglot prints for them (checked on chdb).
_CLICKHOUSE_NATIVE = (
    "abs", "avg", "count", "sum", "coalesce", "greatest", "least", "row_number", "grouping", "power", "hour",
    "position", "lower", "upper", "exp", "ln", "sqrt", "floor", "ceil", "round", "concat", "repeat", "left",
    "right", "replace", "stddev_samp", "var_samp", "rank", "dense_rank", "ntile", "percent_rank",
    # the functions of the native shapes (query/kinds/*/native.py), written for ClickHouse only
    "arraymap", "arrayfilter", "arraypushfront", "arrayjoin", "tupleelement", "sumforeach",
)  # fmt: skip

#: ClickHouse (the distributed backend, and chdb). Each entry is checked against chdb (ClickHouse 26.9) beside
#: DuckDB on the same values.
CLICKHOUSE = Dialect(
    name="clickhouse",
    quote_identifiers=True,
    native=frozenset(_CLICKHOUSE_NATIVE),
    rewrite={
        "epoch_us": lambda args: _micros(args[0]),
        "to_seconds": _rename("toIntervalSecond"),
        "isfinite": _rename("isFinite"),
        "timezone": lambda args: _call("toTimeZone", args[1], args[0]),
        "quantile_cont": _quantile,
        "list_position": lambda args: _call("nullIf", _call("indexOf", *args), exp.Literal.number(0)),
        # arg_min_null keeps a NULL argument; ClickHouse's argMin skips it unless it is wrapped in a tuple
        "arg_min_null": lambda args: _call(
            "tupleElement", _call("argMin", _call("tuple", args[0]), args[1]), exp.Literal.number(1)
        ),
        "bit_count": _rename("bitCount"),
        "strftime": _strftime,
    },
    nodes={
        exp.GenerateSeries: _series,
        exp.CTE: _cte,
        exp.GT: _gap_against_interval,
        exp.GTE: _gap_against_interval,
        exp.LT: _gap_against_interval,
        exp.LTE: _gap_against_interval,
        exp.Bracket: _slice,
        exp.Column: _rowid,
        exp.Cast: _cast,
        exp.Table: _table_function,
        exp.Unnest: _unnest,
        exp.ArraySort: _sort,
        # DuckDB's len/length of a list is ClickHouse's length; of text, characters where ClickHouse counts bytes
        # (the same for the ASCII the product measures: masked phone numbers and e-mail addresses)
        exp.Length: lambda node: _call("length", node.this),
        exp.StructExtract: lambda node: _call("tupleElement", node.this, node.expression),
        exp.Struct: _named_tuple,
        exp.TimeToUnix: _epoch_seconds,
        exp.Median: lambda node: _quantile([node.this, exp.Literal.number("0.5")]),
        exp.Avg: _decimal_mean,
        exp.Filter: _filtered_mean,
        exp.PercentileCont: lambda node: _quantile([node.this, node.expression]),
        exp.Lag: _with_null_default("lag"),
        exp.Lead: _with_null_default("lead"),
        exp.FirstValue: lambda node: _call("first_value_respect_nulls", node.this),
        exp.LastValue: lambda node: _call("last_value_respect_nulls", node.this),
        exp.BitwiseAnd: _binary("bitAnd"),
        exp.BitwiseOr: _binary("bitOr"),
        exp.BitwiseXor: _binary("bitXor"),
        exp.BitwiseLeftShift: _shift("bitShiftLeft"),
        exp.BitwiseRightShift: _shift("bitShiftRight"),
    },
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, CLICKHOUSE)}


def staged(tree: exp.Expr, temp_name: Callable[[str], str]) -> tuple[list[tuple[str, exp.Expr]], exp.Expr]:
    """The CTEs of ``tree``'s top-level ``WITH`` marked ``MATERIALIZED``, as ``(temporary table, query)`` stages to
    create in order on ClickHouse, and ``tree`` reading those tables instead.

    ClickHouse copies a CTE's tree into every place that names it, even one marked ``MATERIALIZED``, when the place
    is inside another CTE: a chain of CTEs each read several times by the next grows as the product of the reads.
    Twelve CTEs each read twice by the next fail with "Query tree is too big"; a 5-step funnel with an event
    breakdown (the core-metrics payment funnel) did too (4 reads per pass: 4⁵ copies of the scan). A temporary table
    per materialized CTE is what ``MATERIALIZED`` means (computed once, read by name), without the copies.
    ``temp_name`` names the table of a CTE (unique in the session); a reference keeps the CTE's name as its alias.
    A statement without materialized CTEs is returned as it is, with no stages."""
    head = tree.args.get("with_")
    if not isinstance(head, exp.With) or not any(c.args.get("materialized") for c in head.expressions):
        return [], tree
    tree = tree.copy()
    ctes: list[exp.CTE] = list(tree.args["with_"].expressions)
    tree.set("with_", None)
    renamed: dict[str, str] = {}
    stages: list[tuple[str, exp.Expr]] = []
    kept: list[exp.CTE] = []
    for cte in ctes:
        _read_tables(cte.this, renamed)
        if not cte.args.get("materialized"):
            kept.append(cte)
            continue
        body = cte.this
        if kept:  # the plain CTEs before it that it may read
            inner = body.args.get("with_")
            own = list(inner.expressions) if isinstance(inner, exp.With) else []
            body.set("with_", exp.With(expressions=[c.copy() for c in kept] + own))
        renamed[cte.alias] = temp_name(cte.alias)
        stages.append((renamed[cte.alias], body))
    _read_tables(tree, renamed)
    if kept:
        tree.set("with_", exp.With(expressions=kept))
    return stages, tree


def _read_tables(tree: exp.Expr, renamed: Mapping[str, str]) -> None:
    """Point every unqualified reference to a CTE in ``renamed`` at its temporary table (aliased as the CTE)."""
    for table in list(tree.find_all(exp.Table)):
        if table.args.get("db") or table.name not in renamed:
            continue
        alias = table.alias or table.name
        table.set("this", exp.to_identifier(renamed[table.name]))
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))


def create_temporary(name: str, query: exp.Expr) -> exp.Expr:
    """``CREATE TEMPORARY TABLE name ENGINE = Memory AS query`` (a session's own table, dropped with it)."""
    return exp.Create(
        this=exp.Table(this=exp.to_identifier(name)),
        kind="TABLE",
        expression=query,
        properties=exp.Properties(expressions=[exp.TemporaryProperty(), exp.EngineProperty(this=exp.var("Memory"))]),
    )


def render(tree: exp.Expr, dialect: str) -> str:
    """``tree`` as the SQL text ``dialect`` runs."""
    if dialect == "duckdb":
        return tree.sql(dialect="duckdb")
    return DIALECTS[dialect].render(tree)
