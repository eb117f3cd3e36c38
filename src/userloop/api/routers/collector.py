"""Collector routes: the wire formats of the Sensors, Segment, PostHog and Mixpanel SDKs.

Each route passes the raw request to the front door (:mod:`userloop.collect.door`), which checks the write key
in the form that SDK sends it. Bodies are free-form per SDK, so the OpenAPI spec describes them loosely. The
paths come from :data:`userloop.collect.routes.ROUTES`, the table the fast path serves them from.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request, Response

from userloop.api.deps import RuntimeDep
from userloop.collect.routes import ROUTES, Route
from userloop.collect.wire import RawRequest, WireFormat

router = APIRouter(tags=["collector"])
_BODY = {"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "Records taken; `rejected` lists refused ones with reasons."}
}


async def collect(rt: RuntimeDep, request: Request, wire: WireFormat, kind: str = "") -> Response:
    body = await request.body()
    if request.method == "GET":  # image-beacon style SDKs put the form in the query string
        body = urlencode(list(request.query_params.multi_items())).encode()
    raw = RawRequest(body, dict(request.headers), dict(request.query_params), kind)
    answer = await rt.door.take(wire, raw)
    return Response(orjson.dumps(answer.body), answer.status, answer.headers, media_type="application/json")


def _add(path: str, route: Route) -> None:
    async def endpoint(rt: RuntimeDep, request: Request) -> Response:
        return await collect(rt, request, route.wire, route.kind)

    endpoint.__name__ = f"{route.wire.source}_{route.kind or 'collect'}_{path.strip('/').replace('/', '_') or 'root'}"
    for method in route.methods:  # one route per method: FastAPI gives a route one operation id, shared by them
        router.add_api_route(
            path, endpoint, methods=[method], summary=route.summary, openapi_extra=_BODY, responses=_ANSWER
        )


for _path, _route in ROUTES.items():
    _add(_path, _route)
