"""The in-app inbox's credentials: the business's backend asks for a token per person and hands it to its app,
which then reads that person's inbox (``GET /app/v1/inbox``) and marks messages read, and nothing else."""

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


@operation("inbox.token", "POST", "/api/v1/inbox/tokens", right="admin",
           summary="A token that lets one person's app read that person's in-app inbox")  # fmt: skip
def inbox_token(ctx: OpContext, req: InboxTokenRequest) -> InboxToken:
    expires = now_ms() + req.ttl_days * 86_400_000
    secret = SecretBox.for_workspace(ctx.ws.path).derive("links")
    token = tracking.sign(secret, "inbox", {"p": ctx.info.id, "u": req.person}, expires)
    return InboxToken(token=token, expires_ms=expires)
