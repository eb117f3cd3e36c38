"""PostHog: ``POST /batch/``, ``/capture/``, ``/e/``, ``/i/v0/e/`` with ``api_key`` (or ``token``) in the body;
gzip bodies (header or ``compression=gzip-js``) and form ``data=`` (base64) accepted.

Mapping: an event → track (``uuid`` is the dedupe id); ``$identify`` → track_signup binding
``$anon_distinct_id`` to ``distinct_id``; ``$create_alias`` → track_signup binding ``distinct_id`` (the previous
id) to ``alias``; ``$set``/``$set_once`` (as events, or inside any event's properties) → profile_set /
profile_set_once.
"""

from __future__ import annotations

from typing import Any

from userloop.collect import mapping as m
from userloop.collect.payload import PayloadError, as_list, json_or_base64, maybe_gunzip, parse_form, parse_json
from userloop.collect.records import Intake
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat

PROFILE_KEYS = frozenset({"$set", "$set_once", "$anon_distinct_id", "token", "distinct_id", "alias"})


def decode(raw: RawRequest, max_bytes: int) -> Decoded:
    gz = raw.query.get("compression", "").startswith("gzip")
    body = maybe_gunzip(raw.body, max_bytes, encoding="gzip" if gz else raw.headers.get("content-encoding"))
    if raw.content_type == "application/x-www-form-urlencoded" and body.lstrip()[:1] not in (b"{", b"["):
        form = parse_form(body)
        if "data" not in form:
            raise PayloadError("the form has no data field", body)
        doc: Any = json_or_base64(form["data"], max_bytes)
    else:
        doc = parse_json(body)
    if isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        messages, outer = doc["batch"], doc
    else:
        messages, outer = as_list(doc), doc if isinstance(doc, dict) else {}
    return Decoded(key=_key(outer, messages), messages=messages)


def _key(outer: dict[str, Any], messages: list[Any]) -> str | None:
    for doc in (outer, *(msg for msg in messages if isinstance(msg, dict))):
        for name in ("api_key", "token"):
            if isinstance(doc.get(name), str):
                return str(doc[name])
        props = doc.get("properties")
        if isinstance(props, dict) and isinstance(props.get("token"), str):
            return str(props["token"])
    return None


def to_intake(decoded: Decoded, now_ms: int) -> Intake:
    intake = Intake()
    for index, message in enumerate(decoded.messages):
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            intake.refuse(index, "event", "each message needs an event name", message)
            continue
        for record in _records(message, now_ms):
            intake.add(index, record)
    return intake


def _records(msg: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    props: dict[str, Any] = msg["properties"] if isinstance(msg.get("properties"), dict) else {}
    who = m.id_text(msg.get("distinct_id")) or m.id_text(props.get("distinct_id"))
    when = m.iso_ms(msg.get("timestamp"), now_ms)
    uid = m.id_text(msg.get("uuid"))
    event = msg["event"]
    records: list[dict[str, Any]] = []
    if event == "$identify":
        anon = m.id_text(props.get("$anon_distinct_id"))
        if anon and anon != who:
            records.append(m.signup(who, anon, when, event_id=uid))
    elif event == "$create_alias":
        records.append(m.signup(m.id_text(props.get("alias")), who, when, event_id=uid))
    elif event not in ("$set", "$set_once"):
        records.append(m.track(event, who, when, m.flatten(props, skip=PROFILE_KEYS), event_id=uid))
    for op in ("$set", "$set_once"):
        values = msg.get(op) if isinstance(msg.get(op), dict) else props.get(op)
        if isinstance(values, dict) and values:
            rid = f"{uid}:{op}" if uid else None
            records.append(m.profile(op.replace("$", "profile_"), who, when, m.flatten(values), event_id=rid))
    return records


def reply(receipt: Receipt) -> tuple[int, dict[str, Any]]:
    return 200, {"status": 1, "accepted": receipt.accepted, "rejected": receipt.rejected()}


def error_reply(status: int, reason: str) -> dict[str, Any]:
    return {"type": "validation_error" if status < 500 else "server_error", "code": str(status), "detail": reason}


POSTHOG = WireFormat("posthog", decode, to_intake, reply, error_reply)
