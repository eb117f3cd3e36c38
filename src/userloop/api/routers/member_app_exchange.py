"""The app-facing member API for the member's level and the points exchange, authenticated per person as the
points routes are (:mod:`userloop.api.routers.member_app`: ``Authorization: Bearer <member token>``). None names
a person: each acts on the token's.

- ``GET /app/v1/member``: the member's level (names in Chinese and English), the qualifying growth value, and
  what the next level needs;
- ``GET /app/v1/member/exchange``: the items of the points exchange (积分兑换), with their price and whether the
  member's level allows each;
- ``POST /app/v1/member/exchange``: redeem an item with a request id (a retry returns the first coupon and spends
  nothing more; see :mod:`userloop.membership.exchange`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import RuntimeDep
from userloop.api.routers.member_app import read_body
from userloop.api.routers.member_app_engagement import member_programme
from userloop.core.clock import utcnow
from userloop.membership import exchange
from userloop.membership.exchange_types import ExchangeRequestId, Redeemed
from userloop.membership.members import get_member
from userloop.ops.base import OpContext
from userloop.ops.members import MemberShown, shown

router = APIRouter(tags=["member-app"])


class Item(BaseModel):
    name: str
    title_zh: str
    title_en: str
    benefit: str
    points: int
    wallet: str
    min_level: int
    allowed: bool = Field(description="Whether the member's level allows it now.")


class Redeem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: Annotated[str, Field(min_length=1, max_length=40)]
    request_id: ExchangeRequestId


@router.get("/app/v1/member", summary="The member's level and progress to the next (member token)")
def member_level(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> MemberShown:
    saved, person = member_programme(rt, authorization)
    return shown(OpContext(ws=rt.ws), saved, get_member(rt.ws.meta, saved, person))


@router.get("/app/v1/member/exchange", summary="The points exchange's items (member token)")
def member_exchange(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> list[Item]:
    saved, person = member_programme(rt, authorization)
    level = get_member(rt.ws.meta, saved, person).level
    return [Item(name=x.name, title_zh=x.title.zh, title_en=x.title.en, benefit=x.benefit, points=x.points,
                 wallet=x.wallet, min_level=x.min_level, allowed=level >= x.min_level)
            for x in saved.definition.exchange]  # fmt: skip


@router.post(
    "/app/v1/member/exchange",
    summary="Redeem points for an item of the exchange (member token)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": Redeem.model_json_schema()}}}},
)
async def member_redeem(
    request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Redeemed:
    # credentials first: no body is read for a stranger (the lookup reads the database: in the thread pool)
    saved, person = await run_in_threadpool(member_programme, rt, authorization)
    body = await read_body(request, Redeem)
    secret = rt.journeys.box.derive("links")
    return await run_in_threadpool(exchange.redeem, rt.ws.meta, saved, person, body.item, body.request_id,
                                   utcnow(), secret=secret)  # fmt: skip
