"""The collector's fast path: SDK traffic is served by a bare ASGI handler, not by FastAPI's router.

A collector request needs none of what FastAPI adds per request (dependency resolution, Request and Response
objects, validation); at SDK rates that overhead costs more than the front door's own work. This middleware
answers the collector paths listed in :data:`userloop.collect.routes.ROUTES` directly and passes every
other request on. The FastAPI routes for the same paths stay, so the OpenAPI spec documents them and a request
that reaches them (e.g. through a test client mounted without this middleware) is answered the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from userloop.collect.routes import ROUTES, Route
from userloop.collect.wire import RawRequest

if TYPE_CHECKING:
    from userloop.service.collectors import CollectorRuntime
    from userloop.service.runtime import Runtime


class CollectorFastPath:
    """ASGI middleware: serve collector paths straight through the front door."""

    def __init__(self, app: ASGIApp, runtime: Runtime | CollectorRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] not in route.methods:
            await self.app(scope, receive, send)
            return
        await self._serve(route, scope, receive, send)

    async def _serve(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        query_pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        body = b"".join(chunks)
        if scope["method"] == "GET":  # image-beacon style SDKs put the form in the query string
            body = urlencode(query_pairs).encode()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw = RawRequest(body, headers, dict(query_pairs), route.kind)
        answer = await self.runtime.door.take(route.wire, raw)
        payload = orjson.dumps(answer.body)
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
