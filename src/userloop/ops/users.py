"""One person (用户360) as operations: the 360 view and a page of the event timeline.

Both need ``read``. Phone numbers and e-mail addresses are masked unless the request asks for ``unmask`` *and*
the caller holds the ``pii`` right; asking without it is refused (``forbidden``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from userloop.ops.base import OpContext, ProjectScoped, Strict, operation
from userloop.ops.segments import require_unmask
from userloop.ops.tags import Aliased, Number, profiles

UserKey = Annotated[str, Field(min_length=1, max_length=255, description="A person key or any id they are known by.")]
Unmask = Annotated[bool, Field(description="Phone numbers and e-mail addresses in clear (needs the 'pii' right).")]


class Identity(Strict):
    id_type: str
    id_value: Any
    since: str | None


class Interval(Aliased):
    value: Any
    start: str = Field(alias="from")
    to: str | None
    changed_at: str


class TagValue(Strict):
    name: str
    title_zh: str
    title_en: str
    value: Any
    history: list[Interval] = Field(description="Every interval of the person's value, oldest first.")


class ModelBefore(Strict):
    run_date: str
    model_version: str
    changed: dict[str, Any] = Field(description="The previous run's values of the outputs that changed.")


class ModelView(Strict):
    model: str
    run_date: str
    model_version: str
    outputs: dict[str, Any]
    previous: ModelBefore | None


class Membership(Strict):
    entered: str
    left: str | None


class SegmentMembership(Strict):
    id: int
    name: str
    member: bool
    intervals: list[Membership]


class Order(Strict):
    event_id: str
    time: str | None
    properties: dict[str, Any]


class Orders(Strict):
    event: str
    count: int
    amount: Number | None
    items: list[Order]


class Activity(Strict):
    events: int
    by_event: dict[str, int]
    active_days: int = Field(
        description="Local days with an active event (passive events, such as a push "
        "received, do not make a day active)."
    )
    first_event: str | None
    last_event: str | None = Field(description="The latest event of any kind, passive ones included.")
    last_active: str | None = Field(None, description="The latest active event: the person's own last activity.")


class User360(Strict):
    """Everything about one person; ``profile`` holds the project's profile properties by name."""

    user_id: int
    profile: dict[str, Any]
    identities: list[Identity]
    tags: list[TagValue]
    models: list[ModelView]
    segments: list[SegmentMembership]
    orders: Orders
    summary: Activity


class UserRef(ProjectScoped):
    key: UserKey
    unmask: Unmask = False


@operation("users.get", "GET", "/api/v1/users/{key}", right="read",
           summary="User 360: profile, identities, tags with history, models, segments, orders")  # fmt: skip
def get_user(ctx: OpContext, req: UserRef) -> User360:
    require_unmask(ctx, req.unmask)
    return User360.model_validate(profiles(ctx).user(req.key, unmask=req.unmask))


class Event(Strict):
    event_id: str
    event: str
    time: str | None
    distinct_id: str
    lib: str | None
    properties: dict[str, Any]


class Timeline(Strict):
    events: list[Event] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as ?before= for the next page; None on the last one.")


class TimelinePage(ProjectScoped):
    key: UserKey
    limit: int = Field(default=50, ge=1, le=500)
    before: str | None = Field(default=None, max_length=200, description="The 'next' cursor of the previous page.")
    events: str | None = Field(default=None, max_length=2000, description="Comma-separated event names.")
    unmask: Unmask = False


@operation("users.timeline", "GET", "/api/v1/users/{key}/timeline", right="read",
           summary="A page of the person's events, newest first")  # fmt: skip
def timeline(ctx: OpContext, req: TimelinePage) -> Timeline:
    require_unmask(ctx, req.unmask)
    names = [e.strip() for e in req.events.split(",") if e.strip()] if req.events else None
    page = profiles(ctx).timeline(req.key, limit=req.limit, before=req.before, events=names, unmask=req.unmask)
    return Timeline.model_validate(page)
