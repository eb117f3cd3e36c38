"""Tags (标签) as operations: define, list, show with coverage, change, delete, install the starter set,
compute now, set an upload tag's values.

Reading needs ``read``; every change needs ``admin``. A definition is the typed JSON of
:class:`userloop.profile.tagdefs.TagDef`, checked against the project before it is saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field

from userloop.ops.base import OpContext, ProjectScoped, Strict, operation
from userloop.profile.tagdefs import NAME_PATTERN, TagDef

if TYPE_CHECKING:
    from userloop.profile.platform import Profiles

TagName = Annotated[str, Field(max_length=60, pattern=NAME_PATTERN, description="The tag's name.")]
#: A value measured on a column that may hold integers or decimals: it keeps its kind in the JSON.
Number = int | float


def absent(value: Any) -> bool:
    """Whether an optional part of a reply is missing: it is then left out, as the stored JSON leaves it out."""
    return value is None


def profiles(ctx: OpContext) -> Profiles:
    """The profile platform of the request's project (imported here: a client reading the types needs no engine)."""
    from userloop.profile.platform import Profiles

    return Profiles(ctx.ws.meta, ctx.store, ctx.info)


class Aliased(Strict):
    """A reply with a field named by a Python keyword (``from``): it travels under that name both ways."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)


# replies ------------------------------------------------------------------------------------------------------
class ValueCount(Strict):
    value: Any
    count: int


class Bin(Aliased):
    start: Number = Field(alias="from")
    to: Number
    count: int


class PeriodCount(Strict):
    period: str
    count: int


class Counts(Strict):
    """An enumeration's or a text tag's values: an enumeration lists every value in order, text the top 50."""

    kind: Literal["counts"]
    values: list[ValueCount]
    other: int = Field(description="People with a value beyond the listed ones.")
    distinct: int


class Numeric(Strict):
    kind: Literal["numeric"]
    min: Number | None
    max: Number | None
    mean: Number | None
    quantiles: dict[str, Number | None] = Field(description="p10 … p90.")
    histogram: list[Bin]


class Dates(Strict):
    kind: Literal["dates"]
    min: str | None
    max: str | None
    by: Literal["month", "year"]
    counts: list[PeriodCount]


Distribution = Annotated[Counts | Numeric | Dates, Field(discriminator="kind")]


class TagStats(Strict):
    """What a tag's run measured: how it ran, who has a value and how the values spread."""

    mode: Literal["full", "incremental"]
    watermark: str | None = Field(description="The latest arrival the run had seen (incremental runs go on from it).")
    recomputed: int
    touched: int | None
    persons: int
    users: int
    coverage: float
    distribution: Distribution
    note: str | None = Field(default=None, exclude_if=absent, description="Why the run did what it did.")


class SegmentStats(Strict):
    """What a segment's run noted: a rule's warnings, or where a fixed set of people came from."""

    warnings: list[str] | None = Field(default=None, exclude_if=absent)
    source: Literal["static", "lookalike"] | None = Field(default=None, exclude_if=absent)


class HistoryRun(Strict):
    """One run of a tag or a segment: the day, people with a value, intervals opened and closed."""

    run_date: str
    finished_at: str
    users: int
    opened: int
    closed: int
    seconds: float
    stats: TagStats | SegmentStats


class RunDone(Strict):
    """What one run just did (``target``: the history table written)."""

    target: str
    run_date: str
    users: int
    opened: int
    closed: int
    seconds: float
    stats: TagStats | SegmentStats


class Tag(Strict):
    """A stored tag; ``definition`` is its JSON as saved (:class:`userloop.profile.tagdefs.TagDef`)."""

    id: int
    name: str
    kind: str
    type: str
    title_zh: str
    title_en: str
    definition: dict[str, Any]
    incremental: bool
    builtin: bool
    enabled: bool
    created_at: str
    updated_at: str


class ListedTag(Tag):
    last_run: HistoryRun | None


class LatestRun(Strict):
    """The latest run: its day and changes, and what it measured (:class:`TagStats`)."""

    run_date: str
    seconds: float
    opened: int
    closed: int
    mode: Literal["full", "incremental"]
    watermark: str | None
    recomputed: int
    touched: int | None
    persons: int
    users: int
    coverage: float
    distribution: Distribution
    note: str | None = Field(default=None, exclude_if=absent)


class CoveragePoint(Strict):
    run_date: str
    users: int
    coverage: float | None


class Coverage(Strict):
    name: str
    type: str
    latest: LatestRun | None
    series: list[CoveragePoint] = Field(description="Coverage by run date, oldest first.")


class ShownTag(Tag):
    coverage: Coverage


class DeletedTag(Strict):
    deleted: str


# reading ------------------------------------------------------------------------------------------------------
@operation("tags.list", "GET", "/api/v1/tags", right="read", summary="Tags with their latest run")
def list_tags(ctx: OpContext, req: ProjectScoped) -> list[ListedTag]:
    return [ListedTag.model_validate(t) for t in profiles(ctx).tags()]


class TagRef(ProjectScoped):
    tag: TagName


@operation("tags.get", "GET", "/api/v1/tags/{tag}", right="read",
           summary="A tag: definition, coverage over time, latest value distribution")  # fmt: skip
def get_tag(ctx: OpContext, req: TagRef) -> ShownTag:
    return ShownTag.model_validate(profiles(ctx).tag(req.tag))


# changing -----------------------------------------------------------------------------------------------------
class CreateTag(ProjectScoped, TagDef):
    """A tag definition (the body is the definition itself)."""


def _definition(req: TagDef, *names: str) -> dict[str, Any]:
    """The definition a request carries, as its JSON (without the request's own fields ``names``)."""
    return req.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"project", *names})


@operation("tags.create", "POST", "/api/v1/tags", right="analyse", status=201, store_writes=True,
           summary="Define a tag (validated against the project before it is saved)")  # fmt: skip
def create_tag(ctx: OpContext, req: CreateTag) -> Tag:
    return Tag.model_validate(profiles(ctx).save_tag(_definition(req)))


class UpdateTag(ProjectScoped, TagDef):
    """A tag's new definition; ``name``, when given, must be the tag's (a tag is never renamed)."""

    tag: TagName
    # the body may leave the name out, since the path names the tag
    name: str | None = Field(  # type: ignore[assignment]
        default=None, pattern=NAME_PATTERN, description="The tag's name (it cannot change)."
    )


@operation("tags.update", "PUT", "/api/v1/tags/{tag}", right="analyse", store_writes=True,
           summary="Replace a tag's definition (its history starts again)")  # fmt: skip
def update_tag(ctx: OpContext, req: UpdateTag) -> Tag:
    return Tag.model_validate(profiles(ctx).update_tag(req.tag, _definition(req, "tag")))


@operation("tags.delete", "DELETE", "/api/v1/tags/{tag}", right="analyse", store_writes=True,
           summary="Delete a tag and its history")  # fmt: skip
def delete_tag(ctx: OpContext, req: TagRef) -> DeletedTag:
    profiles(ctx).delete_tag(req.tag)
    return DeletedTag(deleted=req.tag)


@operation("tags.starter", "POST", "/api/v1/tags/starter", right="analyse", status=201, inputs="query",
           store_writes=True, summary="Install the starter tags for the simulated business")  # fmt: skip
def install_starter(ctx: OpContext, req: ProjectScoped) -> list[Tag]:
    return [Tag.model_validate(t) for t in profiles(ctx).install_starter()]


class Materialise(ProjectScoped):
    names: list[str] | None = Field(default=None, max_length=500, description="Tags to compute (default: all enabled).")
    date: str | None = Field(default=None, description="Local day the values describe, YYYY-MM-DD (default: today).")
    full: bool = Field(default=False, description="Recompute everyone even where an incremental run would do.")


class Materialised(Strict):
    run_date: str
    tags: list[RunDone]


@operation("tags.materialise", "POST", "/api/v1/tags/materialise", right="analyse", store_writes=True,
           summary="Compute tags now (dated; the history keeps earlier values)")  # fmt: skip
def materialise(ctx: OpContext, req: Materialise) -> Materialised:
    from userloop.core.clock import parse_day

    done = profiles(ctx).materialise(req.names, run_date=parse_day(req.date, "date"), full=req.full)
    return Materialised.model_validate(done)


class UploadTag(ProjectScoped):
    """An upload tag's values as CSV text with a header row."""

    tag: TagName
    csv: str = Field(max_length=500_000_000, description="The CSV, header row first.")
    id_column: str = Field(default="id", max_length=100)
    id_kind: Literal["user_id", "distinct_id"] = "distinct_id"
    value_column: str | None = Field(default=None, max_length=100, description="None: a yes/no tag, TRUE for all.")


class UploadReject(Strict):
    row: int = Field(description="The data row, counted from 1 after the header.")
    field: str
    reason: str


class Uploaded(Strict):
    tag: str
    run_date: str
    rows: int
    accepted: int
    rejected: int
    rejects: list[UploadReject]
    run: RunDone


def upload_tag(ctx: OpContext, req: UploadTag) -> Uploaded:
    """Set an upload tag's values; rows that cannot be used come back with their reason. The CSV travels as the
    body of ``POST /api/v1/tags/{tag}/upload`` (text/csv), a route of its own (:mod:`userloop.api.routers.profiles`)."""
    p = profiles(ctx)
    done = p.upload_tag(req.tag, req.csv, id_column=req.id_column, id_kind=req.id_kind, value_column=req.value_column)
    return Uploaded.model_validate(done)
