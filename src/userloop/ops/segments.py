"""Segments (人群) as operations: rule, static, analysis and look-alike audiences; estimate, refresh, members,
changes, comparisons and the fields an export can hold.

Reading, estimating and comparing need ``read``; saving and changing need ``admin``. A rule with a condition on
personal data (phone, e-mail) needs the ``pii`` right too (``pii_required``): a size would confirm a guess.
The export itself is a file, sent by its own route (:mod:`userloop.api.routers.profiles`) and written in
process by :func:`export_segment`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, RowId, Strict, operation
from userloop.ops.tags import HistoryRun, Number, RunDone, absent, profiles

FeatureKind = Literal["tag", "property", "model"]
Text = Annotated[str, Field(max_length=5000)]


def _tag_and_property() -> list[FeatureKind]:
    return ["tag", "property"]


# replies ------------------------------------------------------------------------------------------------------
class Segment(Strict):
    """A saved segment; ``definition`` is its rule, or where its people came from."""

    id: int
    name: str
    description: str
    kind: Literal["rule", "static", "lookalike"]
    definition: dict[str, Any]
    refresh: str
    size: int | None
    refreshed_at: str | None
    created_at: str
    updated_at: str


class ShownSegment(Segment):
    runs: list[HistoryRun] = Field(description="Its refreshes, newest first (at most 60).")


class IdReject(Strict):
    row: int
    id: str
    reason: str


class StaticSegment(ShownSegment):
    rejects: list[IdReject] = Field(description="The ids that match no one, with their position.")


class Estimate(Strict):
    size: int
    total: int
    share: float
    warnings: list[str]
    took_ms: float


class MembersPage(Strict):
    user_ids: list[int]
    next: int | None = Field(description="Pass as ?after= for the next page; None on the last one.")


class Changes(Strict):
    date: str
    entered: list[int]
    left: list[int]


class ExportField(Strict):
    field: str
    kind: Literal["user_id", "property", "tag", "model", "identity"]
    type: str
    sensitive: Literal["phone", "email"] | None


class DeletedSegment(Strict):
    deleted: int


# comparisons and look-alikes: statistics may be NaN or infinite inside the engine, never in the JSON
class Report(Strict):
    model_config = ConfigDict(allow_inf_nan=True)


class Bilingual(Report):
    en: str
    zh: str


class Note(Bilingual):
    code: str


class GroupSize(Report):
    name: str
    size: int
    everyone_else: bool | None = Field(default=None, exclude_if=absent)


class Groups(Report):
    a: GroupSize
    b: GroupSize
    overlap: int


class EffectSize(Report):
    measure: Literal["cramers_v", "cohens_d"]
    value: float | None


class Share(Report):
    value: str
    a: int
    b: int
    share_a: float
    share_b: float
    lift: float | None
    diff_pts: float


class Spread(Report):
    """A numeric feature in one group: people with a value, the missing, mean, sd, quartiles, range."""

    n: int
    missing: int
    mean: Number | None
    sd: Number | None
    p25: Number | None
    p50: Number | None
    p75: Number | None
    min: Number | None
    max: Number | None
    dates: dict[str, str | None] | None = Field(default=None, exclude_if=absent, description="A date feature's "
                                                "mean, quartiles and range as days.")  # fmt: skip


class Histogram(Report):
    edges: list[Number] | list[str | None]
    a: list[int]
    b: list[int]


class FeatureResult(Report):
    """One tested feature: a chi-square test of its values' shares, or Welch's t-test of its means."""

    name: str
    label: str
    kind: str
    type: str
    test: Literal["chi2", "welch"]
    statistic: float | None
    df: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    effect: float | None
    effect_size: EffectSize
    summary: Bilingual
    values: list[Share] | None = Field(default=None, exclude_if=absent)
    distinguishing: list[Share] | None = Field(default=None, exclude_if=absent)
    folded_values: int | None = Field(default=None, exclude_if=absent)
    distinct_values: int | None = Field(default=None, exclude_if=absent)
    a: Spread | None = Field(default=None, exclude_if=absent)
    b: Spread | None = Field(default=None, exclude_if=absent)
    histogram: Histogram | None = Field(default=None, exclude_if=absent)


class SkippedFeature(Report):
    name: str
    label: str
    code: str
    reason: Bilingual


class ExcludedFeature(Report):
    feature: str
    reason: str


class Comparison(Report):
    a: dict[str, Any] = Field(description="Group A as asked.")
    b: dict[str, Any] | None
    excluded_features: list[ExcludedFeature]
    groups: Groups
    alpha: float
    correction: Literal["bh", "holm", "bonferroni"]
    tested: int
    significant: int
    features: list[FeatureResult] = Field(description="Ranked by effect.")
    skipped: list[SkippedFeature]
    notes: list[Note]
    seconds: float


class Holdout(Report):
    hidden: int
    pool: int
    top_n: int
    found: int
    recall: float
    precision: float
    base_rate: float
    lift: float


class Quality(Report):
    cv_auc: float | None
    cv_folds: list[float]
    holdout: Holdout | None


class Influence(Report):
    column: str
    feature: str
    coefficient: float
    direction: Literal["more_like_seed", "less_like_seed"]
    en: str
    zh: str


class LeakedFeature(Report):
    feature: str
    reason: Bilingual


class LookalikeWarning(Bilingual):
    code: str


class Lookalike(Report):
    model: str
    size: int
    seed_size: int
    universe_size: int
    candidates: int
    trained_on: dict[str, int]
    columns: int
    quality: Quality
    influential: list[Influence]
    skipped: list[dict[str, str]]
    excluded: list[LeakedFeature] = Field(
        description="Features left out because the seed's own rule is made of them (they would leak the rule)."
    )
    warnings: list[LookalikeWarning] = Field(description="E.g. a suspiciously perfect fit (held-out AUC ≥ 0.99).")
    note: Bilingual
    seconds: float
    segment: ShownSegment | None = Field(default=None, exclude_if=absent, description="The saved segment.")


# reading ------------------------------------------------------------------------------------------------------
@operation("segments.list", "GET", "/api/v1/segments", right="read",
           summary="Segments with their size and last refresh")  # fmt: skip
def list_segments(ctx: OpContext, req: ProjectScoped) -> list[Segment]:
    return [Segment.model_validate(s) for s in profiles(ctx).segments()]


@operation("segments.export_fields", "GET", "/api/v1/segments/export-fields", right="read",
           summary="Fields a segment export can hold (sensitive ones marked)")  # fmt: skip
def export_fields(ctx: OpContext, req: ProjectScoped) -> list[ExportField]:
    return [ExportField.model_validate(f) for f in profiles(ctx).export_fields()]


class SegmentRef(ProjectScoped):
    segment_id: RowId


@operation("segments.get", "GET", "/api/v1/segments/{segment_id}", right="read",
           summary="A segment with its run history")  # fmt: skip
def get_segment(ctx: OpContext, req: SegmentRef) -> ShownSegment:
    return ShownSegment.model_validate(profiles(ctx).segment(req.segment_id))


class Members(ProjectScoped):
    segment_id: RowId
    limit: int = Field(default=1000, ge=1, le=10_000)
    after: int | None = Field(default=None, ge=-(2**63), le=MAX_ROW_ID, description="The last person key seen.")


@operation("segments.members", "GET", "/api/v1/segments/{segment_id}/members", right="read",
           summary="A page of current members (person keys)")  # fmt: skip
def members(ctx: OpContext, req: Members) -> MembersPage:
    return MembersPage.model_validate(profiles(ctx).members(req.segment_id, limit=req.limit, after=req.after))


class ChangesOn(ProjectScoped):
    segment_id: RowId
    date: str = Field(max_length=10, description="The refresh's local day, YYYY-MM-DD.")


@operation("segments.changes", "GET", "/api/v1/segments/{segment_id}/changes", right="read",
           summary="Who entered and who left in a day's refresh")  # fmt: skip
def changes(ctx: OpContext, req: ChangesOn) -> Changes:
    from userloop.core.clock import parse_day

    day = parse_day(req.date, "date")
    assert day is not None
    return Changes.model_validate(profiles(ctx).changes(req.segment_id, day))


class EstimateRule(ProjectScoped):
    rule: dict[str, Any] = Field(description="A rule in the segment language.")
    timeout: float = Field(default=30.0, gt=0, le=600)


@operation("segments.estimate", "POST", "/api/v1/segments/estimate", right="read",
           summary="How many people a rule selects now, before saving it")  # fmt: skip
def estimate(ctx: OpContext, req: EstimateRule) -> Estimate:
    from userloop.profile import segments

    done = segments.estimate(ctx.store, ctx.ws.meta, ctx.info, req.rule, timeout_s=req.timeout, pii=ctx.pii)
    return Estimate.model_validate(done)


class Compare(ProjectScoped):
    a: dict[str, Any] = Field(description='{"segment": id} or {"rule": {…}}')
    b: dict[str, Any] | None = Field(default=None, description="Another group; omitted: everyone not in A.")
    features: list[FeatureKind] = Field(default_factory=_tag_and_property)
    correction: Literal["bh", "holm", "bonferroni"] = "bh"
    alpha: float = Field(default=0.05, gt=0, lt=1)


@operation("segments.compare", "POST", "/api/v1/segments/compare", right="read",
           summary="Compare two groups on every tag and property")  # fmt: skip
def compare(ctx: OpContext, req: Compare) -> Comparison:
    from userloop.profile import segments

    for group in (req.a, req.b):
        if group is not None and "rule" in group:
            segments.require_rule_pii(ctx.store, ctx.ws.meta, ctx.info, group["rule"], pii=ctx.pii)
    found = profiles(ctx).compare(req.a, req.b, kinds=tuple(req.features), correction=req.correction, alpha=req.alpha)
    return Comparison.model_validate(found)


# saving and changing ------------------------------------------------------------------------------------------
class CreateSegment(ProjectScoped):
    name: str = Field(min_length=1, max_length=200)
    rule: dict[str, Any] = Field(description="A rule in the segment language.")
    description: Text = ""
    refresh: Literal["daily", "manual"] = "daily"
    compute: bool = Field(default=True, description="Compute the members now (else at the next refresh).")


@operation("segments.create", "POST", "/api/v1/segments", right="analyse", status=201, store_writes=True,
           summary="Save a rule segment (and compute its members)")  # fmt: skip
def create_segment(ctx: OpContext, req: CreateSegment) -> ShownSegment:
    from userloop.profile import segments

    segments.require_rule_pii(ctx.store, ctx.ws.meta, ctx.info, req.rule, pii=ctx.pii)
    saved = profiles(ctx).save_segment(req.name, req.rule, description=req.description, refresh=req.refresh,
                                       compute=req.compute)  # fmt: skip
    return ShownSegment.model_validate(saved)


class CreateStatic(ProjectScoped):
    name: str = Field(min_length=1, max_length=200)
    ids: list[str] = Field(min_length=1, max_length=1_000_000)
    id_kind: Literal["user_id", "distinct_id"] = "distinct_id"
    description: Text = ""


@operation("segments.static", "POST", "/api/v1/segments/static", right="analyse", status=201, store_writes=True,
           summary="A segment of uploaded ids")  # fmt: skip
def create_static(ctx: OpContext, req: CreateStatic) -> StaticSegment:
    made = profiles(ctx).static_segment(req.name, req.ids, id_kind=req.id_kind, description=req.description)
    return StaticSegment.model_validate(made)


class FromAnalysis(ProjectScoped):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(description="A funnel/retention/lifecycle definition with a 'people' request.")
    description: Text = ""


@operation("segments.from_analysis", "POST", "/api/v1/segments/from-analysis", right="analyse", status=201,
           store_writes=True, summary="A segment of an analysis' people (e.g. dropped)")  # fmt: skip
def create_from_analysis(ctx: OpContext, req: FromAnalysis) -> ShownSegment:
    from userloop.profile import segments

    segments.require_analysis_pii(ctx.store, ctx.info, req.definition, pii=ctx.pii)
    made = profiles(ctx).segment_from_analysis(req.name, req.definition, description=req.description)
    return ShownSegment.model_validate(made)


class FindLookalike(ProjectScoped):
    name: str = Field(min_length=1, max_length=200)
    seed: RowId = Field(description="The seed segment's id.")
    top_n: int = Field(ge=1, le=5_000_000)
    features: list[FeatureKind] = Field(default_factory=_tag_and_property)
    save: bool = True


@operation("segments.lookalike", "POST", "/api/v1/segments/lookalike", right="analyse", status=201,
           store_writes=True, summary="People most like a seed segment (top N saved)")  # fmt: skip
def lookalike(ctx: OpContext, req: FindLookalike) -> Lookalike:
    found = profiles(ctx).lookalike(req.name, req.seed, top_n=req.top_n, kinds=tuple(req.features), save=req.save)
    return Lookalike.model_validate(found)


class UpdateSegment(ProjectScoped):
    segment_id: RowId
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rule: dict[str, Any] | None = None
    description: Text | None = None
    refresh: Literal["daily", "manual"] | None = None


@operation("segments.update", "PATCH", "/api/v1/segments/{segment_id}", right="analyse", store_writes=True,
           summary="Rename, re-describe, change the rule or the refresh")  # fmt: skip
def update_segment(ctx: OpContext, req: UpdateSegment) -> ShownSegment:
    from userloop.profile import segments

    if req.rule is not None:
        segments.require_rule_pii(ctx.store, ctx.ws.meta, ctx.info, req.rule, pii=ctx.pii)
    changed = req.model_dump(exclude_none=True, include={"name", "rule", "description", "refresh"})
    return ShownSegment.model_validate(profiles(ctx).update_segment(req.segment_id, **changed))


@operation("segments.delete", "DELETE", "/api/v1/segments/{segment_id}", right="analyse", store_writes=True,
           summary="Delete a segment and its membership history")  # fmt: skip
def delete_segment(ctx: OpContext, req: SegmentRef) -> DeletedSegment:
    profiles(ctx).delete_segment(req.segment_id)
    return DeletedSegment(deleted=req.segment_id)


class Refresh(ProjectScoped):
    segment_id: RowId
    date: str | None = Field(default=None, max_length=10, description="Local day, YYYY-MM-DD (default: today).")


@operation("segments.refresh", "POST", "/api/v1/segments/{segment_id}/refresh", right="analyse", inputs="query",
           store_writes=True, summary="Recompute a rule segment's members now")  # fmt: skip
def refresh(ctx: OpContext, req: Refresh) -> RunDone:
    from userloop.core.clock import parse_day

    return RunDone.model_validate(profiles(ctx).refresh_segment(req.segment_id, run_date=parse_day(req.date, "date")))


# the export: a file -------------------------------------------------------------------------------------------
class ExportSegment(ProjectScoped):
    """Members with chosen fields, written to ``path`` on the machine that runs the export."""

    segment_id: RowId
    fields: list[str] = Field(description="Field names (segments.export_fields), e.g. user_id, property:city.")
    path: Path
    format: Literal["csv", "parquet"] = "csv"
    unmask: bool = False
    limit: int | None = Field(default=None, ge=1, le=50_000_000)


class Exported(Strict):
    rows: int
    bytes: int
    fields: list[str]
    masked: list[str] = Field(description="The fields written masked.")
    path: str
    format: Literal["csv", "parquet"]
    seconds: float


class Downloaded(Strict):
    """An export through the server, downloaded to ``path``."""

    path: str
    bytes: int
    fields: list[str]
    format: Literal["csv", "parquet"]


def export_segment(ctx: OpContext, req: ExportSegment) -> Exported:
    """Write a segment's members with ``fields``; phone numbers and e-mail addresses in clear only with ``unmask``
    and the ``pii`` right (``forbidden`` otherwise)."""
    require_unmask(ctx, req.unmask)
    done = profiles(ctx).export(req.segment_id, req.fields, path=req.path, fmt=req.format, unmask=req.unmask,
                                limit=req.limit)  # fmt: skip
    return Exported.model_validate(done)


def require_unmask(ctx: OpContext, unmask: bool) -> None:
    """Refuse (``forbidden``) to show personal data in clear to a caller without the ``pii`` right: asking is an
    error, so a script never mistakes masked values for real ones."""
    from userloop.core.errors import UserloopError

    if unmask and not ctx.pii:
        raise UserloopError("this token may not see phone numbers or e-mail addresses (grant 'pii' first)",
                            code="forbidden")  # fmt: skip
