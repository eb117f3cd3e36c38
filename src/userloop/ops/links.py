"""Signed links handed out by the API: the in-app inbox's per-person tokens (the business's backend asks for one
and hands it to its app, which then reads that person's inbox, ``GET /app/v1/inbox``, and nothing else), and the
URL a provider posts its delivery receipts to (``POST /t/r/{token}``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from userloop.core.clock import now_ms
from userloop.engage import tracking
from userloop.engage.secrets import SecretBox
from userloop.ops.base import MAX_ROW_ID, OpContext, ProjectScoped, Strict, operation


class InboxTokenRequest(ProjectScoped):
    person: Annotated[int, Field(ge=0, le=MAX_ROW_ID, description="The person's user id.")]
    ttl_days: Annotated[int, Field(ge=1, le=365, description="Days the token stays valid (default 30).")] = 30


class InboxToken(Strict):
    token: str = Field(description="Send as `Authorization: Bearer …` to /app/v1/inbox.")
    expires_ms: int


@operation("inbox.token", "POST", "/api/v1/inbox/tokens", right="operate",
           summary="A token that lets one person's app read that person's in-app inbox")  # fmt: skip
def inbox_token(ctx: OpContext, req: InboxTokenRequest) -> InboxToken:
    expires = now_ms() + req.ttl_days * 86_400_000
    secret = SecretBox.for_workspace(ctx.ws.path).derive("links")
    token = tracking.sign(secret, "inbox", {"p": ctx.info.id, "u": req.person}, expires)
    return InboxToken(token=token, expires_ms=expires)


class ReceiptUrlRequest(ProjectScoped):
    name: Annotated[str, Field(min_length=1, max_length=100, description="The channel.")]


class ReceiptUrl(Strict):
    url: str = Field(description="Give this to the provider as its delivery-report (status callback) URL.")


@operation("channels.receipt_url", "GET", "/api/v1/channels/{name}/receipt-url", right="admin",
           summary="The URL a channel's provider posts its delivery receipts to (signed for this channel)")  # fmt: skip
def receipt_url(ctx: OpContext, req: ReceiptUrlRequest) -> ReceiptUrl:
    from userloop.engage.channels.registry import get_channel
    from userloop.engage.settings import load

    get_channel(ctx.ws.meta, ctx.info.id, req.name)  # unknown_channel for a name the project lacks
    secret = SecretBox.for_workspace(ctx.ws.path).derive("links")
    token = tracking.sign(secret, "receipt", {"p": ctx.info.id, "c": req.name}, None)
    base = load(ctx.ws.meta, ctx.info.id).public_url.rstrip("/")
    return ReceiptUrl(url=f"{base}/t/r/{token}")
