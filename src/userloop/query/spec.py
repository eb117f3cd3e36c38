"""The pieces every analysis definition shares: date ranges, event references, filters, breakdowns.

A definition is data (JSON in the API, a file for ``userloop query``), validated by pydantic. Nothing here knows
SQL; :mod:`userloop.query.compile` turns these pieces into sqlglot expressions.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from userloop.core.errors import ValidationError

#: The event name that matches every event.
ANY_EVENT = "$any"

Name = Annotated[str, Field(min_length=1, max_length=100)]
Scalar = str | float | bool
Interval = Literal["hour", "day", "week", "month"]
Source = Literal["event", "user"]
FilterOp = Literal[
    "eq",
    "neq",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "not_contains",
    "is_set",
    "is_not_set",
]

MAX_LIST_VALUES = 1000


class Spec(BaseModel):
    """Base of every definition piece: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DateRange(Spec):
    """Local calendar days in the project's time zone: ``{"from": …, "to": …}`` or ``{"last": N}``.

    ``last`` counts **complete** days back from today: ``{"last": 7}`` is the seven days that ended at the last
    local midnight, today left out, so a range never ends on a day still running. ``"include_current": true``
    (alias ``include_today``) ends it on today instead; a result then marks the periods still running as
    partial. A ``from`` without ``to`` ends the same way. Profile rules and tags, evaluated as of the end of a
    day, pass ``current=True`` to :meth:`resolve`: their "today" is a whole day.
    """

    start: date | None = Field(None, alias="from")
    end: date | None = Field(None, alias="to")
    last: int | None = Field(None, ge=1, le=3660)
    include_current: bool | None = Field(
        None,
        validation_alias=AliasChoices("include_current", "include_today"),
        description="End a relative range on today (a partial day) instead of yesterday; default false.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> DateRange:
        if self.last is None and self.start is None:
            raise ValueError("give either 'from' (and optionally 'to') or 'last'")
        if self.last is not None and (self.start is not None or self.end is not None):
            raise ValueError("give either 'from'/'to' or 'last', not both")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        if self.start is not None and self.end is not None and (self.end - self.start).days > 3660:
            raise ValueError("a date range may span at most 3,660 days")
        return self

    def resolve(self, today: date, *, current: bool = False) -> tuple[date, date]:
        """The first and last local day, both included.

        A relative or open-ended range ends on the day before ``today`` (the last complete day), or on ``today``
        when ``include_current`` is true; ``current`` is the default when the range does not say.
        """
        include = self.include_current if self.include_current is not None else current
        end = today if include else today - timedelta(days=1)
        if self.last is not None:
            return end - timedelta(days=self.last - 1), end
        assert self.start is not None
        if self.end is not None:
            return self.start, self.end
        if end < self.start and not include:
            raise ValidationError(
                f"the range from {self.start} has no complete day yet (today is {today})",
                hint='add "include_current": true to include today, or give "to"',
            )
        return self.start, end


class Filter(Spec):
    """A condition on an event property (``source: "event"``) or on the person's profile (``"user"``)."""

    property: Name
    source: Source = "event"
    op: FilterOp = "eq"
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        op, value = self.op, self.value
        if op in ("is_set", "is_not_set"):
            if value is not None:
                raise ValueError(f"operator {op!r} takes no value")
        elif op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise ValueError(f"operator {op!r} needs a non-empty list of values")
            if len(value) > MAX_LIST_VALUES:
                raise ValueError(f"operator {op!r} takes at most {MAX_LIST_VALUES} values")
        elif op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ValueError("operator 'between' needs a list of two values [low, high]")
        elif value is None or isinstance(value, list):
            raise ValueError(f"operator {op!r} needs one value")
        return self


class EventRef(Spec):
    """An event (or ``$any``) with filters that all must hold."""

    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    name: str | None = Field(None, max_length=100, description="A display name for this step or series.")

    @property
    def label(self) -> str:
        return self.name or self.event


class Breakdown(Spec):
    """Split results by a property's values (the ``limit`` most frequent, the rest as ``$other``), or by numeric
    bins of equal width when ``bins`` is given."""

    property: Name
    source: Source = "event"
    bins: int | None = Field(None, ge=2, le=50)
    limit: int = Field(25, ge=1, le=500)


#: The label of values outside a breakdown's top ``limit``, and of rows whose property is not set.
OTHER = "$other"
NONE = "$none"


class QueryBase(Spec):
    """Fields every analysis has. Subclasses add ``kind`` (the discriminator) and their own options."""

    kind: str
    date_range: DateRange = Field(default_factory=lambda: DateRange.model_validate({"last": 30}))
    filters: list[Filter] = Field(default_factory=list, max_length=50, description="Apply to every event used.")
