"""Request and response bodies of the management API (pydantic, ``extra="forbid"``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from userloop.core.errors import CODES

#: The largest row id the stores hold (SQLite INTEGER and DuckDB BIGINT are signed 64-bit); a larger number in a
#: path or body can name nothing, and reaching the database with it raises OverflowError (a 500) instead of a 4xx.
MAX_ROW_ID = 2**63 - 1
#: A row id in a path (``/insights/{insight_id}``, ``/keys/{key_id}``): checked before it reaches a store.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class Strict(BaseModel):
    """Request bodies: unknown fields are refused; so are NaN and ±Infinity, which Python's JSON parser accepts
    but no setting (a rate, a timeout) can mean."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: The registered error codes, as the OpenAPI enum of ``error.code``.
_CODE_ENUM: list[JsonValue] = [*sorted(CODES)]


class ErrorDetail(BaseModel):
    """What went wrong: a registered code (see :data:`userloop.core.errors.CODES`), a message for people, the
    input at fault and what to do, when known."""

    code: str = Field(
        description="Stable; scripts react to it. One of the registered codes.",
        json_schema_extra={"enum": _CODE_ENUM},
    )
    message: str = Field(description="What went wrong and, where it can, what to do about it.")
    field: str | None = Field(default=None, description="The input at fault, dotted (`definition.steps.0`).")
    hint: str | None = Field(default=None, description="What to do about it.")


class ErrorOut(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


def _error_response(status: int, text: str) -> dict[str, Any]:
    codes = ", ".join(f"`{c}`" for c, entry in sorted(CODES.items()) if entry.status == status)
    return {"model": ErrorOut, "description": f"{text}; `error.code` is one of: {codes}" if codes else text}


#: The error answers every management route may give, for the OpenAPI spec (``include_router(responses=…)``);
#: each lists the codes registered with its status. Declaring 422 here replaces FastAPI's own 422 schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _error_response(status, text)
    for status, text in (
        (400, "The request breaks a rule"),
        (401, "No API token, or not a valid one"),
        (403, "The token may not do this"),
        (404, "No such project or resource"),
        (409, "The request conflicts with the workspace's state"),
        (413, "The body is larger than the server accepts"),
        (422, "The request does not match the route's schema; `error.field` names the field"),
        (429, "Too many requests from this address or token; retry after `Retry-After` seconds"),
        (500, "The server failed; the error is in its log"),
    )
}


class ProjectIn(Strict):
    name: str = Field(max_length=40)
    timezone: str = "Asia/Shanghai"


class ProjectSettings(Strict):
    cors_origins: list[str] | None = Field(
        default=None, max_length=100, description="Exact origins (scheme://host[:port]), or ['*'] alone for any."
    )
    rate_per_second: float | None = Field(default=None, ge=0, description="Records per second for the project.")
    burst: float | None = Field(default=None, ge=1, description="Records at once (default: 2 s of the rate).")


class ProjectOut(Strict):
    name: str
    timezone: str
    created_at: datetime
    cors_origins: list[str] = []
    rate_per_second: float | None = None
    burst: float | None = None
    write_key: str | None = None  # only in the reply that creates it


Right = Literal["write", "read", "admin", "pii"]


class KeyIn(Strict):
    kind: Literal["write", "admin"] = "write"
    project: str | None = Field(
        default=None,
        max_length=40,
        description="The key's project; a write key without one is for 'default', an API token without one is "
        "for every project (only a workspace-level token can make one).",
    )
    name: str = Field(default="", max_length=100)
    rights: list[Right] | None = Field(
        default=None,
        max_length=4,
        description="An API token's rights (default read, write, admin); never more than the caller's own.",
    )


class KeyOut(Strict):
    id: int
    kind: str
    project: str | None
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    rights: list[str] = []
    service: bool = False
    secret: str | None = None  # only in the reply that creates it


class SqlIn(Strict):
    query: str = Field(max_length=100_000)
    project: str = Field(default="default", max_length=40)
    timeout: float = Field(default=60.0, gt=0, le=3600)
    limit: int = Field(default=10_000, ge=1, le=1_000_000)


class QueryIn(Strict):
    project: str = Field(default="default", max_length=40)
    definition: dict[str, Any] = Field(description="An analysis definition with its 'kind' (trends, funnel, …).")
    timeout: float = Field(default=60.0, gt=0, le=600)
    query_id: str | None = Field(
        default=None, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", description="Lets DELETE /query/{id} cancel it."
    )
    use_cache: bool = True
    explain: bool = Field(default=False, description="Also return the SQL each statement ran.")


class InsightIn(Strict):
    project: str = Field(default="default", max_length=40)
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]
    description: str = Field(default="", max_length=5000)
    dashboard: str | None = Field(default=None, max_length=100)


class InsightPatch(Strict):
    project: str = Field(default="default", max_length=40)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=5000)
    dashboard: str | None = Field(default=None, max_length=100)


class Reject(Strict):
    received_at: datetime
    source: str
    row: int | None
    field: str | None
    reason: str
    raw: str | None


class JobRunOut(Strict):
    id: int
    job: str
    project: str
    slot: str
    status: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    error: str | None
    result: Any = None


# profile platform ---------------------------------------------------------------------------------------------
FeatureKind = Literal["tag", "property", "model"]


def _tag_and_property() -> list[FeatureKind]:
    return ["tag", "property"]


class TagMaterialiseIn(Strict):
    names: list[str] | None = Field(default=None, max_length=500, description="Tags to compute (default: all enabled).")
    date: str | None = Field(default=None, description="Local day the values describe, YYYY-MM-DD (default: today).")
    full: bool = Field(default=False, description="Recompute everyone even where an incremental run would do.")


class SegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    rule: dict[str, Any]
    description: str = Field(default="", max_length=5000)
    refresh: Literal["daily", "manual"] = "daily"
    compute: bool = Field(default=True, description="Compute the members now (else at the next refresh).")


class SegmentPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rule: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=5000)
    refresh: Literal["daily", "manual"] | None = None


class RuleIn(Strict):
    rule: dict[str, Any]
    timeout: float = Field(default=30.0, gt=0, le=600)


class StaticSegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    ids: list[str] = Field(min_length=1, max_length=1_000_000)
    id_kind: Literal["user_id", "distinct_id"] = "distinct_id"
    description: str = Field(default="", max_length=5000)


class AnalysisSegmentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(description="A funnel/retention/lifecycle definition with a 'people' request.")
    description: str = Field(default="", max_length=5000)


class LookalikeIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    seed: int = Field(ge=1, le=MAX_ROW_ID, description="The seed segment's id.")
    top_n: int = Field(ge=1, le=5_000_000)
    features: list[FeatureKind] = Field(default_factory=_tag_and_property)
    save: bool = True


class CompareIn(Strict):
    a: dict[str, Any] = Field(description='{"segment": id} or {"rule": {…}}')
    b: dict[str, Any] | None = Field(default=None, description="Another group; omitted: everyone not in A.")
    features: list[FeatureKind] = Field(default_factory=_tag_and_property)
    correction: Literal["bh", "holm", "bonferroni"] = "bh"
    alpha: float = Field(default=0.05, gt=0, lt=1)
