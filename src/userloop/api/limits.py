"""HTTP-level limits: the URL's length (414), the request body size (413 before a handler reads it), requests per
client address and per key (429 with ``Retry-After``), failed authentications per address, and CORS preflight
(collector only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userloop.api.errors import json_error, send_error
from userloop.collect.keys import ALLOWED_HEADERS
from userloop.collect.routes import NATIVE_PATHS, ROUTES, is_collector

if TYPE_CHECKING:
    from userloop.service.collectors import CollectorRuntime
    from userloop.service.runtime import Runtime


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ClientLimit:
    """429 with ``Retry-After`` when a client address sends more than its share of requests.

    Every route counts (health, unauthenticated requests, failed ones) except the collector's, which are limited
    per project in records by the front door and must take SDK traffic from shared addresses (NAT, proxies).
    """

    def __init__(self, app: ASGIApp, runtime: Runtime | CollectorRuntime) -> None:
        self.app = app
        self.runtime = runtime
        self.exempt = frozenset(ROUTES) | NATIVE_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.exempt:
            wait = self.runtime.guards.addresses.take(("address", client_address(scope)))
            if wait:
                message = "too many requests from this address; retry later"
                await send_error(send, "rate_limited", message, retry_after=wait)
                return
        await self.app(scope, receive, send)


#: The longest URL (path and query string, in bytes) the service takes; a longer one is answered 414 (RFC 9110
#: §15.5.15). RFC 9110 §4.1 asks for at least 8,000; this stays under 65,535, the ceiling of httptools' URL parser
#: (16-bit offsets), so that the server can cut an over-long URL and still hand it on (:mod:`userloop.api.protocol`).
MAX_URL_BYTES = 64_000


def url_length(scope: Scope) -> int:
    """The bytes of the request's target: its raw path, and its query string with the ``?``."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    return len(raw_path) + (len(query) + 1 if query else 0)


class UrlLimit:
    """Refuse a URL longer than ``max_bytes`` with 414 (the error body, as every other answer), before routing."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_URL_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and url_length(scope) > self.max_bytes:
            message = f"the URL is longer than {self.max_bytes} bytes"
            await send_error(send, "uri_too_long", message)
            return
        await self.app(scope, receive, send)


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
    await send_error(send, "too_large", f"request body is larger than {limit} bytes")


async def preflight(request: Request) -> Response:
    """CORS preflight, for collector routes only: allowed when some project lists the exact origin (the real
    request is checked against its key's project). Management routes never answer with CORS headers; allowed
    request headers are a fixed list, never an echo of what was asked."""
    origin = request.headers.get("origin")
    rt = request.app.state.runtime
    collector = is_collector(request.url.path)
    if not collector or not origin or not rt.keys.any_project_allows(origin):
        return json_error("forbidden", "cross-origin requests are allowed on collector paths, from the origins "
                          "a project lists (its cors_origins setting), only")  # fmt: skip
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )
