"""The shape every wire format shares: a raw request in, messages and a key out, a receipt back."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from userloop.collect.records import Intake, Refusal


@dataclass(frozen=True)
class RawRequest:
    """What an adapter sees of an HTTP request (no framework types, so adapters test without a server)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: dict[str, str] = field(default_factory=dict)
    kind: str = ""  # a sub-route: segment "track"/"batch", mixpanel "engage"…

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def basic_user(self) -> str | None:
        """The user name of HTTP basic auth (Segment's write key, Mixpanel's api secret)."""
        auth = self.headers.get("authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            user = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace").partition(":")[0]
        except (binascii.Error, ValueError):
            return None
        return user or None

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None


@dataclass
class Decoded:
    """A decoded request: the write key it carries, the project it names (if any) and its messages."""

    key: str | None
    messages: list[Any]
    project: str | None = None
    dry_run: bool = False


@dataclass
class Receipt:
    """What happened to one request, for the reply."""

    received: int
    accepted: int
    refusals: list[Refusal]
    request_id: str
    dry_run: bool = False

    def rejected(self) -> list[dict[str, object]]:
        return [r.as_dict() for r in self.refusals]


@dataclass(frozen=True)
class WireFormat:
    """One SDK's dialect: how to decode its requests, map its messages, and answer it."""

    source: str
    decode: Callable[[RawRequest, int], Decoded]
    to_intake: Callable[[Decoded, int], Intake]
    reply: Callable[[Receipt], tuple[int, dict[str, Any]]]
    error_reply: Callable[[int, str], dict[str, Any]]


def default_error(status: int, reason: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": reason}}
