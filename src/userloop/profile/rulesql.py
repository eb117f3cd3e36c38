"""Compile a segment rule (:mod:`userloop.profile.rules`) to one SQL statement.

The statement is ``SELECT u.user_id FROM <schema>.users AS u WHERE …``: one row per person chosen. Groups become
``AND``/``OR``/``NOT`` of their parts. Profile conditions are plain predicates on ``u``. Every other condition
is a semi-join ``u.user_id IN (SELECT user_id FROM …)``: tags and segments read their history
(:func:`userloop.profile.history.values_on`), models their table's latest run, and behaviour one aggregate over
the events with the time window in the scan's ``WHERE`` (so DuckDB reads only the row groups of those days) and
``GROUP BY user_id HAVING …``. A condition that holds for people *without* rows (``neq`` on a tag, ``count ≤ 2``,
``did: false``) is the negation of one that needs rows, ``NOT (u.user_id IN (…))`` — exact, since ``user_id`` is
never NULL and a history or model run holds one row per person. The statement stays a plain SELECT, so
``SELECT count(*) FROM (…)`` sizes a rule (:func:`count_rule`).

Every name and value enters the tree as a quoted identifier or a literal; the tables a rule may read (tags,
models, segments) are checked against a :class:`RuleContext` first, so unknown names are refused, with the
closest known names, before anything runs. Without the ``pii`` right (``RuleContext.ctx.pii`` false), a
condition on a personal-data property, tag or model field (:func:`userloop.query.masking.is_sensitive`) is
refused with ``pii_required``: a segment's size would otherwise confirm a guessed phone number or e-mail address.
"""

from __future__ import annotations

import calendar
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.profile import history
from userloop.profile.features import FeatureType
from userloop.profile.rules import (
    DATE_OPS,
    NEGATIONS,
    AllOf,
    AnyOf,
    Comparison,
    DaysAgo,
    EventCondition,
    FirstTimeCondition,
    ModelCondition,
    NotRule,
    PropertyCondition,
    RegularCondition,
    RestartedCondition,
    SegmentCondition,
    SequenceCondition,
    StoppedCondition,
    SumComparison,
    TagCondition,
    parse_rule,
)
from userloop.query.compile import Context, and_, col, literal, local_midnight_utc, or_, sql
from userloop.query.kinds.funnel import FunnelQuery, funnel_levels
from userloop.query.spec import Filter
from userloop.schema.types import PropertyType
from userloop.store.duck import ProjectStore

#: The property type a tag's or model field's value compares as.
_VALUE_TYPES: dict[str, PropertyType] = {
    "enum": PropertyType.STRING,
    "string": PropertyType.STRING,
    "number": PropertyType.NUMBER,
    "bool": PropertyType.BOOL,
    "date": PropertyType.DATE,
}
_ORDERED_OPS = ("gt", "gte", "lt", "lte", "between")
#: Columns of a model table that are not outputs.
_MODEL_KEYS = frozenset({"user_id", "run_date", "model_version"})
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "FLOAT", "DOUBLE", "REAL", "DECIMAL")  # fmt: skip


@dataclass(frozen=True)
class TagInfo:
    """What the compiler needs to know of a tag: its value type and, for ordered enumerations, the order."""

    type: FeatureType
    order: tuple[str, ...] | None = None


@dataclass
class RuleContext:
    """The project as the compiler sees it: clock, registry, and the tags, models and segments that exist.

    ``tags`` and ``segments`` name only tags and segments that have been computed at least once (their history
    table exists, :func:`userloop.profile.history.exists`); ``models`` maps a model to its output fields and
    their feature types (:func:`model_fields`).
    """

    ctx: Context
    tags: dict[str, TagInfo] = field(default_factory=dict)
    models: dict[str, dict[str, str]] = field(default_factory=dict)
    segments: set[int] = field(default_factory=set)


def compile_rule(rule: Any, rctx: RuleContext) -> exp.Select:
    """``SELECT u.user_id FROM users AS u WHERE …``: the people ``rule`` holds for at the end of ``rctx``'s today.

    ``rule`` is a parsed rule or its JSON (parsed with :func:`userloop.profile.rules.parse_rule`).

    >>> compile_rule({"type": "property", "property": "city", "op": "eq", "value": "上海"}, rctx)  # doctest: +SKIP
    """
    rule = parse_rule(rule)
    where = _Compiler(rctx).rule(rule, "")
    return exp.select(col("user_id", "u")).from_(rctx.ctx.table("users", "u")).where(where)


def count_rule(rule: Any, rctx: RuleContext) -> exp.Select:
    """``SELECT count(*) AS n FROM (compiled rule)``: the size of a rule's segment."""
    people = compile_rule(rule, rctx)
    return exp.select(exp.alias_(exp.Count(this=exp.Star()), "n")).from_(exp.Subquery(this=people, alias="s"))


def model_fields(project: ProjectStore) -> dict[str, dict[str, str]]:
    """The per-person model tables of ``project`` (``model_<name>`` with ``user_id`` and ``run_date``) and their
    output columns as feature types (number, string, bool, date); columns of other types are left out."""
    rows = project.fetchall(
        sql("SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND starts_with(table_name, 'model_') ORDER BY table_name, ordinal_position"),
        [project.schema],
    )  # fmt: skip
    tables: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        tables.setdefault(str(table), {})[str(column)] = str(dtype).upper()
    out: dict[str, dict[str, str]] = {}
    for table, columns in tables.items():
        if not {"user_id", "run_date"} <= set(columns):
            continue
        fields = {c: f for c, t in columns.items() if c not in _MODEL_KEYS and (f := _feature_type(t)) is not None}
        out[table.removeprefix("model_")] = fields
    return out


def _feature_type(dtype: str) -> str | None:
    if dtype == "VARCHAR":
        return "string"
    if dtype == "BOOLEAN":
        return "bool"
    if dtype == "DATE":
        return "date"
    if dtype.split("(", maxsplit=1)[0] in _NUMERIC:
        return "number"
    return None


def similar(name: str, known: list[str]) -> str:
    """``"; similar: a, b"`` for the known names closest to ``name`` (empty when none is close)."""
    close = difflib.get_close_matches(name, known, n=6, cutoff=0.5)
    close += [k for k in sorted(known) if k.lower().startswith(name[:2].lower()) and k not in close]
    return f"; similar: {', '.join(close[:8])}" if close else ""


# the compiler ------------------------------------------------------------------------------------------------------
@dataclass
class _UpToToday(Context):
    """A context whose ``events`` table is a CTE holding only events before ``cap`` (the end of today), for the
    funnel compiler reused by sequences."""

    cap: datetime = datetime.max

    def table(self, name: str, alias: str | None = None) -> exp.Table:
        if name != "events":
            return super().table(name, alias)
        return exp.table_(_CAPPED, quoted=True, alias=alias)


_CAPPED = "_ul_events_upto"


class _Compiler:
    def __init__(self, rctx: RuleContext) -> None:
        self.r = rctx
        self.ctx = rctx.ctx
        self.today = rctx.ctx.today
        self.cap = self._midnight(self.today + timedelta(days=1))
        self.handlers: dict[type, Callable[[Any], exp.Expr]] = {
            PropertyCondition: self._property,
            TagCondition: self._tag,
            ModelCondition: self._model,
            SegmentCondition: self._segment,
            EventCondition: self._event,
            FirstTimeCondition: self._first_time,
            SequenceCondition: self._sequence,
            RegularCondition: self._regular,
            StoppedCondition: self._stopped,
            RestartedCondition: self._restarted,
        }

    def rule(self, node: Any, path: str) -> exp.Expr:
        dot = f"{path}." if path else ""
        if isinstance(node, AllOf):
            return and_([self.rule(r, f"{dot}all[{i}]") for i, r in enumerate(node.all_)])
        if isinstance(node, AnyOf):
            return or_([self.rule(r, f"{dot}any[{i}]") for i, r in enumerate(node.any_)])
        if isinstance(node, NotRule):
            # a comparison with a missing value is NULL, which a NOT keeps NULL: the part must be FALSE for them
            part = exp.func("coalesce", self.rule(node.not_, f"{dot}not"), exp.false())
            return exp.Not(this=part)
        try:
            return self.handlers[type(node)](node)
        except ValidationError as exc:
            raise ValidationError(f"{path or 'rule'}: {exc.message}", code=exc.code) from None

    # values ------------------------------------------------------------------------------------------------------
    def _property(self, c: PropertyCondition) -> exp.Expr:
        self.ctx.require_pii(c.property, "a condition on")
        ptype = self.ctx.prop_type("user", c.property)
        return self._compare(c.property, c.op, c.value, col(c.property, "u"), ptype)

    def _compare(
        self,
        name: str,
        op: str,
        value: Any,
        column: exp.Expr,
        ptype: PropertyType,
        order: tuple[str, ...] | None = None,
    ) -> exp.Expr:
        """``column`` compared as the analysis filters compare (plus relative dates and enumeration order)."""
        if op in DATE_OPS:
            return self._relative(name, op, int(value), column, ptype)
        if order is not None and op in _ORDERED_OPS:
            return _in_order(name, op, value, column, order)
        try:
            f = Filter(property=name[:100], source="user", op=op, value=value)  # type: ignore[arg-type]
        except PydanticValidationError as exc:
            raise ValidationError(f"{name!r}: {exc.errors(include_url=False)[0]['msg']}") from None
        return self.ctx._compare(f, column, ptype)

    def _relative(self, name: str, op: str, n: int, column: exp.Expr, ptype: PropertyType) -> exp.Expr:
        if ptype not in (PropertyType.DATE, PropertyType.DATETIME):
            raise ValidationError(f"'{op}' works on dates; {name!r} is {ptype.value}")
        t = self.today
        if op == "anniversary_in_next_days":
            return self._anniversary(column, ptype, n)
        first, last = {
            "in_last_days": (t - timedelta(days=n - 1), t),
            "in_next_days": (t, t + timedelta(days=n)),
            "before_days_ago": (None, t - timedelta(days=n)),
        }[op]
        parts: list[exp.Expr] = []
        if ptype == PropertyType.DATE:
            if first is not None:
                parts.append(exp.GTE(this=column.copy(), expression=literal(first)))
            parts.append(exp.LTE(this=column.copy(), expression=literal(last)))
        else:  # naive UTC instants: compare with the UTC instants of the local days' bounds
            if first is not None:
                parts.append(exp.GTE(this=column.copy(), expression=literal(self._midnight(first))))
            parts.append(exp.LT(this=column.copy(), expression=literal(self._midnight(last + timedelta(days=1)))))
        return and_(parts)

    def _anniversary(self, column: exp.Expr, ptype: PropertyType, n: int) -> exp.Expr:
        """The month and day of ``column`` fall on one of today … today + n (29 February counts as 28 February in
        years without one)."""
        days = [self.today + timedelta(days=i) for i in range(min(n, 366) + 1)]
        keys = {d.month * 100 + d.day for d in days}
        if any(d.month == 2 and d.day == 28 and not calendar.isleap(d.year) for d in days):
            keys.add(229)
        day = column
        if ptype == PropertyType.DATETIME:
            day = sql("CAST(timezone($zone, timezone('UTC', $c)) AS DATE)", zone=self.ctx.timezone, c=column)
        key = sql("month($d) * 100 + day($d)", d=day)
        return exp.In(this=key, expressions=[exp.Literal.number(k) for k in sorted(keys)])

    def _held(
        self, name: str, c: TagCondition | ModelCondition, rows: exp.Select, ptype: PropertyType,
        order: tuple[str, ...] | None = None,
    ) -> exp.Expr:  # fmt: skip
        """People whose value in ``rows`` (``user_id, value``) passes ``c``; the negations hold for people without
        a row too, so they become NOT of the positive operator."""
        op = NEGATIONS.get(c.op, c.op)
        cond = self._compare(name, op, c.value, col("value", "v"), ptype, order)
        people = exp.select(col("user_id", "v")).from_(exp.Subquery(this=rows, alias="v")).where(cond)
        member = _member(people)
        return exp.Not(this=exp.paren(member)) if c.op in NEGATIONS else member

    def _tag(self, c: TagCondition) -> exp.Expr:
        info = self.r.tags.get(c.tag)
        if info is None:
            raise ValidationError(f"unknown tag {c.tag!r}{similar(c.tag, list(self.r.tags))}", code="not_found")
        self.ctx.require_pii(c.tag, "a condition on the tag")
        order = info.order if info.type == "enum" else None
        if info.type == "enum" and order is None and c.op in _ORDERED_OPS:
            raise ValidationError(f"tag {c.tag!r} has no declared order, so '{c.op}' cannot compare it; use eq or in")
        rows = history.values_on(self.ctx.schema, f"tag_{c.tag}", self._on(c.on))
        return self._held(c.tag, c, rows, _VALUE_TYPES[info.type], order)

    def _model(self, c: ModelCondition) -> exp.Expr:
        fields = self.r.models.get(c.model)
        if fields is None:
            known = list(self.r.models)
            raise ValidationError(f"unknown model {c.model!r}{similar(c.model, known)}", code="not_found")
        ftype = fields.get(c.field)
        if ftype not in _VALUE_TYPES:
            hint = similar(c.field, list(fields))
            raise ValidationError(f"model {c.model!r} has no field {c.field!r}{hint}", code="not_found")
        self.ctx.require_pii(c.field, f"a condition on the model {c.model!r} field")
        table = exp.table_(f"model_{c.model}", db=self.ctx.schema, quoted=True, alias="m")
        latest = sql(
            "SELECT max(r.run_date) FROM $t AS r WHERE r.run_date <= $today",
            t=exp.table_(f"model_{c.model}", db=self.ctx.schema, quoted=True),
            today=literal(self.today),
        )
        rows = (
            exp.select(col("user_id", "m"), exp.alias_(col(c.field, "m"), "value", quoted=True))
            .from_(table)
            .where(exp.EQ(this=col("run_date", "m"), expression=exp.Subquery(this=latest)))
            .where(exp.Not(this=exp.Is(this=col("user_id", "m"), expression=exp.null())))
        )
        return self._held(f"{c.model}.{c.field}", c, rows, _VALUE_TYPES[ftype])

    def _segment(self, c: SegmentCondition) -> exp.Expr:
        if c.segment not in self.r.segments:
            raise ValidationError(f"unknown segment {c.segment}", code="not_found")
        rows = history.values_on(self.ctx.schema, f"segment_{c.segment}", self._on(c.on))
        people = exp.select(col("user_id", "v")).from_(exp.Subquery(this=rows, alias="v")).where(col("value", "v"))
        member = _member(people)
        return member if c.member else exp.Not(this=exp.paren(member))

    def _on(self, on: date | DaysAgo | None) -> date | None:
        if isinstance(on, DaysAgo):
            return self.today - timedelta(days=on.days_ago)
        if on is not None and on > self.today:
            raise ValidationError(f"'on' is {on}, after today ({self.today}); values are known up to today")
        return on

    # behaviour ---------------------------------------------------------------------------------------------------
    def _event(self, c: EventCondition) -> exp.Expr:
        lo, hi = self._window(c.window)
        check = c.check
        if isinstance(check, SumComparison):
            self.ctx.require_pii(check.property, "a sum of")
            ptype = self.ctx.prop_type("event", check.property)
            if ptype != PropertyType.NUMBER:
                raise ValidationError(f"'sum' adds up a number property; {check.property!r} is {ptype.value}")
            agg: exp.Expr = exp.func("coalesce", exp.Sum(this=col(check.property, "e")), exp.Literal.number(0))
        else:
            agg = exp.Count(this=exp.Star())
        scan = [*_between(lo, hi), self.ctx.event_cond(c.ref, "e")]
        member: exp.Expr
        if check.holds(0):  # people without events count: keep everyone but those whose rows fail the check
            member = exp.Not(this=exp.paren(_member(self._people(scan, exp.Not(this=exp.paren(_cmp(agg, check)))))))
        elif not isinstance(check, SumComparison) and check.holds(1) and check.op in ("gte", "gt"):
            member = _member(self._people(scan))  # at least once: no aggregate needed
        else:
            member = _member(self._people(scan, _cmp(agg, check)))
        return member if c.did else exp.Not(this=exp.paren(member))

    def _first_time(self, c: FirstTimeCondition) -> exp.Expr:
        lo, hi = self._window(c.window)
        first = exp.Min(this=col("time", "e"))
        having = exp.and_(
            exp.GTE(this=first, expression=literal(lo)), exp.LT(this=first.copy(), expression=literal(hi))
        )
        return _member(self._people([*self._upto(), self.ctx.event_cond(c.ref, "e")], having))

    def _sequence(self, c: SequenceCondition) -> exp.Expr:
        try:
            funnel = FunnelQuery.model_validate(
                {
                    "kind": "funnel",
                    "order": "sequential",
                    "steps": [{"event": s.event, "filters": s.filters} for s in c.steps],
                    "window": {"value": c.within.value, "unit": c.within.unit},
                    # a rule's today is a whole day (evaluated at its end): its relative window includes it
                    "date_range": c.window.model_copy(
                        update={"include_current": c.window.include_current is not False}
                    ),
                }
            )
        except PydanticValidationError as exc:
            raise ValidationError(f"sequence: {exc.errors(include_url=False)[0]['msg']}") from None
        capped = _UpToToday(
            schema=self.ctx.schema, timezone=self.ctx.timezone, today=self.today, event_props=self.ctx.event_props,
            user_props=self.ctx.user_props, event_names=self.ctx.event_names, warnings=self.ctx.warnings, cap=self.cap,
            pii=self.ctx.pii,
        )  # fmt: skip
        levels = funnel_levels(capped, funnel)
        upto = (
            exp.select(exp.Star(), exp.alias_(exp.column("rowid"), "rowid"))
            .from_(self.ctx.table("events"))
            .where(exp.LT(this=exp.column("time"), expression=literal(self.cap)))
        )
        with_ = levels.args.get("with_")
        ctes = [exp.CTE(this=upto, alias=exp.TableAlias(this=exp.to_identifier(_CAPPED, quoted=True)))]
        levels.set("with_", exp.With(expressions=ctes + (list(with_.expressions) if with_ else [])))
        done = exp.select(col("user_id", "l")).from_(exp.Subquery(this=levels, alias="l"))
        return _member(done.where(exp.EQ(this=col("level", "l"), expression=exp.Literal.number(len(c.steps)))))

    def _regular(self, c: RegularCondition) -> exp.Expr:
        first = self.today - timedelta(days=7 * c.weeks.of - 1)
        lo, hi = self._midnight(first), self.cap
        day = self.ctx.local_day(col("time", "e"), first, self.today)
        block = sql("($today - $day) // 7", today=literal(self.today), day=day)
        having = exp.GTE(this=exp.Count(this=exp.Distinct(expressions=[block])), expression=literal(c.weeks.min))
        return _member(self._people([*_between(lo, hi), self.ctx.event_cond(c.ref, "e")], having))

    def _stopped(self, c: StoppedCondition) -> exp.Expr:
        since = self._midnight(self.today - timedelta(days=c.days - 1))
        having = exp.LT(this=exp.Max(this=col("time", "e")), expression=literal(since))
        return _member(self._people([*self._upto(), self.ctx.event_cond(c.ref, "e")], having))

    def _restarted(self, c: RestartedCondition) -> exp.Expr:
        recent = self._midnight(self.today - timedelta(days=c.days - 1))
        gap = self._midnight(self.today - timedelta(days=c.days + c.gap_days - 1))
        having = sql(
            "max(e.time) >= $recent AND min(e.time) < $gap AND count(*) FILTER (WHERE e.time >= $gap "
            "AND e.time < $recent) = 0",
            recent=literal(recent),
            gap=literal(gap),
        )
        return _member(self._people([*self._upto(), self.ctx.event_cond(c.ref, "e")], having))

    # pieces ------------------------------------------------------------------------------------------------------
    def _people(self, where: list[exp.Expr], having: exp.Expr | None = None) -> exp.Select:
        """``SELECT e.user_id FROM events AS e WHERE … [GROUP BY e.user_id HAVING …]``."""
        q = exp.select(col("user_id", "e")).from_(self.ctx.table("events", "e")).where(and_(where))
        if having is None:
            return q
        return q.group_by(col("user_id", "e")).having(having)

    def _window(self, window: Any) -> tuple[datetime, datetime]:
        """The window's UTC bounds, cut at the end of today (an empty span when it starts after today)."""
        first, last = window.resolve(self.today, current=True)
        last = min(last, self.today)
        if last < first:
            return self.cap, self.cap
        return self._midnight(first), self._midnight(last + timedelta(days=1))

    def _upto(self) -> list[exp.Expr]:
        return [exp.LT(this=col("time", "e"), expression=literal(self.cap))]

    def _midnight(self, day: date) -> datetime:
        return local_midnight_utc(day, self.ctx.timezone)


def _between(lo: datetime, hi: datetime) -> list[exp.Expr]:
    return [
        exp.GTE(this=col("time", "e"), expression=literal(lo)),
        exp.LT(this=col("time", "e"), expression=literal(hi)),
    ]


def _member(people: exp.Select) -> exp.Expr:
    return exp.In(this=col("user_id", "u"), query=exp.Subquery(this=people))


def _cmp(agg: exp.Expr, check: Comparison) -> exp.Expr:
    whole = not isinstance(check, SumComparison)  # counts compare with whole numbers, keeping the aggregate integral
    b = [literal(int(x) if whole else x) for x in check.bounds()]
    if check.op == "between":
        return exp.Between(this=agg, low=b[0], high=b[1])
    ops = {"gte": exp.GTE, "gt": exp.GT, "lte": exp.LTE, "lt": exp.LT, "eq": exp.EQ}
    return ops[check.op](this=agg, expression=b[0])


def _in_order(name: str, op: str, value: Any, column: exp.Expr, order: tuple[str, ...]) -> exp.Expr:
    """An ordered enumeration compared by position: the values that pass, as an ``IN`` list."""
    wanted = value if isinstance(value, list) else [value]
    positions = []
    for v in wanted:
        if str(v) not in order or isinstance(v, bool):
            raise ValidationError(f"{v!r} is not a value of {name!r}; its values are {', '.join(order)}")
        positions.append(order.index(str(v)))
    tests: dict[str, Callable[[int], bool]] = {
        "gt": lambda i: i > positions[0],
        "gte": lambda i: i >= positions[0],
        "lt": lambda i: i < positions[0],
        "lte": lambda i: i <= positions[0],
        "between": lambda i: positions[0] <= i <= positions[-1],
    }
    chosen = [v for i, v in enumerate(order) if tests[op](i)]
    if not chosen:
        return exp.false()
    return exp.In(this=column, expressions=[exp.Literal.string(v) for v in chosen])
