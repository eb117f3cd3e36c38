"""The native collector: ``POST /api/v1/events:batch`` takes Sensors records as JSON."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, HTTPException, Request, Response

from userloop.api.deps import RuntimeDep, caller_for, require
from userloop.collect.native import NATIVE
from userloop.collect.wire import RawRequest
from userloop.core.ids import ADMIN_TOKEN_PREFIX

router = APIRouter(prefix="/api/v1", tags=["events"])
_BODY = {
    "requestBody": {
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
        "description": "Sensors-format records: type, event, distinct_id, time (epoch ms), properties…",
    }
}


@router.post("/events:batch", openapi_extra=_BODY, summary="Send Sensors-format records (write key or API token)")
async def events_batch(rt: RuntimeDep, request: Request, dry_run: bool = False) -> Response:
    """Records are acknowledged once durable; ``rejected`` lists refused ones with their reasons.

    Authorise with a project write key as Bearer token, or an API token holding ``write`` and ``?project=``.
    """
    raw = RawRequest(await request.body(), dict(request.headers), dict(request.query_params), "dry" if dry_run else "")
    admin_project = None
    if raw.bearer and raw.bearer.startswith(ADMIN_TOKEN_PREFIX):
        caller = require("write")(caller_for(request, rt, raw.bearer))
        admin_project = raw.query.get("project", "default")
        caller.check_project(admin_project)
        if rt.ws.meta.project(admin_project) is None:
            raise HTTPException(404, f"no project named {admin_project!r}")
    answer = await rt.door.take(NATIVE, raw, admin_project=admin_project)
    return Response(orjson.dumps(answer.body), answer.status, answer.headers, media_type="application/json")
