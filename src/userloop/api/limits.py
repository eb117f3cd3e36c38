"""HTTP-level limits: the request body size (413 before a handler reads it) and CORS preflight."""

from __future__ import annotations

import orjson
from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):  # noqa: N818 - internal signal
    pass


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413: by ``Content-Length`` up front, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _send_413(send, self.max_bytes)


async def _send_413(send: Send, limit: int) -> None:
    body = orjson.dumps({"error": {"status": 413, "message": f"request body is larger than {limit} bytes"}})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def preflight(request: Request) -> Response:
    """CORS preflight: allowed when some project lists the origin (the real request is checked per key)."""
    origin = request.headers.get("origin")
    rt = request.app.state.runtime
    if not origin or not rt.keys.any_project_allows(origin):
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers", "content-type"),
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )
