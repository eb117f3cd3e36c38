"""The journeys' public links and the app-facing inbox.

Public (no credentials; each accepts only a token signed by the workspace, :mod:`userloop.engage.tracking`, and
answers 403 ``token_invalid`` to anything else):
- ``GET /t/o/{token}``: the open pixel (a 1×1 GIF); records ``$message_opened``;
- ``GET /t/c/{token}``: a tracked link; records ``$message_clicked`` and redirects (302) to the signed target;
- ``GET /t/u/{token}``: the unsubscribe page (zh-CN and English) with a confirm button; a GET never unsubscribes,
  since mail scanners open links;
- ``POST /t/u/{token}``: unsubscribes (the page's button, or a mailbox's RFC 8058 one-click POST): the person is
  opted out of the message's channel topic and ``$unsubscribed`` is recorded;
- ``POST /t/r/{token}``: a provider's delivery receipts for one channel (the URL ``channels.receipt_url`` gives),
  parsed and checked by the channel's adapter (Twilio's signature, …), recorded as ``$message_delivered`` /
  ``$message_failed``, answered with the body the provider expects.

App-facing, authenticated per person: ``GET /app/v1/inbox`` and ``POST /app/v1/inbox/read`` take
``Authorization: Bearer <inbox token>``, a token of kind ``inbox`` for one person that the business's backend
asks for with the ``inbox.token`` operation (``POST /api/v1/inbox/tokens``).
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.dialects import postgresql, sqlite

from userloop.api.deps import RuntimeDep
from userloop.core.clock import now_ms, utcnow
from userloop.core.errors import UserloopError, ValidationError
from userloop.engage import tracking
from userloop.engage.channels.inbox import InboxPage, inbox_page, mark_read
from userloop.engage.channels.registry import ChannelBook
from userloop.engage.report import record_receipts
from userloop.engage.tables import FeedbackRow, SubscriptionRow
from userloop.service.runtime import Runtime

router = APIRouter(tags=["engage-public"])
#: The pages' 200 answer, documented as HTML; errors stay the one JSON body every route documents.
_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}, "description": "An HTML page."}}
Token = Annotated[str, Field(max_length=tracking.MAX_TOKEN_CHARS)]


class ReadKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=500)


class Marked(BaseModel):
    marked: int
    unread: int


def _claims(rt: Runtime, token: str, kind: tracking.Kind) -> dict[str, str | int]:
    return tracking.verify(rt.journeys.box.derive("links"), token, kind, now_ms())


def _feedback(rt: Runtime, claims: dict[str, str | int], event: str, **props: Any) -> None:
    with rt.ws.meta.session.begin() as s:
        s.add(
            FeedbackRow(
                project_id=int(claims["p"]),
                key=str(claims["k"]),
                person=int(claims["u"]),
                event=event,
                at=utcnow(),
                props=json.dumps({"channel": claims.get("c"), **props}, ensure_ascii=False),
            )
        )


@router.get(
    "/t/o/{token}",
    responses={200: {"content": {"image/gif": {}}, "description": "A 1×1 transparent GIF."}},
    summary="Open pixel of a message (signed link; no credentials)",
)
def opened(token: Token, rt: RuntimeDep) -> Response:
    claims = _claims(rt, token, "open")
    _feedback(rt, claims, "$message_opened")
    return Response(tracking.PIXEL, media_type=tracking.PIXEL_CONTENT_TYPE, headers={"Cache-Control": "no-store"})


@router.get("/t/c/{token}", summary="Tracked link of a message: records the click, redirects (signed link)")
def clicked(token: Token, rt: RuntimeDep) -> RedirectResponse:
    claims = _claims(rt, token, "click")
    target = tracking.click_target(claims.get("url"))
    _feedback(rt, claims, "$message_clicked", url=target)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/t/u/{token}", responses=_HTML, summary="Unsubscribe page (signed link)")
def unsubscribe_page(token: Token, rt: RuntimeDep) -> HTMLResponse:
    _claims(rt, token, "unsubscribe")
    action = html.escape(f"/t/u/{token}", quote=True)
    return HTMLResponse(
        _PAGE.format(
            body=f'<form method="post" action="{action}"><input type="hidden" name="List-Unsubscribe" '
            'value="One-Click"><p>确定不再接收此类消息？<br>Stop receiving these messages?</p>'
            '<button type="submit">退订 / Unsubscribe</button></form>'
        )
    )


@router.post("/t/u/{token}", responses=_HTML, summary="Unsubscribe, one click (signed link)")
async def unsubscribe(token: Token, request: Request, rt: RuntimeDep) -> HTMLResponse:
    claims = _claims(rt, token, "unsubscribe")
    await request.body()  # RFC 8058's "List-Unsubscribe=One-Click", or the page's form: either unsubscribes
    topic = str(claims.get("c") or "*")
    meta = rt.ws.meta
    dialect = postgresql if meta.engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SubscriptionRow).values(
        project_id=int(claims["p"]), person=int(claims["u"]), topic=topic, subscribed=False, at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["project_id", "person", "topic"], set_={"subscribed": False, "at": stmt.excluded.at}
    )
    with meta.engine.begin() as conn:
        conn.execute(stmt)
    _feedback(rt, claims, "$unsubscribed", topic=topic)
    return HTMLResponse(_PAGE.format(body="<p>已退订。<br>You are unsubscribed.</p>"))


@router.post("/t/r/{token}", summary="A provider's delivery receipts for one channel (signed URL)")
async def receipts(token: Token, request: Request, rt: RuntimeDep) -> Response:
    claims = _claims(rt, token, "receipt")
    project_id, name = int(claims["p"]), str(claims["c"])
    book = ChannelBook(rt.ws.meta, project_id, rt.journeys.box)
    try:
        channel = book.get(name)
        parse = getattr(channel, "receipts", None)
        if parse is None:
            raise UserloopError(f"channel {name!r} receives no delivery receipts", code="channel_invalid")
        found = parse(await request.body(), dict(request.headers))
        record_receipts(rt.ws.meta, project_id, name, found)
        ack = getattr(channel, "receipt_ack", b"")
    finally:
        book.close()
    return Response(ack, media_type="application/json" if ack else None)


def _person(rt: Runtime, authorization: str | None) -> tuple[int, int]:
    """The (project id, person) an inbox token stands for; 401 without one, 403 for a bad one."""
    if not authorization or not authorization.startswith("Bearer "):
        raise UserloopError("send Authorization: Bearer <inbox token>", code="unauthorized")
    claims = _claims(rt, authorization.removeprefix("Bearer ").strip(), "inbox")
    return int(claims["p"]), int(claims["u"])


@router.get("/app/v1/inbox", summary="A person's in-app inbox, newest first (inbox token)")
def inbox(
    rt: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
    after: Annotated[str | None, Field(max_length=200)] = None,
    limit: Annotated[int, Field(ge=1, le=200)] = 50,
) -> InboxPage:
    project_id, person = _person(rt, authorization)
    return inbox_page(rt.ws.meta, project_id, person, after=after, limit=limit)


@router.post(
    "/app/v1/inbox/read",
    summary="Mark inbox messages read (inbox token)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": ReadKeys.model_json_schema()}}}},
)
async def inbox_read(request: Request, rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Marked:
    project_id, person = _person(rt, authorization)  # credentials first: no body is read for a stranger
    try:
        body = ReadKeys.model_validate_json(await request.body())
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        raise ValidationError(
            f"body: {first['msg']}", code="invalid_request", field=".".join(str(p) for p in first["loc"]) or "body"
        ) from None
    marked = mark_read(rt.ws.meta, project_id, person, body.keys, utcnow())
    page = inbox_page(rt.ws.meta, project_id, person, limit=1)
    return Marked(marked=marked, unread=page.unread)


_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
    'content="width=device-width"><title>退订 / Unsubscribe</title></head><body>{body}</body></html>'
)
