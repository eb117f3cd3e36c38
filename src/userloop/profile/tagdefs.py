"""The tag definition language (DOMAIN §3): what a tag is, as typed JSON, checked before anything runs.

A definition names the tag, its kind, its value type and where its values come from::

    {"name": "orders_30d", "title_zh": "近30天支付订单数", "title_en": "Paid orders, last 30 days",
     "kind": "behaviour", "type": "number",
     "source": {"from": "events", "event": "order_paid", "agg": "count", "window": {"last": 30}}}

:mod:`userloop.profile.tags` stores definitions, :mod:`userloop.profile.tagsql` compiles them and
:mod:`userloop.profile.materialise` computes their values.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import Field, model_validator

from userloop.core.errors import ValidationError
from userloop.query.spec import DateRange, Filter, Name, Spec

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,59}$"
TagKind = Literal["basic", "behaviour", "result", "predictive", "sql", "upload"]
TagType = Literal["enum", "string", "number", "bool", "date"]
Agg = Literal[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "distinct_count",
    "first",
    "last",
    "most_frequent",
    "active_days",
    "first_time",
    "last_time",
    "days_since_first",
    "days_since_last",
]
#: Aggregates over a property's values (the others count events or read their times).
PROPERTY_AGGS = frozenset({"sum", "avg", "min", "max", "distinct_count", "first", "last", "most_frequent"})
#: Aggregates that give 0 to a person with no matching event (the others give no value).
ZERO_AGGS = frozenset({"count", "sum", "distinct_count", "active_days"})
#: Aggregates whose value moves with the run date even without new events.
DATE_RELATIVE_AGGS = frozenset({"days_since_first", "days_since_last"})
#: The SQL type of each tag type's values in the history table.
SQL_TYPES: dict[str, str] = {"enum": "VARCHAR", "string": "VARCHAR", "number": "DOUBLE", "bool": "BOOLEAN",
                             "date": "DATE"}  # fmt: skip
#: Which sources each kind may use.
KIND_SOURCES: dict[str, tuple[str, ...]] = {
    "basic": ("profile",),
    "behaviour": ("events",),
    "result": ("events", "model"),
    "predictive": ("model",),
    "sql": ("sql",),
    "upload": ("upload",),
}
MAX_VALUES = 200
#: The days a run or a window may name (beyond them a local midnight has no UTC instant to compare with).
MIN_DAY, MAX_DAY = date(1900, 1, 1), date(2999, 12, 31)
MAX_SQL_CHARS = 20_000


# the definition language ----------------------------------------------------------------------------------------
class Bins(Spec):
    """Cut a number into an ordered enumeration: ``labels[i]`` for ``edges[i-1] <= x < edges[i]``.

    ``{"edges": [1, 3, 10], "labels": ["0", "1-2", "3-9", "10+"]}``: below 1 → ``"0"``, 1 to 2.99… → ``"1-2"``,
    10 and more → ``"10+"``.
    """

    edges: list[float] = Field(min_length=1, max_length=50)
    labels: list[Annotated[str, Field(min_length=1, max_length=100)]]

    @model_validator(mode="after")
    def _shape(self) -> Bins:
        if any(not math.isfinite(e) for e in self.edges):
            raise ValueError("bin edges must be finite numbers")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bin edges must increase strictly")
        if len(self.labels) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) + 1} bins; give that many labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("bin labels must differ from each other")
        return self


class ProfileSource(Spec):
    """A profile property; ``derive`` turns a date into whole years or days before the run date (age, tenure)
    or into its ``MM-DD`` (birthdays)."""

    source_from: Literal["profile"] = Field(alias="from")
    property: Name
    derive: Literal["years_since", "days_since", "month_day"] | None = None


class EventSource(Spec):
    """An aggregate of each person's events of one name (or ``$any``) that pass ``filters``, in ``window``
    (local days relative to the run date; ``None``: all time up to the run date).

    ``first``/``last``: the property on the earliest/latest matching event that has it (ties in time go to the
    smaller ``event_id``); ``most_frequent``: the value on most matching events (ties: the smallest value);
    ``active_days``: distinct local days; ``first_time``/``last_time``: the local date; ``days_since_*``: whole
    local days from that date to the run date. ``count``, ``sum``, ``distinct_count`` and ``active_days`` are 0
    for a person without matching events; the others have no value.
    """

    source_from: Literal["events"] = Field(alias="from")
    event: Name
    filters: list[Filter] = Field(default_factory=list, max_length=20)
    agg: Agg
    property: Name | None = None
    window: DateRange | None = None

    @model_validator(mode="after")
    def _property_fits_agg(self) -> EventSource:
        window = self.window
        if window is not None and any(
            d is not None and not MIN_DAY <= d <= MAX_DAY for d in (window.start, window.end)
        ):
            raise ValueError(f"a window's days lie between {MIN_DAY} and {MAX_DAY}")
        if self.agg in PROPERTY_AGGS and self.property is None:
            raise ValueError(f"aggregate {self.agg!r} needs a 'property' whose values it aggregates")
        if self.agg not in PROPERTY_AGGS and self.property is not None:
            raise ValueError(f"aggregate {self.agg!r} takes no 'property'")
        return self


class ModelSource(Spec):
    """A field of a per-user model's output (``model_<model>``), from its latest run on or before the run date."""

    source_from: Literal["model"] = Field(alias="from")
    model: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    field: Name


class SqlSource(Spec):
    """A read-only query over the project's views returning ``user_id`` and ``value`` (admins only)."""

    source_from: Literal["sql"] = Field(alias="from")
    query: str = Field(min_length=1, max_length=MAX_SQL_CHARS)


class UploadSource(Spec):
    """Values uploaded as a CSV of ids (:func:`upload`)."""

    source_from: Literal["upload"] = Field(alias="from")


Source = Annotated[
    Union[ProfileSource, EventSource, ModelSource, SqlSource, UploadSource],  # noqa: UP007
    Field(discriminator="source_from"),
]


class TagDef(Spec):
    """One tag definition (the JSON of the API and the CLI)."""

    name: str = Field(pattern=NAME_PATTERN, description="Names the history table tag_<name>.")
    title_zh: str = Field("", max_length=100)
    title_en: str = Field("", max_length=100)
    description: str = Field("", max_length=2000)
    kind: TagKind
    type: TagType
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=MAX_VALUES, description="An enumeration's values, lowest first."
    )
    source: Source
    bins: Bins | None = None

    @model_validator(mode="before")
    @classmethod
    def _values_from_bins(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("bins"), dict) and data.get("values") is None:
            labels = data["bins"].get("labels")
            if isinstance(labels, list):
                data = {**data, "values": labels}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TagDef:
        source = self.source.source_from
        if source not in KIND_SOURCES[self.kind]:
            allowed = " or ".join(KIND_SOURCES[self.kind])
            raise ValueError(f"a {self.kind} tag takes its values from {allowed}, not from {source}")
        if self.bins is not None:
            if self.type != "enum":
                raise ValueError("bins turn a number into an ordered enumeration: the type must be 'enum'")
            if self.values != self.bins.labels:
                raise ValueError("with bins, 'values' must be the bin labels in order")
            if source == "upload":
                raise ValueError("an upload tag takes its values as uploaded; it has no bins")
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum tag needs 'values' (its values in order, lowest first)")
            if len(set(self.values)) != len(self.values):
                raise ValueError("an enum tag's values must differ from each other")
        elif self.values is not None:
            raise ValueError(f"'values' are for enum tags; this tag's type is {self.type}")
        return self

    @property
    def table(self) -> str:
        return f"tag_{self.name}"

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]

    @property
    def order(self) -> tuple[str, ...] | None:
        return tuple(self.values) if self.type == "enum" and self.values else None

    @property
    def incremental(self) -> bool:
        """Whether a run may recompute only the people touched since the last run: an all-time event
        aggregate that no run date and no profile value can change (see :mod:`userloop.profile.materialise`)."""
        s = self.source
        return (
            isinstance(s, EventSource)
            and s.window is None
            and s.agg not in DATE_RELATIVE_AGGS
            and all(f.source == "event" for f in s.filters)
        )

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_tag(doc: dict[str, Any] | TagDef) -> TagDef:
    """A definition from its JSON; a ValidationError names every field that is wrong and why."""
    if isinstance(doc, TagDef):
        return doc
    if not isinstance(doc, dict):
        raise ValidationError("a tag definition is a JSON object")
    try:
        return TagDef.model_validate(doc)
    except pydantic.ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False)[:20]:
            where = ".".join(str(p) for p in err["loc"]) or "definition"
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise ValidationError("invalid tag definition — " + "; ".join(parts)) from exc
