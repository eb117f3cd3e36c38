"""Segment: ``POST /v1/batch`` and ``/v1/{track,identify,alias,page,screen,group}`` with the write key as the
basic-auth user name (or ``writeKey`` in the body); gzip bodies accepted.

Mapping: ``track`` → track; ``page`` → track ``$pageview``; ``screen`` → track ``$AppViewScreen``;
``identify`` → profile_set of the traits (plus track_signup when it binds an anonymousId to a userId);
``alias`` → track_signup (``userId`` is the login id, ``previousId`` the id it absorbs); ``group`` → profile_set
of ``$group_id`` and the group traits. ``messageId`` is the dedupe id; ``userId`` is a login id.
"""

from __future__ import annotations

from typing import Any

from userloop.collect import mapping as m
from userloop.collect.payload import PayloadError, maybe_gunzip, parse_json
from userloop.collect.records import Intake
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat

KINDS = ("track", "identify", "alias", "page", "screen", "group")


def decode(raw: RawRequest, max_bytes: int) -> Decoded:
    body = parse_json(maybe_gunzip(raw.body, max_bytes, encoding=raw.headers.get("content-encoding")))
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object", raw.body)
    if raw.kind == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise PayloadError("batch must be a JSON array of messages", raw.body, field="batch")
    else:
        messages = [{**body, "type": raw.kind}]
    key = raw.basic_user or (body.get("writeKey") if isinstance(body.get("writeKey"), str) else None)
    return Decoded(key=key, messages=messages)


def to_intake(decoded: Decoded, now_ms: int) -> Intake:
    intake = Intake()
    for index, message in enumerate(decoded.messages):
        if not isinstance(message, dict) or message.get("type") not in KINDS:
            kind = message.get("type") if isinstance(message, dict) else None
            intake.refuse(index, "type", f"unknown message type {kind!r}; expected one of {', '.join(KINDS)}", message)
            continue
        for record in _records(message, now_ms):
            intake.add(index, record)
    return intake


def _records(msg: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    user, anon = m.id_text(msg.get("userId")), m.id_text(msg.get("anonymousId"))
    who = user or anon
    login = {"$is_login_id": True} if user else {}
    when = m.iso_ms(msg.get("timestamp") or msg.get("originalTimestamp"), now_ms)
    mid = m.id_text(msg.get("messageId"))
    lib = _lib(msg)
    kind = msg["type"]
    if kind == "track":
        return [
            m.track(msg.get("event"), who, when, {**m.flatten(msg.get("properties")), **login}, event_id=mid, lib=lib)
        ]
    if kind in ("page", "screen"):
        event = "$pageview" if kind == "page" else "$AppViewScreen"
        props = {**m.flatten(msg.get("properties")), **login}
        if isinstance(msg.get("name"), str):
            props["$title" if kind == "page" else "$screen_name"] = msg["name"]
        return [m.track(event, who, when, props, event_id=mid, lib=lib)]
    if kind == "alias":
        return [m.signup(user, m.id_text(msg.get("previousId")), when, event_id=mid, lib=lib)]
    if kind == "group":
        props = {"$group_id": m.id_text(msg.get("groupId")), **m.flatten(msg.get("traits")), **login}
        return [m.profile("profile_set", who, when, props, event_id=mid)]
    records = []
    if user and anon and user != anon:
        records.append(m.signup(user, anon, when, event_id=f"{mid}:signup" if mid else None, lib=lib))
    records.append(m.profile("profile_set", who, when, {**m.flatten(msg.get("traits")), **login}, event_id=mid))
    return records


def _lib(msg: dict[str, Any]) -> dict[str, str] | None:
    context = msg.get("context")
    library = context.get("library") if isinstance(context, dict) else None
    name = library.get("name") if isinstance(library, dict) else None
    return {"$lib": name} if isinstance(name, str) else None


def reply(receipt: Receipt) -> tuple[int, dict[str, Any]]:
    return 200, {"success": True, "accepted": receipt.accepted, "rejected": receipt.rejected()}


def error_reply(status: int, reason: str) -> dict[str, Any]:
    return {"success": False, "code": status, "message": reason}


SEGMENT = WireFormat("segment", decode, to_intake, reply, error_reply)
