"""From definition pieces to sqlglot expressions.

Every statement an analysis runs is a sqlglot AST. Kinds write their fixed shape as a template in DuckDB's SQL
with ``$name`` placeholders (:func:`sql`), and every name or value that came from the user enters the tree as a
node (a quoted identifier, a literal), never as text, so nothing the user sends can change a statement's shape.
Templates are parsed into sqlglot's dialect-neutral tree; a ClickHouse backend renders the same trees.

:class:`Context` carries what compilation needs from the project: its schema, time zone, today's date and the
property registry (so an unknown property is a clear error before anything runs), and whether the caller may see
personal data (``pii``): without it a breakdown or dimension by a phone or e-mail property
(:func:`userloop.query.masking.is_sensitive`) groups by the masked value, and a filter on one, or a measure over
one, is refused (``pii_required``), so a count cannot confirm a guessed value.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlglot import exp

from userloop.core.errors import ValidationError
from userloop.query.masking import Kind, is_sensitive, mask_sql
from userloop.query.spec import ANY_EVENT, DateRange, EventRef, Filter, Interval, Source
from userloop.schema.types import PropertyType
from userloop.store.activity import active_cond
from userloop.store.backend import Capability
from userloop.store.dialects import render as dialect_render
from userloop.store.sqlbuild import col, literal, sql

__all__ = ["Context", "col", "literal", "render", "sql"]

DIALECT = "duckdb"

#: Columns every event row has, usable as properties by these names.
EVENT_COLUMNS: dict[str, PropertyType] = {
    "event": PropertyType.STRING,
    "distinct_id": PropertyType.STRING,
    "lib": PropertyType.STRING,
}
#: Columns every person row has.
USER_COLUMNS: dict[str, PropertyType] = {
    "first_id": PropertyType.STRING,
    "first_seen": PropertyType.DATETIME,
    "last_seen": PropertyType.DATETIME,
    "created_at": PropertyType.DATETIME,
}


def render(tree: exp.Expr) -> str:
    """A tree as DuckDB text (for ``explain`` and snapshots; statements run through the backend's session)."""
    return dialect_render(tree, DIALECT)


@dataclass
class Context:
    """What a kind needs to compile: where the tables are, the project's clock and its registry."""

    schema: str
    timezone: str
    today: date
    event_props: dict[str, PropertyType]
    user_props: dict[str, PropertyType]
    event_names: set[str]
    warnings: list[str] = field(default_factory=list)
    #: The caller may see phone numbers and e-mail addresses in clear.
    pii: bool = True
    #: Events sent to a person rather than done by them (:mod:`userloop.schema.activity`): ``$any`` leaves them
    #: out, so "any event" means any activity; a reference that names one still counts it.
    passive_events: frozenset[str] = frozenset()
    #: What the backend the statements run on can do: a kind may pick a native shape by it (never changing
    #: results), e.g. :mod:`userloop.query.kinds.funnel.native` on ClickHouse.
    capabilities: frozenset[Capability] = frozenset()

    # tables -------------------------------------------------------------------------------------------------
    def table(self, name: str, alias: str | None = None) -> exp.Table:
        return exp.table_(name, db=self.schema, quoted=True, alias=alias)

    # properties ---------------------------------------------------------------------------------------------
    def prop_type(self, source: Source, name: str) -> PropertyType:
        known = {**EVENT_COLUMNS, **self.event_props} if source == "event" else {**USER_COLUMNS, **self.user_props}
        if name not in known:
            where = "event" if source == "event" else "user (profile)"
            close = sorted(n for n in known if n.lower().startswith(name[:2].lower()))[:8]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise ValidationError(f"unknown {where} property {name!r}{hint}")
        return known[name]

    def prop(self, source: Source, name: str, alias: str) -> exp.Expr:
        """The property's column of row ``alias``, masked when it holds personal data the caller may not see."""
        ptype = self.prop_type(source, name)
        kind = self.personal(name)
        if kind is None:
            return col(name, alias)
        return mask_sql(kind, col(name, alias), ptype)

    def personal(self, name: str) -> Kind | None:
        """``"phone"``/``"email"`` when the property ``name`` holds personal data the caller may not see."""
        if self.pii:
            return None
        return is_sensitive(name)

    def require_pii(self, name: str, use: str = "a filter on") -> None:
        """Refuse to compare or measure a personal-data property for a caller without the ``pii`` right: a count
        of people matching a guessed phone number would tell whether the guess is right."""
        kind = self.personal(name)
        if kind is not None:
            raise ValidationError(
                f"{use} {name!r} needs the 'pii' right: the property holds personal data ({kind}); "
                "break down by it (values are masked) or ask for a token with the grant",
                code="pii_required",
            )

    # conditions ---------------------------------------------------------------------------------------------
    def event_cond(self, ref: EventRef, alias: str = "e") -> exp.Expr:
        """The event name, or for ``$any`` every active event, and the reference's own filters."""
        parts: list[exp.Expr] = []
        if ref.event != ANY_EVENT:
            if ref.event not in self.event_names:
                self.warn(f"event {ref.event!r} has never been seen in this project")
            parts.append(exp.EQ(this=col("event", alias), expression=exp.Literal.string(ref.event)))
        else:
            parts.append(self.active_cond(alias))
        parts.extend(self.filter_cond(f, alias) for f in ref.filters)
        return and_(parts)

    def active_cond(self, alias: str = "e") -> exp.Expr:
        """Row ``alias`` is an active event (TRUE when the project has no passive events)."""
        return active_cond(self.passive_events, alias)

    def filters_cond(self, filters: list[Filter], alias: str = "e") -> exp.Expr:
        return and_([self.filter_cond(f, alias) for f in filters])

    def filter_cond(self, f: Filter, alias: str = "e") -> exp.Expr:
        """One filter as a condition on the event row ``alias``; profile filters become a semi-join on users."""
        self.require_pii(f.property)
        if f.source == "event":
            return self._compare(f, col(f.property, alias), self.prop_type("event", f.property))
        inner = self._compare(f, col(f.property, "u"), self.prop_type("user", f.property))
        users = exp.select(col("user_id", "u")).from_(self.table("users", "u")).where(inner)
        return exp.In(this=col("user_id", alias), query=exp.Subquery(this=users))

    def _compare(self, f: Filter, column: exp.Expr, ptype: PropertyType) -> exp.Expr:
        op, value = f.op, f.value
        if op == "is_set":
            return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
        if op == "is_not_set":
            return exp.Is(this=column, expression=exp.Null())
        if ptype == PropertyType.LIST:
            if op not in ("contains", "not_contains", "eq", "neq"):
                raise ValidationError(f"property {f.property!r} is a list; use contains, not_contains, is_set")
            in_list = exp.ArrayContains(this=column, expression=exp.Literal.string(str(value)))
            if op in ("contains", "eq"):
                return in_list
            return exp.or_(exp.Not(this=exp.paren(in_list)), exp.Is(this=column, expression=exp.Null()))
        if op in ("contains", "not_contains"):
            if ptype != PropertyType.STRING:
                raise ValidationError(f"'{op}' works on text properties; {f.property!r} is {ptype.value}")
            pattern = exp.Literal.string(str(value))
            has = exp.func("contains", column, pattern)
            if op == "contains":
                return has
            return exp.or_(exp.Not(this=has), exp.Is(this=column, expression=exp.Null()))
        values = value if isinstance(value, list) else [value]
        lits = [self._typed(f, ptype, v) for v in values]
        if op == "eq":
            return exp.EQ(this=column, expression=lits[0])
        if op == "neq":
            return exp.or_(exp.NEQ(this=column, expression=lits[0]), exp.Is(this=column, expression=exp.Null()))
        if op == "in":
            return exp.In(this=column, expressions=lits)
        if op == "not_in":
            return exp.or_(
                exp.Not(this=exp.In(this=column, expressions=lits)), exp.Is(this=column, expression=exp.Null())
            )
        if ptype == PropertyType.BOOL:
            raise ValidationError(f"{f.property!r} is a yes/no property; compare it with eq or neq")
        if op == "between":
            return exp.Between(this=column, low=lits[0], high=lits[1])
        cmp = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
        return cmp(this=column, expression=lits[0])

    @staticmethod
    def _typed(f: Filter, ptype: PropertyType, value: object) -> exp.Expr:
        """``value`` as a literal of the property's type, or a ValidationError that says what was expected."""
        try:
            if ptype == PropertyType.NUMBER:
                if isinstance(value, bool):
                    raise TypeError
                return exp.convert(float(value))  # type: ignore[arg-type]
            if ptype == PropertyType.BOOL:
                if not isinstance(value, bool):
                    raise TypeError
                return exp.convert(value)
            if ptype == PropertyType.DATETIME:
                return literal(datetime.fromisoformat(str(value)).replace(tzinfo=None))
            if ptype == PropertyType.DATE:
                return literal(date.fromisoformat(str(value)))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"filter on {f.property!r} ({ptype.value}) cannot use the value {value!r}") from exc
        return exp.Literal.string(str(value))

    # time ---------------------------------------------------------------------------------------------------
    def days(self, rng: DateRange) -> tuple[date, date]:
        return rng.resolve(self.today)

    def utc_bounds(self, first: date, last: date) -> tuple[datetime, datetime]:
        """Naive UTC instants of local 00:00 on ``first`` and on the day after ``last``."""
        return local_midnight_utc(first, self.timezone), local_midnight_utc(last + timedelta(days=1), self.timezone)

    def time_cond(self, first: date, last: date, alias: str = "e") -> exp.Expr:
        lo, hi = self.utc_bounds(first, last)
        column = col("time", alias)
        return exp.and_(exp.GTE(this=column, expression=literal(lo)), exp.LT(this=column, expression=literal(hi)))

    def local(self, column: exp.Expr, first: date, last: date) -> exp.Expr:
        """``column`` (naive UTC) as naive local time, for events from the day before ``first`` to the day after
        ``last``. A zone with one UTC offset over those days adds that offset; a zone whose offset changes
        (daylight saving) adds the offset of the piece each row falls in, a CASE over the change instants
        computed here — no per-row zone lookup either way. Rows outside the span get the nearest piece's offset."""
        offset = fixed_offset(self.timezone, first, last)
        if offset is not None:
            return _plus_seconds(column, exp.Literal.number(offset)) if offset else column
        pieces = offset_pieces(self.timezone, first - timedelta(days=2), last + timedelta(days=2))
        case = exp.Case()
        for (_start, off), (nxt, _off) in itertools.pairwise(pieces):
            case = case.when(exp.LT(this=column.copy(), expression=literal(nxt)), exp.Literal.number(off))
        case = case.else_(exp.Literal.number(pieces[-1][1]))
        return _plus_seconds(column, case)

    def local_day(self, column: exp.Expr, first: date, last: date) -> exp.Expr:
        return exp.cast(self.local(column, first, last), exp.DataType.Type.DATE)

    def bucket(self, column: exp.Expr, interval: Interval, first: date, last: date) -> exp.Expr:
        """The start of the local hour/day/week (Monday)/month that ``column`` falls in."""
        local = self.local(column, first, last)
        if interval == "day":
            return exp.cast(local, exp.DataType.Type.DATE)
        trunc = exp.func("date_trunc", exp.Literal.string(interval), local)
        return trunc if interval == "hour" else exp.cast(trunc, exp.DataType.Type.DATE)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def _plus_seconds(column: exp.Expr, seconds: exp.Expr) -> exp.Expr:
    return exp.Add(this=column, expression=exp.func("to_seconds", exp.cast(seconds, exp.DataType.Type.BIGINT)))


@functools.lru_cache(maxsize=256)
def offset_pieces(timezone: str, first: date, last: date) -> tuple[tuple[datetime, int], ...]:
    """The zone's UTC offset (seconds) from local ``first`` to ``last``: ``((utc_from, offset), …)``, each piece
    holding from its naive-UTC instant up to the next piece's (the first piece from ``first``'s midnight)."""
    zone = ZoneInfo(timezone)

    def offset_at(second: int) -> int:
        delta = datetime.fromtimestamp(second, zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    start = int(local_midnight_utc(first, timezone).replace(tzinfo=UTC).timestamp())
    stop = int(local_midnight_utc(last + timedelta(days=1), timezone).replace(tzinfo=UTC).timestamp())
    pieces = [(datetime.fromtimestamp(start, UTC).replace(tzinfo=None), offset_at(start))]
    at = start
    while at < stop:
        step = min(at + 86_400, stop)
        if offset_at(step) != offset_at(at):
            low, high = at, step  # bisect to the second the offset changes
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if offset_at(mid) == offset_at(at) else (low, mid)
            pieces.append((datetime.fromtimestamp(high, UTC).replace(tzinfo=None), offset_at(high)))
        at = step
    return tuple(pieces)


def and_(parts: list[exp.Expr]) -> exp.Expr:
    """All of ``parts`` (TRUE when there are none)."""
    parts = [p for p in parts if not (isinstance(p, exp.Boolean) and p.this is True)]
    if not parts:
        return exp.true()
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def or_(parts: list[exp.Expr]) -> exp.Expr:
    if not parts:
        return exp.false()
    return exp.or_(*parts) if len(parts) > 1 else parts[0]


def local_midnight_utc(day: date, timezone: str) -> datetime:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=1024)
def fixed_offset(timezone: str, first: date, last: date) -> int | None:
    """The zone's UTC offset in seconds if it is the same on every day from ``first`` to ``last`` (and a day on
    either side, for events near the edges); ``None`` when it changes (daylight saving) in between."""
    zone = ZoneInfo(timezone)
    seen: set[float] = set()
    day = first - timedelta(days=1)
    while day <= last + timedelta(days=1):
        for hour in (0, 12):
            offset = datetime(day.year, day.month, day.day, hour, tzinfo=zone).utcoffset()
            seen.add(offset.total_seconds() if offset is not None else 0.0)
        if len(seen) > 1:
            return None
        day += timedelta(days=1)
    return int(seen.pop())


def buckets(interval: Interval, first: date, last: date) -> list[date | datetime]:
    """Every bucket start from ``first`` to ``last`` (local), to fill buckets with no rows."""
    out: list[date | datetime] = []
    if interval == "hour":
        t = datetime(first.year, first.month, first.day)
        end = datetime(last.year, last.month, last.day) + timedelta(days=1)
        while t < end:
            out.append(t)
            t += timedelta(hours=1)
        return out
    d = bucket_of(first, interval)
    while d <= last:
        out.append(d)
        d = next_bucket(d, interval)
    return out


def bucket_of(day: date, interval: Interval) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def next_bucket(day: date, interval: Interval) -> date:
    if interval == "week":
        return day + timedelta(days=7)
    if interval == "month":
        return date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return day + timedelta(days=1)
