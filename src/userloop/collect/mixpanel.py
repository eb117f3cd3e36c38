"""Mixpanel: ``POST /track``, ``/import`` (events) and ``/engage`` (profiles), form ``data=`` holding JSON or
base64 of JSON (or a JSON body); the project token is in each message (``properties.token`` / ``$token``), or
the basic-auth user name on ``/import``.

Mapping: an event → track (``$insert_id`` is the dedupe id, ``time`` in seconds or ms); ``$create_alias`` →
track_signup binding ``distinct_id`` to ``alias``; ``$identify`` → track_signup binding
``$anon_distinct_id``; engage ``$set``, ``$set_once``, ``$add``, ``$append``/``$union``, ``$unset``, ``$delete``
→ profile_set, profile_set_once, profile_increment, profile_append, profile_unset, profile_delete.

The reply is ``{"status": 1, "error": null}`` (verbose form), with ``num_records_imported`` and
``failed_records`` as ``/import`` reports them; ``{"status": 0, "error": …}`` when nothing could be taken.
"""

from __future__ import annotations

from typing import Any

from userloop.collect import mapping as m
from userloop.collect.payload import PayloadError, as_list, json_or_base64, maybe_gunzip, parse_form, parse_json
from userloop.collect.records import Intake
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat

EVENT_SKIP = frozenset({"token", "distinct_id", "time", "$insert_id", "mp_lib", "alias", "$anon_distinct_id"})
ENGAGE_OPS = {
    "$set": "profile_set",
    "$set_once": "profile_set_once",
    "$add": "profile_increment",
    "$append": "profile_append",
    "$union": "profile_append",
    "$unset": "profile_unset",
    "$delete": "profile_delete",
}


def decode(raw: RawRequest, max_bytes: int) -> Decoded:
    body = maybe_gunzip(raw.body, max_bytes, encoding=raw.headers.get("content-encoding"))
    if raw.content_type == "application/json" or body.lstrip()[:1] in (b"{", b"["):
        doc: Any = parse_json(body)
        form: dict[str, str] = {}
    else:
        form = parse_form(body)
        if "data" not in form:
            raise PayloadError("the form has no data field", body)
        doc = json_or_base64(form["data"], max_bytes)
    messages = as_list(doc)
    key = _token(messages) or raw.basic_user or form.get("api_key") or raw.query.get("token")
    return Decoded(key=key, messages=messages)


def _token(messages: list[Any]) -> str | None:
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        props = msg.get("properties")
        token = props.get("token") if isinstance(props, dict) else msg.get("$token")
        if isinstance(token, str) and token:
            return token
    return None


def to_intake(decoded: Decoded, now_ms: int) -> Intake:
    intake = Intake()
    for index, message in enumerate(decoded.messages):
        if not isinstance(message, dict):
            intake.refuse(index, "record", "each message must be a JSON object", message)
            continue
        records = _engage(message, now_ms) if "$distinct_id" in message else _event(message, now_ms)
        if not records:
            intake.refuse(index, "event", "message has neither an event nor a profile operation", message)
        for record in records:
            intake.add(index, record)
    return intake


def _event(msg: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    props: dict[str, Any] = msg["properties"] if isinstance(msg.get("properties"), dict) else {}
    event = msg.get("event")
    if not isinstance(event, str):
        return []
    who = m.id_text(props.get("distinct_id"))
    when = m.iso_ms(props.get("time"), now_ms)
    iid = m.id_text(props.get("$insert_id"))
    lib = {"$lib": props["mp_lib"]} if isinstance(props.get("mp_lib"), str) else None
    if event == "$create_alias":
        return [m.signup(m.id_text(props.get("alias")), who, when, event_id=iid, lib=lib)]
    if event == "$identify":
        return [m.signup(who, m.id_text(props.get("$anon_distinct_id")), when, event_id=iid, lib=lib)]
    return [m.track(event, who, when, m.flatten(props, skip=EVENT_SKIP), event_id=iid, lib=lib)]


def _engage(msg: dict[str, Any], now_ms: int) -> list[dict[str, Any]]:
    who = m.id_text(msg.get("$distinct_id"))
    when = m.iso_ms(msg.get("$time"), now_ms)
    records = []
    for op, rtype in ENGAGE_OPS.items():
        if op not in msg:
            continue
        values = msg[op]
        if op == "$unset":
            props: dict[str, Any] = {m.sensors_name(n): True for n in as_list(values) if isinstance(n, str)}
        elif op == "$delete":
            props = {}
        elif op in ("$append", "$union"):
            props = {m.sensors_name(k): [str(x) for x in as_list(v)] for k, v in _items(values)}
        else:
            props = m.flatten(values)
        records.append(m.profile(rtype, who, when, props))
    return records


def _items(values: object) -> list[tuple[str, Any]]:
    return list(values.items()) if isinstance(values, dict) else []


def reply(receipt: Receipt) -> tuple[int, dict[str, Any]]:
    failed = [{"index": r.index, "field": r.field, "message": r.reason} for r in receipt.refusals]
    if receipt.received and not receipt.accepted and failed:
        return 400, {"status": 0, "error": failed[0]["message"], "failed_records": failed, "num_records_imported": 0}
    return 200, {"status": 1, "error": None, "num_records_imported": receipt.accepted, "failed_records": failed}


def error_reply(status: int, reason: str) -> dict[str, Any]:
    return {"status": 0, "error": reason}


MIXPANEL = WireFormat("mixpanel", decode, to_intake, reply, error_reply)
