"""The segment rule language: which people a segment holds, as typed JSON.

A rule is a group or a condition. Groups: ``{"all": [rule, …]}`` (every part holds; an empty ``all`` is
everyone), ``{"any": [rule, …]}`` (some part holds; an empty ``any`` is no one) and ``{"not": rule}``. Groups nest
at most :data:`MAX_DEPTH` deep and a rule holds at most :data:`MAX_CONDITIONS` conditions. Conditions are told
apart by ``"type"``::

    {"type": "property", "property": "city", "op": "eq", "value": "上海"}
    {"type": "tag", "tag": "rfm_class", "op": "gte", "value": "important", "on": {"days_ago": 7}}
    {"type": "model", "model": "churn", "field": "risk_tier", "op": "in", "value": ["high", "medium"]}
    {"type": "segment", "segment": 12, "member": true}
    {"type": "event", "event": "order_paid", "count": {"op": "gte", "value": 3}, "window": {"last": 30}}
    {"type": "first_time", "event": "order_paid", "window": {"last": 7}}
    {"type": "sequence", "steps": [{"event": "add_to_cart"}, {"event": "order_paid"}],
     "within": {"value": 1, "unit": "hour"}, "window": {"last": 30}}
    {"type": "regular", "event": "app_start", "weeks": {"min": 3, "of": 4}}
    {"type": "stopped", "event": "order_paid", "days": 30}
    {"type": "restarted", "event": "order_paid", "days": 7, "gap_days": 30}

**The clock.** A rule is evaluated as of the end of a local day ``today`` in the project's time zone: no event
after the local midnight that ends ``today`` counts, not even for "all time" conditions, so a rule can be
evaluated for past dates. Windows (:class:`~userloop.query.spec.DateRange`) are local calendar days; a window
reaching past ``today`` stops at ``today``. The people a rule chooses from are every person of the project.

**Values** (``property``, ``tag``, ``model``). A profile property is the profile as it is now (profiles keep
no history; ``first_seen``/``last_seen`` are naive UTC instants compared by local day), a tag or segment is
read from its history, a model from its runs. The operators of analysis filters, with their meaning: a
comparison with a missing value is false, except the negations ``neq``, ``not_in``, ``not_contains`` and
``is_not_set``, which hold for people without a value. Dates and date-times also take relative operators, in
local days (``N`` is ``value``): ``in_last_days`` — from ``today − N + 1`` to ``today`` (N ≥ 1 days, today
included); ``in_next_days`` — from ``today`` to ``today + N``; ``before_days_ago`` — on or before
``today − N`` (the past dates ``in_last_days`` leaves out); ``anniversary_in_next_days`` — the month and day fall
on one of ``today … today + N`` ("birthday within 7 days"), across the new year, with 29 February taken as
28 February in years without one. An ordered enumeration tag also takes ``gt``/``gte``/``lt``/``lte``/``between``
by its declared order. A tag's or segment's ``on`` reads its value on a past date (``"2026-11-01"`` or
``{"days_ago": 7}``) from its history; without it, the current value. A model field is the output of the model's
latest run on or before ``today``.

**Behaviour** (``event`` … ``restarted``; ``event`` may be ``$any``, and every event condition may carry filters).

- ``event``: the number of matching events in the window (``count``, default ``{"op": "gte", "value": 1}``) or
  the sum of a numeric property over them (``sum``; missing values add nothing, no events sum to 0) compares as
  asked. A person without matching events has count and sum 0, so ``{"op": "lte", "value": 2}`` includes people
  who never did it. ``"did": false`` negates the condition.
- ``first_time``: the person's first matching event ever (up to the end of ``today``) falls in the window.
- ``sequence``: the steps were done in order, step 1 in the window and the last step at most ``within`` after
  step 1. Order is the analysis funnel's (:mod:`userloop.query.kinds.funnel`, ``sequential``): a person's events
  are ordered by time and then event id, each step is a later event in that order than the one before (so two
  events at the same instant may follow each other, and one event never fills two steps).
- ``regular``: matching events in at least ``min`` of the last ``of`` 7-day blocks ending today (block ``k``
  covers the local days ``today − 7k − 6 … today − 7k``).
- ``stopped``: matching events before the last ``days`` local days and none in them.
- ``restarted``: matching events in the last ``days`` local days, none in the ``gap_days`` days before those, and
  some before the gap.

``not`` is the complement among all people: a part that compares a missing value counts as not holding, so
``{"not": {"type": "property", "property": "city", "value": "上海"}}`` includes people without a city.

Limits: windows of at most 3,660 days, lists of at most 1,000 values, text of at most 1,000 characters, names of
at most 100, finite numbers, dates from 1900 to 2199. Every bad rule is a
:class:`~userloop.core.errors.ValidationError` that names where (``all[2].any[0]``) and why.
:mod:`userloop.profile.rulesql` compiles a rule to one SQL statement.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PlainValidator, StrictBool, Tag, TypeAdapter, model_validator
from pydantic import ValidationError as PydanticValidationError

from userloop.core.errors import ValidationError
from userloop.query.spec import MAX_LIST_VALUES, DateRange, EventRef, Filter, Name, Spec

MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_TEXT = 1000
MAX_DAYS = 3660
MAX_STEPS = 5
#: The largest whole number a value may be (larger ones lose precision as doubles anyway).
MAX_INT = 10**18
#: Dates a rule may name: wide enough for any real data, narrow enough that local midnights stay computable.
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2199, 12, 31)
#: How deep raw JSON may nest before it is read at all (a rule at full depth needs about 25 levels).
MAX_RAW_DEPTH = 64
MAX_RAW_NODES = 200_000

FILTER_OPS = frozenset(
    {"eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "not_contains", "is_set",
     "is_not_set"}
)  # fmt: skip
DATE_OPS = frozenset({"in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days"})
#: Operators that hold for people without a value, and the positive operator each one negates.
NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains", "is_not_set": "is_set"}
ValueOp = Literal[
    "eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "not_contains", "is_set",
    "is_not_set", "in_last_days", "in_next_days", "before_days_ago", "anniversary_in_next_days",
]  # fmt: skip
CompareOp = Literal["gte", "lte", "eq", "gt", "lt", "between"]

Scalar = bool | int | float | str


# values ------------------------------------------------------------------------------------------------------------
def _scalar(v: object) -> Scalar:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        if abs(v) > MAX_INT:
            raise ValueError(f"numbers may be at most {MAX_INT:.0e} in size")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("numbers must be finite (not NaN or infinity)")
        return v
    if isinstance(v, str):
        if len(v) > MAX_TEXT:
            raise ValueError(f"text values may be at most {MAX_TEXT} characters")
        return v
    raise ValueError(f"expected a number, text or true/false, not {type(v).__name__}")


def _value(v: object) -> Scalar | list[Scalar] | None:
    if v is None:
        return None
    if isinstance(v, list | tuple):
        if len(v) > MAX_LIST_VALUES:
            raise ValueError(f"a list may hold at most {MAX_LIST_VALUES} values")
        return [_scalar(x) for x in v]
    return _scalar(v)


Value = Annotated[
    Scalar | list[Scalar] | None, PlainValidator(_value, json_schema_input_type=Scalar | list[Scalar] | None)
]


def check_value(op: str, value: object) -> None:
    """``value`` fits ``op`` (a ValueError saying why not)."""
    if op in DATE_OPS:
        least = 1 if op == "in_last_days" else 0
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_DAYS:
            raise ValueError(f"operator {op!r} needs a whole number of days from {least} to {MAX_DAYS}")
    elif op in ("is_set", "is_not_set"):
        if value is not None:
            raise ValueError(f"operator {op!r} takes no value")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"operator {op!r} needs a non-empty list of values")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("operator 'between' needs a list of two values [low, high]")
    elif value is None or isinstance(value, list):
        raise ValueError(f"operator {op!r} needs one value")


def _check_filters(filters: list[Filter]) -> None:
    for i, f in enumerate(filters):
        values = f.value if isinstance(f.value, list) else [f.value]
        for v in values:
            try:
                _scalar(v) if v is not None else None
            except ValueError as exc:
                raise ValueError(f"filters[{i}]: {exc}") from None


def _check_day(day: date, what: str) -> None:
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{what} {day} is outside {FIRST_DATE}…{LAST_DATE}")


def _check_window(window: DateRange) -> None:
    for day in (window.start, window.end):
        if day is not None:
            _check_day(day, "the window's date")


class DaysAgo(Spec):
    """A date relative to ``today``: ``{"days_ago": 7}``."""

    days_ago: int = Field(ge=0, le=MAX_DAYS)


OnDate = date | DaysAgo | None


class _Compared(Spec):
    """A value compared with ``op`` and ``value`` (see the module docstring)."""

    op: ValueOp = "eq"
    value: Value = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> _Compared:
        check_value(self.op, self.value)
        on = getattr(self, "on", None)
        if isinstance(on, date):
            _check_day(on, "'on'")
        return self


# conditions on values ---------------------------------------------------------------------------------------------
class PropertyCondition(_Compared):
    """A profile property (or the built-in ``first_seen``/``last_seen``)."""

    type: Literal["property"] = "property"
    property: Name


class TagCondition(_Compared):
    """A tag's value, current or on a date."""

    type: Literal["tag"] = "tag"
    tag: Name
    on: OnDate = None


class ModelCondition(_Compared):
    """A field of a model's latest run on or before today."""

    type: Literal["model"] = "model"
    model: Name
    field: Name


class SegmentCondition(Spec):
    """Membership of another segment, current or on a date (``member: false`` — not a member)."""

    type: Literal["segment"] = "segment"
    segment: int = Field(ge=1, le=2**53)
    member: StrictBool = True
    on: OnDate = None

    @model_validator(mode="after")
    def _sane_date(self) -> SegmentCondition:
        if isinstance(self.on, date):
            _check_day(self.on, "'on'")
        return self


# conditions on behaviour -----------------------------------------------------------------------------------------
class Comparison(Spec):
    """``{"op": "gte", "value": 3}`` or ``{"op": "between", "value": [1, 5]}`` (both ends included)."""

    op: CompareOp = "gte"
    value: Value = 1

    @model_validator(mode="after")
    def _value_fits_op(self) -> Comparison:
        v = self.value
        values = v if isinstance(v, list) else [v]
        if self.op == "between":
            if not isinstance(v, list) or len(v) != 2:
                raise ValueError("operator 'between' needs a list of two numbers [low, high]")
            if not isinstance(v[0], bool | str) and not isinstance(v[1], bool | str) and v[0] > v[1]:
                raise ValueError(f"'between' needs low ≤ high, got [{v[0]}, {v[1]}]")
        elif isinstance(v, list):
            raise ValueError(f"operator {self.op!r} needs one number")
        if any(isinstance(x, bool | str) or x is None for x in values):
            raise ValueError("comparisons take numbers")
        return self

    def bounds(self) -> list[float]:
        return [float(x) for x in (self.value if isinstance(self.value, list) else [self.value])]  # type: ignore[arg-type]

    def holds(self, x: float) -> bool:
        """The comparison in Python (for the value a person without events has)."""
        b = self.bounds()
        return {
            "gte": lambda: x >= b[0],
            "gt": lambda: x > b[0],
            "lte": lambda: x <= b[0],
            "lt": lambda: x < b[0],
            "eq": lambda: x == b[0],
            "between": lambda: b[0] <= x <= b[1],
        }[self.op]()


class CountComparison(Comparison):
    @model_validator(mode="after")
    def _whole(self) -> CountComparison:
        if any(not x.is_integer() or x < 0 for x in self.bounds()):
            raise ValueError("counts are whole numbers ≥ 0")
        return self


class SumComparison(Comparison):
    """The sum of a numeric event property compared with a number."""

    property: Name


class _EventBased(Spec):
    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _sane_filters(self) -> _EventBased:
        _check_filters(self.filters)
        window = getattr(self, "window", None)
        if isinstance(window, DateRange):
            _check_window(window)
        return self

    @property
    def ref(self) -> EventRef:
        return EventRef(event=self.event, filters=self.filters, name=None)


class EventCondition(_EventBased):
    """Did the event (count or property sum compared as asked) in the window."""

    type: Literal["event"] = "event"
    did: StrictBool = True
    count: CountComparison | None = None
    sum: SumComparison | None = None
    window: DateRange

    @model_validator(mode="after")
    def _count_or_sum(self) -> EventCondition:
        if self.count is not None and self.sum is not None:
            raise ValueError("give 'count' or 'sum', not both")
        return self

    @property
    def check(self) -> Comparison:
        return self.sum or self.count or CountComparison(op="gte", value=1)


class FirstTimeCondition(_EventBased):
    """The person's first matching event ever falls in the window."""

    type: Literal["first_time"] = "first_time"
    window: DateRange


class Within(Spec):
    """How long a sequence may take from its first step to its last: ``{"value": 1, "unit": "hour"}``."""

    value: int = Field(ge=1, le=366 * 24 * 60)
    unit: Literal["minute", "hour", "day"] = "day"

    @model_validator(mode="after")
    def _not_too_long(self) -> Within:
        if self.value * {"minute": 60, "hour": 3600, "day": 86_400}[self.unit] > 366 * 86_400:
            raise ValueError("a sequence may take at most 366 days")
        return self


class SequenceCondition(Spec):
    """Did the steps in order, step 1 in the window, the last step within ``within`` of step 1."""

    type: Literal["sequence"] = "sequence"
    steps: list[EventRef] = Field(min_length=2, max_length=MAX_STEPS)
    within: Within
    window: DateRange

    @model_validator(mode="after")
    def _sane(self) -> SequenceCondition:
        for i, step in enumerate(self.steps):
            try:
                _check_filters(step.filters)
            except ValueError as exc:
                raise ValueError(f"steps[{i}].{exc}") from None
        _check_window(self.window)
        return self


class Weeks(Spec):
    """At least ``min`` of the last ``of`` 7-day blocks."""

    min: int = Field(ge=1, le=520)
    of: int = Field(ge=1, le=520)

    @model_validator(mode="after")
    def _min_of(self) -> Weeks:
        if self.min > self.of:
            raise ValueError(f"'min' ({self.min}) cannot be more than 'of' ({self.of})")
        return self


class RegularCondition(_EventBased):
    """Did it in at least ``weeks.min`` of the last ``weeks.of`` 7-day blocks ending today."""

    type: Literal["regular"] = "regular"
    weeks: Weeks


class StoppedCondition(_EventBased):
    """Did it before the last ``days`` local days, and not in them."""

    type: Literal["stopped"] = "stopped"
    days: int = Field(ge=1, le=MAX_DAYS)


class RestartedCondition(_EventBased):
    """Did it in the last ``days`` days, not in the ``gap_days`` before those, and some time before the gap."""

    type: Literal["restarted"] = "restarted"
    days: int = Field(ge=1, le=MAX_DAYS)
    gap_days: int = Field(ge=1, le=MAX_DAYS)


Condition = Annotated[
    PropertyCondition
    | TagCondition
    | ModelCondition
    | SegmentCondition
    | EventCondition
    | FirstTimeCondition
    | SequenceCondition
    | RegularCondition
    | StoppedCondition
    | RestartedCondition,
    Field(discriminator="type"),
]
CONDITION_TYPES = (
    PropertyCondition, TagCondition, ModelCondition, SegmentCondition, EventCondition, FirstTimeCondition,
    SequenceCondition, RegularCondition, StoppedCondition, RestartedCondition,
)  # fmt: skip


# groups ------------------------------------------------------------------------------------------------------------
class AllOf(Spec):
    """Every part holds (an empty list: everyone)."""

    all_: list[Rule] = Field(alias="all", max_length=MAX_CONDITIONS)


class AnyOf(Spec):
    """At least one part holds (an empty list: no one)."""

    any_: list[Rule] = Field(alias="any", max_length=MAX_CONDITIONS)


class NotRule(Spec):
    """The part does not hold."""

    not_: Rule = Field(alias="not")


def _rule_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        for key in ("all", "any", "not"):
            if key in v:
                return key
        return "condition" if "type" in v else None
    if isinstance(v, AllOf | AnyOf | NotRule):
        return {AllOf: "all", AnyOf: "any", NotRule: "not"}[type(v)]
    return "condition" if isinstance(v, CONDITION_TYPES) else None


Rule = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotRule, Tag("not")]
    | Annotated[Condition, Tag("condition")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule_kind",
        custom_error_message="a rule is an object with 'all', 'any' or 'not' (a group) or 'type' (a condition)",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotRule.model_rebuild()
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Rule)


# reading -----------------------------------------------------------------------------------------------------------
def parse_rule(data: Any) -> Any:
    """A rule from its JSON (text or already parsed), checked; every problem is a ValidationError.

    >>> parse_rule({"all": [{"type": "property", "property": "city", "op": "eq", "value": "上海"}]})
    AllOf(all_=[PropertyCondition(op='eq', value='上海', type='property', property='city')])
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"the rule is not valid JSON: {exc}") from None
    if isinstance(data, (AllOf, AnyOf, NotRule, *CONDITION_TYPES)):
        check_limits(data)
        return data
    _check_raw(data)
    try:
        rule = _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None
    check_limits(rule)
    return rule


def _check_raw(data: Any) -> None:
    """Refuse input too deep or too big to be worth validating (before pydantic recurses into it)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_RAW_DEPTH:
            raise ValidationError(f"the rule nests more than {MAX_RAW_DEPTH} levels deep")
        if nodes > MAX_RAW_NODES:
            raise ValidationError(f"the rule has more than {MAX_RAW_NODES} values")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)


def check_limits(rule: Any) -> None:
    """At most :data:`MAX_DEPTH` nested groups and :data:`MAX_CONDITIONS` conditions."""
    conditions = 0
    stack: list[tuple[Any, str, int]] = [(rule, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        parts = children(node, path)
        if parts is None:
            conditions += 1
            if conditions > MAX_CONDITIONS:
                raise ValidationError(f"a rule may hold at most {MAX_CONDITIONS} conditions")
            continue
        if depth + 1 > MAX_DEPTH:
            raise ValidationError(f"{path or 'rule'}: groups may nest at most {MAX_DEPTH} deep")
        stack.extend((child, p, depth + 1) for p, child in parts)


def children(node: Any, path: str) -> list[tuple[str, Any]] | None:
    """A group's parts with their paths (``all[2]``, ``not``); None for a condition."""
    dot = f"{path}." if path else ""
    if isinstance(node, AllOf):
        return [(f"{dot}all[{i}]", r) for i, r in enumerate(node.all_)]
    if isinstance(node, AnyOf):
        return [(f"{dot}any[{i}]", r) for i, r in enumerate(node.any_)]
    if isinstance(node, NotRule):
        return [(f"{dot}not", node.not_)]
    return None


def conditions(rule: Any) -> Iterator[tuple[str, Any]]:
    """Every condition of ``rule`` with its path, in order."""
    stack: list[tuple[str, Any]] = [("", rule)]
    while stack:
        path, node = stack.pop()
        parts = children(node, path)
        if parts is None:
            yield path, node
        else:
            stack.extend(reversed(parts))


def referenced_tags(rule: Any) -> set[str]:
    """The tags a rule reads (to refresh them first)."""
    return {c.tag for _, c in conditions(rule) if isinstance(c, TagCondition)}


def referenced_segments(rule: Any) -> set[int]:
    """The segments a rule reads (for refresh order and to refuse cycles)."""
    return {c.segment for _, c in conditions(rule) if isinstance(c, SegmentCondition)}


# error messages ----------------------------------------------------------------------------------------------------
def _describe(exc: PydanticValidationError) -> str:
    errors = exc.errors(include_url=False)
    lines = []
    for err in errors[:3]:
        path, field = _split(tuple(err["loc"]))
        where = path or "rule"
        lines.append(f"{where}: {field + ': ' if field else ''}{_message(err)}")
    more = f" (and {len(errors) - 3} more problems)" if len(errors) > 3 else ""
    return "; ".join(lines) + more


def _message(err: Any) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _split(loc: tuple[Any, ...]) -> tuple[str, str]:
    """A pydantic error location as (rule path, field inside the condition or group)."""
    path: list[str] = []
    i = 0
    while i < len(loc):
        kind = loc[i]
        i += 1
        if kind in ("all", "any") and i + 1 < len(loc) and loc[i] == kind and isinstance(loc[i + 1], int):
            path.append(f"{kind}[{loc[i + 1]}]")
            i += 2
            continue
        if kind == "not" and i < len(loc) and loc[i] == "not":
            path.append("not")
            i += 1
            continue
        if kind == "condition":
            i += 1  # the condition's type tag
        elif kind not in ("all", "any", "not"):
            i -= 1
        break
    return ".".join(path), _field(loc[i:])


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
