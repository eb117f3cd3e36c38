"""Collector routes: the wire formats of the Sensors, Segment, PostHog and Mixpanel SDKs.

Each route passes the raw request to the front door (:mod:`userloop.collect.door`), which checks the write key
in the form that SDK sends it. Bodies are free-form per SDK, so the OpenAPI spec describes them loosely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request, Response

from userloop.api.deps import RuntimeDep
from userloop.collect.mixpanel import MIXPANEL
from userloop.collect.posthog import POSTHOG
from userloop.collect.segment import SEGMENT
from userloop.collect.sensors import SENSORS
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


@dataclass(frozen=True)
class Route:
    wire: WireFormat
    kind: str
    methods: tuple[str, ...]


#: path → route, for the fast path in :mod:`userloop.api.fastpath` (the same table the OpenAPI routes come from).
ROUTES: dict[str, Route] = {}


def _route(path: str, wire: WireFormat, kind: str, summary: str, methods: tuple[str, ...] = ("POST",)) -> None:
    ROUTES[path] = Route(wire, kind, methods)

    async def endpoint(rt: RuntimeDep, request: Request) -> Response:
        return await collect(rt, request, wire, kind)

    endpoint.__name__ = f"{wire.source}_{kind or 'collect'}_{path.strip('/').replace('/', '_') or 'root'}"
    for method in methods:  # one route per method: FastAPI gives a route one operation id, shared by its methods
        router.add_api_route(path, endpoint, methods=[method], summary=summary, openapi_extra=_BODY, responses=_ANSWER)


_route("/sa", SENSORS, "", "Sensors Analytics: data / data_list (base64, gzip=1)", ("GET", "POST"))
_route("/debug", SENSORS, "debug", "Sensors Analytics debug mode (the SDK's DebugConsumer posts here)")
_route("/sa/debug", SENSORS, "debug", "Sensors Analytics debug mode: validate, write nothing (Dry-Run: true)")
_route("/v1/batch", SEGMENT, "batch", "Segment: a batch of messages")
for _kind in ("track", "identify", "alias", "page", "screen", "group"):
    _route(f"/v1/{_kind}", SEGMENT, _kind, f"Segment: one {_kind} message")
for _path in ("/batch/", "/capture/", "/e/", "/i/v0/e/"):
    _route(_path, POSTHOG, "", "PostHog: events (api_key in the body; gzip accepted)")
_route("/track", MIXPANEL, "track", "Mixpanel: events (form data=…)", ("GET", "POST"))
_route("/import", MIXPANEL, "import", "Mixpanel: historical events")
_route("/engage", MIXPANEL, "engage", "Mixpanel: profile updates", ("GET", "POST"))
