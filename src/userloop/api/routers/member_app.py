"""The app-facing member API: one person's points, authenticated per person, not with an admin token.

Each route takes ``Authorization: Bearer <member token>``: a token of kind ``member`` signed by the workspace
(:mod:`userloop.engage.tracking`) for one (project, programme, person), which the business's backend asks for with
the ``members.token`` operation (``POST /api/v1/members/{person}/token``) and hands to its app. The routes act on
the token's person only; no route names a person, so a token cannot reach anyone else's points. No token is 401;
a forged, altered, expired or other kind of token is 403 ``token_invalid``, checked before any body is read.

- ``GET /app/v1/member/balance``: spendable, pending, expiring soon by day;
- ``GET /app/v1/member/points``: the ledger history, newest first, paged;
- ``POST /app/v1/member/points/spend``: spend the member's own points with a request id (a retry returns the
  first result).
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from userloop.api.deps import RuntimeDep
from userloop.core.clock import now_ms, utcnow
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.engage import tracking
from userloop.membership.accounts import ledger_for
from userloop.membership.ledger import Ledger
from userloop.membership.ledger_types import Balance, HistoryPage, Points, Posted, RequestId, Spend, WalletName
from userloop.service.runtime import Runtime
from userloop.store.meta import Project

Body = TypeVar("Body", bound=BaseModel)
router = APIRouter(tags=["member-app"])


class SpendOwn(BaseModel):
    """A member spends their own points."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    wallet: WalletName = "points"
    amount: Points
    request_id: RequestId
    reason: Annotated[str | None, Field(max_length=200)] = None
    ref: Annotated[str | None, Field(max_length=100)] = None


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as ``model``, read only once the caller is known (``invalid_request`` naming the
    field otherwise)."""
    try:
        return model.model_validate_json(await request.body())
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationError(f"body: {first['msg']}", code="invalid_request", field=where) from None


def _member(rt: Runtime, authorization: str | None) -> tuple[Ledger, int]:
    """The ledger and person a member token stands for; 401 without one, 403 for a bad one."""
    if not authorization or not authorization.startswith("Bearer "):
        raise UserloopError("send Authorization: Bearer <member token>", code="unauthorized")
    token = authorization.removeprefix("Bearer ").strip()
    claims = tracking.verify(rt.journeys.box.derive("links"), token, "member", now_ms())
    with rt.ws.meta.session() as s:
        project = s.get(Project, int(claims["p"]))
    if project is None:
        raise NotFoundError("the member token's project no longer exists")
    return ledger_for(rt.ws.meta, project, int(claims["g"])), int(claims["u"])


@router.get("/app/v1/member/balance", summary="The member's points: spendable, pending, expiring soon (member token)")
def member_balance(
    rt: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    wallet: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] = "points",
) -> Balance:
    ledger, person = _member(rt, authorization)
    return ledger.balance(person, wallet, utcnow())


@router.get("/app/v1/member/points", summary="The member's points history, newest first (member token)")
def member_points(
    rt: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    wallet: Annotated[str | None, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    before: Annotated[int | None, Field(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 50,
) -> HistoryPage:
    ledger, person = _member(rt, authorization)
    return ledger.history(person, wallet, before=before, limit=limit)


@router.post(
    "/app/v1/member/points/spend",
    status_code=201,
    summary="Spend the member's own points (member token); a retry with the same request id books nothing",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": SpendOwn.model_json_schema()}}}},
)
async def member_spend(
    request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> Posted:
    # credentials first: no body is read for a stranger; in the thread pool, as the lookup reads the database
    ledger, person = await run_in_threadpool(_member, rt, authorization)
    body = await read_body(request, SpendOwn)
    op = Spend(person=person, **body.model_dump())
    return await run_in_threadpool(ledger.post, op, utcnow())
