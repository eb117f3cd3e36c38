"""Operations on members' check-ins and tasks (:mod:`userloop.membership.engagement`).

The operator API: ``GET``/``POST /api/v1/members/{person}/check-ins`` (a member's check-ins and streak; check in
on the member's behalf, e.g. relayed by the business's backend) and ``GET /api/v1/members/{person}/tasks``
(progress in the current periods). Tasks are counted and rewards booked by the membership pass
(``membership.pass``, which the service repeats on its own). The member's own app reaches the same through
``/app/v1/member/…`` with a member token (:mod:`userloop.api.routers.member_app_engagement`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from userloop.core.clock import utcnow
from userloop.membership.engagement_types import CheckedIn, CheckIns, TaskProgress
from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, operation

if TYPE_CHECKING:
    from userloop.membership.members import SavedProgramme

ProgrammeId = Annotated[int, Field(ge=1, le=MAX_ROW_ID, description="The programme (default 1).")]


class _Member(ProjectScoped):
    person: Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="The member's user id.")]
    programme: ProgrammeId = 1


class CheckInsRequest(_Member):
    limit: Annotated[int, Field(ge=1, le=366, description="How many of the latest check-ins (default 31).")] = 31


def programme_of(ctx: OpContext, programme: int) -> SavedProgramme:
    """The request's programme in the request's project (``unknown_programme`` otherwise)."""
    from userloop.membership.members import Programmes

    return Programmes(ctx.ws.meta, ctx.info).get(programme)


def coupon_secret(ctx: OpContext) -> bytes:
    """The secret coupon codes are derived with, the one the journeys' grants use."""
    from userloop.engage.secrets import SecretBox

    return SecretBox.for_workspace(ctx.ws.path).derive("links")


@operation("members.check_ins", "GET", "/api/v1/members/{person}/check-ins", right="read",
           summary="A member's latest check-ins and the streak that still counts")  # fmt: skip
def check_ins(ctx: OpContext, req: CheckInsRequest) -> CheckIns:
    """Newest first; ``streak`` is 0 once a local day was missed."""
    from userloop.membership import engagement

    return engagement.check_ins(ctx.ws.meta, programme_of(ctx, req.programme), req.person, utcnow(), limit=req.limit)


@operation("members.check_in", "POST", "/api/v1/members/{person}/check-ins", right="write",
           summary="Check a member in today (once per local day; a repeat returns the day's check-in)")  # fmt: skip
def check_in(ctx: OpContext, req: _Member) -> CheckedIn:
    """Check in now, in the programme's zone; the streak and its rewards are booked exactly once."""
    from userloop.membership import engagement

    saved = programme_of(ctx, req.programme)
    return engagement.check_in(ctx.ws.meta, saved, req.person, utcnow(), secret=coupon_secret(ctx))


@operation("members.tasks", "GET", "/api/v1/members/{person}/tasks", right="read",
           summary="A member's progress on each task of the programme, in the current periods")  # fmt: skip
def tasks(ctx: OpContext, req: _Member) -> list[TaskProgress]:
    """Counted events, whether the task is done this period, and how many times it was done in all."""
    from userloop.membership import engagement

    return engagement.task_progress(ctx.ws.meta, programme_of(ctx, req.programme), req.person, utcnow())
