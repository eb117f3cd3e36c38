"""Tags (标签, DOMAIN §3): named per-person values with history, their definitions and where they are kept.

A tag is a JSON definition, validated here and stored in the metadata DB (:class:`TagRow`); its values live in
the project's DuckDB schema as the history table ``tag_<name>`` (:mod:`userloop.profile.history`), written by
:func:`userloop.profile.materialise.materialise`. Four kinds, each from a source::

    {"name": "orders_30d", "title_zh": "近30天支付订单数", "title_en": "Paid orders, last 30 days",
     "kind": "behaviour", "type": "number",
     "source": {"from": "events", "event": "order_paid", "agg": "count", "window": {"last": 30}}}

- ``basic`` — a profile property, as it is or derived (age from a birthday, tenure from a sign-up time);
- ``behaviour`` — an aggregate of a person's events (count, sum, first/last/most frequent value, active days…);
- ``result`` — a state derived from behaviour or from a model (repurchase, retention, preference);
- ``predictive`` — a model output (churn tier, CLV tier, RFM class, lifecycle stage);
- ``sql`` (admin only; read-only, time-limited) and ``upload`` (values from a CSV of ids).

Value types: ``enum`` (an ordered enumeration: ``values`` lists it lowest first), ``string``, ``number``,
``bool``, ``date``. ``bins`` turn a number into an ordered enumeration.

A definition is checked against the project when it is saved (every property, event and model field must
exist and fit the aggregate); a changed definition starts the tag's history again, since old values meant
something else.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import orjson
import pydantic
from pydantic import Field, model_validator
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.profile import history
from userloop.profile.features import Feature
from userloop.query.spec import DateRange, Filter, Name, Spec
from userloop.store.meta import Base, MetaStore

if TYPE_CHECKING:
    from userloop.store.duck import ProjectStore

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

    def label_of(self, x: float) -> str:
        """The label of ``x`` (what the SQL computes, in Python: for references and tests)."""
        return self.labels[sum(1 for e in self.edges if e <= x)]


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
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum tag needs 'values' (its values in order, lowest first)")
            if len(set(self.values)) != len(self.values):
                raise ValueError("an enum tag's values must differ from each other")
        elif self.values is not None:
            raise ValueError(f"'values' are for enum tags; this tag's type is {self.type}")
        if self.bins is not None:
            if self.type != "enum":
                raise ValueError("bins turn a number into an ordered enumeration: the type must be 'enum'")
            if self.values != self.bins.labels:
                raise ValueError("with bins, 'values' must be the bin labels in order")
            if source == "upload":
                raise ValueError("an upload tag takes its values as uploaded; it has no bins")
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


# storage --------------------------------------------------------------------------------------------------------
class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    definition: Mapped[str] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def tag(self) -> TagDef:
        return parse_tag(orjson.loads(self.definition))

    @property
    def table(self) -> str:
        """The history table in the project's schema."""
        return f"tag_{self.name}"

    @property
    def title_zh(self) -> str:
        return self.tag.title_zh or self.name

    @property
    def title_en(self) -> str:
        return self.tag.title_en or self.name

    def as_dict(self) -> dict[str, Any]:
        tag = self.tag
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "title_zh": tag.title_zh,
            "title_en": tag.title_en,
            "definition": orjson.loads(self.definition),
            "incremental": tag.incremental,
            "builtin": self.builtin,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


_ready: set[int] = set()


def ensure_tables(meta: MetaStore) -> None:
    """Create the table on first use (workspaces made before tags existed lack it)."""
    if id(meta.engine) not in _ready:
        Base.metadata.create_all(meta.engine, tables=[TagRow.__table__])  # type: ignore[list-item]
        _ready.add(id(meta.engine))


def _canonical(tag: TagDef) -> str:
    return orjson.dumps(tag.as_json(), option=orjson.OPT_SORT_KEYS).decode()


def save(
    meta: MetaStore, project: ProjectStore, project_id: int, definition: dict[str, Any] | TagDef, *,
    builtin: bool = False,
) -> TagRow:  # fmt: skip
    """Check ``definition`` against the project and store it; a tag of the same name is an error.

    >>> save(meta, project, 1, {"name": "gender", "kind": "basic", "type": "string",
    ...                         "source": {"from": "profile", "property": "gender"}})  # doctest: +SKIP
    """
    from userloop.profile.tagsql import check

    ensure_tables(meta)
    tag = parse_tag(definition)
    check(tag, project)
    with meta.session() as s:
        taken = s.scalar(select(TagRow.id).where(TagRow.project_id == project_id, TagRow.name == tag.name))
    if taken is not None:
        raise ValidationError(f"a tag named {tag.name!r} already exists; change it with update", code="tag_exists")
    # a tag deleted and made again must not inherit the old one's values
    history.reset(project, tag.table)
    with meta.session.begin() as s:
        row = TagRow(project_id=project_id, name=tag.name, kind=tag.kind, type=tag.type,
                     definition=_canonical(tag), builtin=builtin)  # fmt: skip
        s.add(row)
    return row


def get(meta: MetaStore, project_id: int, name: str) -> TagRow:
    ensure_tables(meta)
    with meta.session() as s:
        row = s.scalar(select(TagRow).where(TagRow.project_id == project_id, TagRow.name == name))
        if row is None:
            names = list(s.scalars(select(TagRow.name).where(TagRow.project_id == project_id)))
    if row is None:
        close = sorted(n for n in names if n.startswith(name[:3]))[:8]
        hint = f"; similar: {', '.join(close)}" if close else ""
        raise NotFoundError(f"no tag named {name!r} in this project{hint}")
    return row


def listing(meta: MetaStore, project_id: int) -> list[TagRow]:
    ensure_tables(meta)
    with meta.session() as s:
        return list(s.scalars(select(TagRow).where(TagRow.project_id == project_id).order_by(TagRow.name)))


def update(
    meta: MetaStore,
    project: ProjectStore,
    project_id: int,
    name: str,
    definition: dict[str, Any] | TagDef | None = None,
    *,
    enabled: bool | None = None,
) -> TagRow:
    """Replace a tag's definition (its history starts again if the meaning changed) and/or switch it on or off.

    The name cannot change: it names the history table (define a new tag instead).
    """
    from userloop.profile.tagsql import check

    current = get(meta, project_id, name)
    new_text = current.definition
    if definition is not None:
        doc = definition.as_json() if isinstance(definition, TagDef) else {"name": name, **definition}
        tag = parse_tag(doc)
        if tag.name != name:
            raise ValidationError(f"a tag cannot be renamed ({name!r} → {tag.name!r}); define a new tag instead")
        check(tag, project)
        new_text = _canonical(tag)
        if new_text != current.definition:
            history.reset(project, tag.table)
    with meta.session.begin() as s:
        row = s.get(TagRow, current.id)
        assert row is not None
        if new_text != row.definition:
            tag = parse_tag(orjson.loads(new_text))
            row.definition, row.kind, row.type = new_text, tag.kind, tag.type
        if enabled is not None:
            row.enabled = enabled
        row.updated_at = utcnow()
    return row


def delete(meta: MetaStore, project: ProjectStore, project_id: int, name: str) -> None:
    """Remove a tag and its history."""
    row = get(meta, project_id, name)
    history.reset(project, row.table)
    with meta.session.begin() as s:
        s.delete(s.get(TagRow, row.id))


def install_starter(meta: MetaStore, project: ProjectStore, project_id: int) -> list[TagRow]:
    """Save the starter tags (:mod:`userloop.profile.starter`) that the project's data supports and that are not
    there yet; returns every starter tag now defined. Installing twice changes nothing; a starter tag that names
    an event or property the project lacks is left out (install again once the data has it)."""
    from userloop.profile.starter import STARTER_TAGS

    have = {row.name: row for row in listing(meta, project_id)}
    out: list[TagRow] = []
    for doc in STARTER_TAGS:
        row = have.get(doc["name"])
        if row is None:
            try:
                row = save(meta, project, project_id, doc, builtin=True)
            except ValidationError:
                continue
        out.append(row)
    return out


# readers for the rest of the profile platform --------------------------------------------------------------------
def tag_features(
    meta: MetaStore, project_id: int, schema: str, *, project: ProjectStore | None = None
) -> list[Feature]:
    """Every enabled tag's current values as a :class:`Feature` (with ``project``: only tags computed at least
    once, so every source table exists)."""
    out = []
    for row in listing(meta, project_id):
        if not row.enabled or (project is not None and not history.exists(project, row.table)):
            continue
        tag = row.tag
        out.append(
            Feature(
                name=f"tag:{tag.name}",
                label=tag.title_en or tag.title_zh or tag.name,
                kind="tag",
                type=tag.type,
                source=history.values_on(schema, row.table),
                order=tag.order,
            )
        )
    return out


def tag_infos(meta: MetaStore, project_id: int) -> dict[str, tuple[str, tuple[str, ...] | None]]:
    """``name → (type, order)`` of every tag, for the segment rule compiler."""
    return {row.name: (row.type, row.tag.order) for row in listing(meta, project_id)}


def upload(
    meta: MetaStore,
    project: ProjectStore,
    project_id: int,
    name: str,
    csv_text: str,
    *,
    id_column: str,
    id_kind: Literal["user_id", "distinct_id"] | str,
    value_column: str | None,
    run_date: date,
) -> dict[str, Any]:
    """Set an upload tag's values from CSV text (see :func:`userloop.profile.materialise.upload_values`)."""
    from userloop.profile.materialise import upload_values

    tag = get(meta, project_id, name).tag
    return upload_values(project, tag, csv_text, id_column=id_column, id_kind=id_kind,
                         value_column=value_column, run_date=run_date)  # fmt: skip
