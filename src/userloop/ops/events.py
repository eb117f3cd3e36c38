"""The event registry: every event name a project has seen, and whether it is active or passive.

An active event is something a person did; a passive one was sent to them (a push or a coupon received, a
delivery event of a journey). Everything called "active" counts active events only (see
:mod:`userloop.schema.activity`, which also holds the defaults of new names).
"""

from __future__ import annotations

from pydantic import Field

from userloop.core.errors import UserloopError
from userloop.ops.base import OpContext, ProjectScoped, Strict, operation


class EventOut(Strict):
    event: str
    active: bool = Field(
        description="True: something a person does; false: passive, sent to the person (a push or coupon "
        "received), left out of DAU, `$any`, retention, lifecycle and last seen."
    )
    display_zh: str | None
    display_en: str | None
    first_seen: str


class ListEvents(ProjectScoped):
    """The project whose event registry to list."""


class SetEventActive(ProjectScoped):
    event: str = Field(max_length=100, description="The event name, as registered.")
    active: bool = Field(description="True: active (a person's own action); false: passive (sent to the person).")


class EventFlagChanged(EventOut):
    changed: bool = Field(description="Whether the flag changed (false: it already had this value).")
    data_version: int = Field(description="The project's data version after the change (cached results before it "
                              "are not reused).")  # fmt: skip


@operation("events.list", "GET", "/api/v1/event-names", right="read",
           summary="List a project's event names, each active or passive")  # fmt: skip
def list_events(ctx: OpContext, req: ListEvents) -> list[EventOut]:
    return [EventOut.model_validate(r) for r in ctx.store.event_rows()]


@operation("events.set_active", "PUT", "/api/v1/event-names/{event}", right="admin", store_writes=True,
           summary="Mark an event active (a person's action) or passive (sent to the person)")  # fmt: skip
def set_event_active(ctx: OpContext, req: SetEventActive) -> EventFlagChanged:
    store = ctx.store
    changed = store.set_event_active(req.event, req.active)
    if changed is None:
        raise UserloopError(
            f"the project {ctx.info.name!r} has no event {req.event!r}",
            code="unknown_event",
            field="event",
        )
    row = next(r for r in store.event_rows() if r["event"] == req.event)
    if changed and ctx.cache is not None:
        ctx.cache.clear()
    return EventFlagChanged.model_validate({**row, "changed": changed, "data_version": store.data_version()})
