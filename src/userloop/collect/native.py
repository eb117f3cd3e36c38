"""The native format: ``POST /api/v1/events:batch`` with Sensors records as JSON.

The body is a JSON array of records, or ``{"records": [...]}``; the key is a write key as a Bearer token
(an admin token with ``?project=`` works too).
"""

from __future__ import annotations

from typing import Any

from userloop.collect import sensors
from userloop.collect.payload import PayloadError, maybe_gunzip, parse_json
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat


def decode(raw: RawRequest, max_bytes: int) -> Decoded:
    doc = parse_json(maybe_gunzip(raw.body, max_bytes, encoding=raw.headers.get("content-encoding")))
    if isinstance(doc, dict):
        doc = doc.get("records")
    if not isinstance(doc, list):
        raise PayloadError('body must be a JSON array of records or {"records": [...]}', raw.body)
    return Decoded(key=raw.bearer, messages=doc, project=raw.query.get("project"), dry_run=raw.kind == "dry")


def reply(receipt: Receipt) -> tuple[int, dict[str, Any]]:
    return 200, {
        "request_id": receipt.request_id,
        "received": receipt.received,
        "accepted": receipt.accepted,
        "rejected": receipt.rejected(),
        "dry_run": receipt.dry_run,
    }


NATIVE = WireFormat("native", decode, sensors.to_intake, reply, sensors.error_reply)
