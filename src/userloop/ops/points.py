"""Operations on members' points (:mod:`userloop.membership.ledger`): the operator API under
``/api/v1/members/{person}/points…`` (earn, spend, reverse, adjust with the ``write`` right; balance and history
with ``read``), a batch of operations across members, the expiry job's trigger, and ``members.token``: a signed
token for one member that the business's backend hands to its app, which then reaches that member's points through
``/app/v1/member/…`` (:mod:`userloop.api.routers.member_app`) and nothing else.

Every write carries the caller's ``request_id``: a retry returns the first result (``replayed`` true) and books
nothing; the same id with other content is ``points_request_conflict`` (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from userloop.core.clock import now_ms, utcnow
from userloop.membership.ledger_types import (
    MAX_BATCH,
    Adjust,
    Balance,
    BatchResult,
    Earn,
    ExpiryRun,
    HistoryPage,
    Points,
    Posted,
    RequestId,
    Reverse,
    SignedPoints,
    Spend,
    WalletName,
)
from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, Strict, operation

if TYPE_CHECKING:
    from userloop.membership.ledger import Ledger


def _ledger(ctx: OpContext, programme: int) -> Ledger:
    from userloop.membership.accounts import ledger_for

    return ledger_for(ctx.ws.meta, ctx.info, programme)


ProgrammeId = Annotated[int, Field(ge=1, le=MAX_ROW_ID, description="The programme (default 1).")]
Reason = Annotated[str | None, Field(max_length=200, description="Why, in words (shown in the history).")]
Ref = Annotated[str | None, Field(max_length=100, description="The business's reference, e.g. an order id.")]


class _Member(ProjectScoped):
    person: Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="The member's user id.")]
    programme: ProgrammeId = 1


class _Write(_Member):
    request_id: RequestId
    reason: Reason = None
    ref: Ref = None


class EarnRequest(_Write):
    wallet: WalletName = "points"
    amount: Points
    expires_at: datetime | None = Field(default=None, description="Lapse at this instant (UTC) instead of by policy.")
    pending_days: Annotated[int | None, Field(ge=0, le=3650, description="Days locked before spendable.")] = None


class SpendRequest(_Write):
    wallet: WalletName = "points"
    amount: Points


class ReverseRequest(_Write):
    transfer_id: Annotated[int, Field(ge=1, le=MAX_ROW_ID, description="The entry id of the earning or spending.")]


class AdjustRequest(_Write):
    wallet: WalletName = "points"
    amount: SignedPoints


def _post(ctx: OpContext, req: _Write, op: Earn | Spend | Reverse | Adjust) -> Posted:
    return _ledger(ctx, req.programme).post(op, utcnow())


def _fields(req: _Write) -> dict[str, Any]:
    return req.model_dump(exclude={"project", "programme"})


@operation("members.points.earn", "POST", "/api/v1/members/{person}/points/earn", right="write", status=201,
           summary="Credit a member points (a lot that lapses and unlocks by the wallet's policy)")  # fmt: skip
def earn(ctx: OpContext, req: EarnRequest) -> Posted:
    """Book an earning; a retry with the same request id returns the first result."""
    return _post(ctx, req, Earn(**_fields(req)))


@operation("members.points.spend", "POST", "/api/v1/members/{person}/points/spend", right="write", status=201,
           summary="Spend a member's points (earliest-expiring first); 409 beyond the spendable balance")  # fmt: skip
def spend(ctx: OpContext, req: SpendRequest) -> Posted:
    """Book a spending, earliest-expiring lots first; ``points_insufficient`` beyond the spendable balance."""
    return _post(ctx, req, Spend(**_fields(req)))


@operation("members.points.reverse", "POST", "/api/v1/members/{person}/points/reverse", right="write", status=201,
           summary="Reverse an earning or a spending by its entry id")  # fmt: skip
def reverse(ctx: OpContext, req: ReverseRequest) -> Posted:
    """Undo an earning (what remains of its lot; ``shortfall`` says what was spent already) or a spending (the
    lots get their points back, or a new lot for those lapsed since)."""
    return _post(ctx, req, Reverse(**_fields(req)))


@operation("members.points.adjust", "POST", "/api/v1/members/{person}/points/adjust", right="write", status=201,
           summary="An operator's correction: credit (> 0) or debit (< 0) a member's points")  # fmt: skip
def adjust(ctx: OpContext, req: AdjustRequest) -> Posted:
    """Credit a new lot (spendable at once) or debit like a spending."""
    return _post(ctx, req, Adjust(**_fields(req)))


class BalanceRequest(_Member):
    wallet: WalletName = "points"
    soon_days: Annotated[int, Field(ge=0, le=3650, description="The window of 'expiring soon', in days.")] = 30


@operation("members.points.balance", "GET", "/api/v1/members/{person}/points/balance", right="read",
           summary="A member's spendable and pending points, and what lapses soon by day")  # fmt: skip
def balance(ctx: OpContext, req: BalanceRequest) -> Balance:
    """The balance now; lots past their expiry count as gone even before the job sweeps them."""
    return _ledger(ctx, req.programme).balance(req.person, req.wallet, utcnow(),
                                                                    soon_days=req.soon_days)  # fmt: skip


class HistoryRequest(_Member):
    wallet: WalletName | None = None
    before: Annotated[int | None, Field(ge=1, le=MAX_ROW_ID, description="The previous page's next_before.")] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


@operation("members.points.history", "GET", "/api/v1/members/{person}/points/history", right="read",
           summary="A member's ledger entries, newest first, paged")  # fmt: skip
def history(ctx: OpContext, req: HistoryRequest) -> HistoryPage:
    """Entries newest first; pass ``next_before`` as ``before`` for the next page."""
    ledger = _ledger(ctx, req.programme)
    return ledger.history(req.person, req.wallet, before=req.before, limit=req.limit)


class BatchRequest(ProjectScoped):
    programme: ProgrammeId = 1
    operations: Annotated[
        list[dict[str, Any]],
        Field(min_length=1, max_length=MAX_BATCH, description='Each {"op": "earn"|"spend"|"reverse"|"adjust", …}.'),
    ]


@operation("members.points.batch", "POST", "/api/v1/members/points/batch", right="write",
           summary="Many points operations at once, each booked or rejected on its own")  # fmt: skip
def batch(ctx: OpContext, req: BatchRequest) -> BatchResult:
    """Book each operation on its own, idempotent by its request id; rejects name their index and field."""
    return _ledger(ctx, req.programme).batch(req.operations, utcnow())


class ExpireRequest(ProjectScoped):
    programme: ProgrammeId = 1


@operation("members.points.expire", "POST", "/api/v1/members/points/expire", right="write",
           summary="Run the points expiry job now (safe to repeat)")  # fmt: skip
def expire(ctx: OpContext, req: ExpireRequest) -> ExpiryRun:
    """Lapse every lot past its expiry, one transaction per member; a repeat finds nothing left to do."""
    return _ledger(ctx, req.programme).expire(utcnow())


class MemberTokenRequest(_Member):
    ttl_days: Annotated[int, Field(ge=1, le=365, description="Days the token stays valid (default 30).")] = 30


class MemberToken(Strict):
    token: str = Field(description="Send as `Authorization: Bearer …` to /app/v1/member/….")
    expires_ms: int


@operation("members.token", "POST", "/api/v1/members/{person}/token", right="admin",
           summary="A token that lets one member's app read and spend that member's points")  # fmt: skip
def member_token(ctx: OpContext, req: MemberTokenRequest) -> MemberToken:
    from userloop.engage import tracking
    from userloop.engage.secrets import SecretBox

    expires = now_ms() + req.ttl_days * 86_400_000
    secret = SecretBox.for_workspace(ctx.ws.path).derive("links")
    claims = {"p": ctx.info.id, "g": req.programme, "u": req.person}
    return MemberToken(token=tracking.sign(secret, "member", claims, expires), expires_ms=expires)
