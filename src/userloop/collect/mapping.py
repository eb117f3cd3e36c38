"""Shared pieces of the foreign wire formats (Segment, PostHog, Mixpanel) → Sensors records.

Those SDKs allow free-text names ("Order Completed", "Plan Type") and nested property values; the Sensors
model does not. The mapping is fixed and documented so the same input always lands the same way:

- a name's characters outside ``[A-Za-z0-9_$]`` become ``_``; a leading digit gets a ``_`` prefix; a property
  name that Sensors reserves (``id``, ``time``…) gets a ``_`` suffix. A name still invalid after that (empty,
  too long) is refused by the checks with its reason.
- a nested object is flattened one level per key with ``_``; a list of scalars becomes a list of strings; any
  other list is kept as its JSON text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from userloop.schema.names import RESERVED_PROPERTY_NAMES

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_$]")
_SCALARS = frozenset({str, int, float, bool, type(None)})
MAX_DEPTH = 3


def sensors_name(name: object, *, prop: bool = True) -> str:
    """The Sensors-legal form of a free-text name (see the module docstring)."""
    return _sensors_name(name if isinstance(name, str) else str(name), prop)


@lru_cache(maxsize=65_536)  # names repeat across events: compute each once
def _sensors_name(name: str, prop: bool) -> str:
    text = _BAD_CHARS.sub("_", name)
    if text[:1].isdigit():
        text = "_" + text
    if prop and text.lower() in RESERVED_PROPERTY_NAMES:
        text += "_"
    return text


def flatten(props: object, *, skip: frozenset[str] = frozenset(), prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Properties as a flat name → scalar/list-of-strings map, with Sensors-legal names."""
    out: dict[str, Any] = {}
    if not isinstance(props, dict):
        return out
    if not prefix and not skip and all(type(v) in _SCALARS for v in props.values()):
        # the common case, flat scalars: only the names need mapping (cached per name)
        return {sensors_name(key): value for key, value in props.items()}
    for key, value in props.items():
        if not prefix and key in skip:
            continue
        name = prefix + str(key)
        if isinstance(value, dict) and depth < MAX_DEPTH:
            out.update(flatten(value, prefix=name + "_", depth=depth + 1))
        elif isinstance(value, dict):
            out[sensors_name(name)] = orjson.dumps(value, default=str).decode()
        elif isinstance(value, list):
            out[sensors_name(name)] = _list_value(value)
        else:
            out[sensors_name(name)] = value
    return out


def _list_value(value: list[Any]) -> list[str] | str:
    if all(isinstance(v, str | int | float | bool) for v in value):
        return [str(v) for v in value]
    return orjson.dumps(value, default=str).decode()


def iso_ms(value: object, default_ms: int) -> int:
    """Epoch ms of an ISO-8601 time (naive means UTC), of epoch seconds/ms, or ``default_ms``."""
    if isinstance(value, bool) or value is None:
        return default_ms
    if isinstance(value, int | float):
        return int(value * 1000) if value < 100_000_000_000 else int(value)
    if isinstance(value, str):
        parsed = _iso_text_ms(value)
        return default_ms if parsed is None else parsed
    return default_ms


@lru_cache(maxsize=4096)  # a batch's messages often share their timestamp text
def _iso_text_ms(value: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def id_text(value: object) -> str | None:
    """A distinct id as text; ``None`` for missing, empty or structured values."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value)
    return text or None


def track(event: object, distinct_id: str | None, when: int, props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "track",
        "event": sensors_name(event, prop=False) if isinstance(event, str) else event,
        "distinct_id": distinct_id,
        "time": when,
        "properties": props,
    }
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def profile(rtype: str, distinct_id: str | None, when: int, props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"type": rtype, "distinct_id": distinct_id, "time": when, "properties": props}
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def signup(login_id: str | None, anonymous_id: str | None, when: int, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "track_signup",
        "event": "$SignUp",
        "distinct_id": login_id,
        "original_id": anonymous_id,
        "time": when,
        "properties": {"$is_login_id": True},
    }
    record.update({k: v for k, v in extra.items() if v is not None})
    return record
