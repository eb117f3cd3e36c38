"""Sensors Analytics: ``POST /sa?project=…&token=…`` with form fields ``data`` or ``data_list``.

``data`` holds one record and ``data_list`` a JSON array, each base64 of gzip (``gzip=1``) or of plain JSON
(``gzip=0``); plain JSON and a JSON body are accepted too. The write key comes as ``token`` (query, form field,
or the record's own ``token`` field, which the SDK fills from a ``$token`` property). ``/sa/debug`` (or the
header ``Dry-Run: true``) validates without writing.
"""

from __future__ import annotations

from typing import Any

from userloop.collect.checks import RECORD_TYPES
from userloop.collect.payload import PayloadError, as_list, json_or_base64, maybe_gunzip, parse_form, parse_json
from userloop.collect.records import Intake
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat

#: Top-level fields of a Sensors record that route it rather than describe it.
ROUTING_FIELDS = ("project", "token", "time_free", "_flush_time", "dtk")


def decode(raw: RawRequest, max_bytes: int) -> Decoded:
    body = maybe_gunzip(raw.body, max_bytes, encoding=raw.headers.get("content-encoding"))
    if raw.content_type == "application/json" or body.lstrip()[:1] in (b"{", b"["):
        messages = as_list(parse_json(body))
        form: dict[str, str] = {}
    else:
        form = parse_form(body)
        gzipped = form.get("gzip", raw.query.get("gzip", "0")) == "1"
        if "data_list" in form:
            messages = as_list(json_or_base64(form["data_list"], max_bytes, gzipped=gzipped, what="data_list"))
        elif "data" in form:
            messages = as_list(json_or_base64(form["data"], max_bytes, gzipped=gzipped, what="data"))
        else:
            raise PayloadError("the form has neither data nor data_list", body)
    key = raw.query.get("token") or form.get("token") or _record_token(messages)
    dry = raw.kind == "debug" and raw.headers.get("dry-run", "true").lower() == "true"
    return Decoded(key=key, messages=messages, project=raw.query.get("project") or form.get("project"), dry_run=dry)


def _record_token(messages: list[Any]) -> str | None:
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("token"), str):
            return str(message["token"])
    return None


def to_intake(decoded: Decoded, now_ms: int) -> Intake:
    intake = Intake()
    for index, message in enumerate(decoded.messages):
        if not isinstance(message, dict):
            intake.refuse(index, "record", "record is not a JSON object", message)
            continue
        if message.get("type") not in RECORD_TYPES:
            intake.refuse(index, "type", f"unknown record type {message.get('type')!r}", message)
            continue
        record = {k: v for k, v in message.items() if k not in ROUTING_FIELDS}
        intake.add(index, record)
    return intake


def reply(receipt: Receipt) -> tuple[int, dict[str, Any]]:
    if receipt.dry_run and receipt.refusals:
        return 400, {"code": 1, "message": receipt.refusals[0].reason, "rejected": receipt.rejected()}
    return 200, {"code": 0, "accepted": receipt.accepted, "rejected": receipt.rejected()}


def error_reply(status: int, reason: str) -> dict[str, Any]:
    return {"code": status, "message": reason}


SENSORS = WireFormat("sensors", decode, to_intake, reply, error_reply)
