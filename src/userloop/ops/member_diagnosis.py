"""The member diagnosis (会员诊断) as an operation: one programme's levels, flows, growth sources, points liability,
benefit use and members vs non-members, with findings in Chinese and English
(:mod:`userloop.membership.diagnosis`). Reading needs ``read``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from userloop.core.clock import utcnow
from userloop.membership.diagnosis_types import Diagnosis, Months
from userloop.ops.base import OpContext, ProjectScoped, operation

EventName = Annotated[str, Field(min_length=1, max_length=100)]


class DiagnosisRequest(ProjectScoped):
    name: Annotated[str, Field(min_length=1, max_length=100, description="The programme's name or id.")]
    months: Months = Field(default=12, description="Calendar months of the programme's zone to look back over.")
    purchase_event: EventName = Field(default="order_paid", description="The event that is an order.")
    coupon_property: EventName = Field(
        default="coupon_code", description="The order's text property holding a granted coupon's code."
    )
    as_of: datetime | None = Field(default=None, description="The instant diagnosed (default now); UTC if no zone.")


@operation("members.diagnosis", "GET", "/api/v1/programmes/{name}/diagnosis", right="read",
           summary="A member programme's diagnosis: levels and flows, growth sources, points liability and "
           "breakage, benefit use by level, members vs non-members")  # fmt: skip
def diagnosis(ctx: OpContext, req: DiagnosisRequest) -> Diagnosis:
    from userloop.membership.diagnosis import diagnose
    from userloop.membership.diagnosis_report import explain
    from userloop.membership.members import Programmes

    programme = Programmes(ctx.ws.meta, ctx.info).get(req.name)
    as_of = utcnow() if req.as_of is None else _naive_utc(req.as_of)
    found = diagnose(ctx.ws.meta, ctx.store, programme, as_of, project_timezone=ctx.info.timezone,
                     months=req.months, purchase_event=req.purchase_event,
                     coupon_property=req.coupon_property)  # fmt: skip
    return explain(found)


def _naive_utc(at: datetime) -> datetime:
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)
