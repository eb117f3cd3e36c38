"""Builders of Sensors-format records for ingest tests."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import NOW_MS


def track(
    event: str, distinct_id: str | None, *, t: int | None = None, login: bool = False, **props: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {"type": "track", "event": event, "time": NOW_MS - 60_000 if t is None else t}
    if distinct_id is not None:
        record["distinct_id"] = distinct_id
    properties = dict(props)
    if login:
        properties["$is_login_id"] = True
    if properties:
        record["properties"] = properties
    return record


def signup(login_id: str, anonymous_id: str, *, t: int | None = None) -> dict[str, Any]:
    return {
        "type": "track_signup",
        "event": "$SignUp",
        "distinct_id": login_id,
        "original_id": anonymous_id,
        "time": NOW_MS - 30_000 if t is None else t,
        "properties": {"$is_login_id": True},
    }


def profile(kind: str, distinct_id: str, *, t: int | None = None, login: bool = True, **props: Any) -> dict[str, Any]:
    properties = dict(props)
    if login:
        properties["$is_login_id"] = True
    return {"type": kind, "distinct_id": distinct_id, "time": NOW_MS if t is None else t, "properties": properties}


def lines(*records: dict[str, Any] | str) -> list[str | None]:
    return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
