"""The app-facing member API for check-ins and tasks, authenticated per person as the points routes are
(:mod:`userloop.api.routers.member_app`: ``Authorization: Bearer <member token>``, 401 without one, 403
``token_invalid`` for a forged, altered, expired or other kind of token). The routes act on the token's person
only; none names a person.

- ``POST /app/v1/member/check-in``: check in today (once per local day of the programme's zone; a repeat returns
  the day's check-in with ``new`` false and books nothing);
- ``GET /app/v1/member/check-ins``: the latest check-ins and the streak that still counts;
- ``GET /app/v1/member/tasks``: progress on each task in the current periods.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import RuntimeDep
from userloop.api.routers.member_app import _member
from userloop.core.clock import utcnow
from userloop.membership import engagement
from userloop.membership.engagement_types import CheckedIn, CheckIns, TaskProgress
from userloop.membership.members import Programmes, SavedProgramme
from userloop.service.runtime import Runtime
from userloop.store.meta import Project

router = APIRouter(tags=["member-app"])


def member_programme(rt: Runtime, authorization: str | None) -> tuple[SavedProgramme, int]:
    """The programme and person a member token stands for (the token is checked by the points routes' rule)."""
    ledger, person = _member(rt, authorization)
    with rt.ws.meta.session() as s:
        project = s.get(Project, ledger.programme.project_id)
    assert project is not None  # the token check found it
    return Programmes(rt.ws.meta, project).get(ledger.programme.programme_id), person


@router.post("/app/v1/member/check-in", summary="Check in today (member token); a repeat the same day books nothing")
async def member_check_in(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> CheckedIn:
    saved, person = member_programme(rt, authorization)
    secret = rt.journeys.box.derive("links")
    return await run_in_threadpool(engagement.check_in, rt.ws.meta, saved, person, utcnow(), secret=secret)


@router.get("/app/v1/member/check-ins", summary="The member's latest check-ins and streak (member token)")
def member_check_ins(
    rt: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    limit: Annotated[int, Field(ge=1, le=366)] = 31,
) -> CheckIns:
    saved, person = member_programme(rt, authorization)
    return engagement.check_ins(rt.ws.meta, saved, person, utcnow(), limit=limit)


@router.get("/app/v1/member/tasks", summary="The member's progress on each task, this period (member token)")
def member_tasks(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> list[TaskProgress]:
    saved, person = member_programme(rt, authorization)
    return engagement.task_progress(rt.ws.meta, saved, person, utcnow())
