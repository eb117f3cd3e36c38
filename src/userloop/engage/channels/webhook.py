"""Webhooks: each message is a signed JSON POST to the URL in ``message.to``.

The request (one per message, over a pooled :class:`httpx.Client` with keep-alive)::

    POST {message.to}
    Content-Type: application/json; charset=utf-8
    Idempotency-Key: {key}
    X-Userloop-Timestamp: 1767225600
    X-Userloop-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

    {"key": "…", "person": 42, "subject": "…", "body": "…", "params": {"coupon": "SPRING"}}

Signing, after Stripe's webhook signatures (https://docs.stripe.com/webhooks#verify-manually): the signed payload is
the timestamp header's value, a dot, and the raw request body (``b"1767225600." + body``); the signature is the
lower-case hex HMAC-SHA256 of it under the channel's secret, sent as ``v1=<hex>``. A receiver recomputes it over the
bytes it received (before any JSON parsing), compares in constant time, and refuses a timestamp more than five
minutes from its clock, so a captured request cannot be replayed later (:func:`verify_signature` does all three).
The header may carry several comma-separated ``v1=`` values (a receiver accepts any one that matches), so a secret
can be rotated by signing with both for a while. ``Idempotency-Key`` is the outbox key: a resend after a crash
carries the same key, and a receiver that remembers keys can drop it.

Answers: any 2xx → ``sent`` (``provider_id`` is the reply's JSON ``id`` when it has one); 408, 429, 5xx, a timeout
or a connection that fails → ``failed`` and retryable; any other status (3xx: redirects are not followed; 4xx) →
``failed`` with the status as ``error``, not retryable. Checked before sending: a URL that is not http(s) with a
host is ``bad_url``, a body over ``max_body`` is ``too_large``, a key that cannot be a header value is
``bad_header``; none retryable. Each message has its own endpoint, so an unreachable one is that message's failure,
never a :class:`~userloop.engage.channels.base.ChannelError`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Sequence

import httpx

from userloop.core.errors import ValidationError
from userloop.engage.channels.base import ChannelKind, Delivery, Message

SIGNATURE_HEADER = "X-Userloop-Signature"
TIMESTAMP_HEADER = "X-Userloop-Timestamp"
#: How much of a reply is read (for its ``id``); the rest is dropped with the connection's read.
MAX_REPLY = 64 * 1024
_RETRYABLE_STATUS = frozenset({408, 429})


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``timestamp + "." + body`` under ``secret``."""
    return hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes, timestamp: str | int, body: bytes, header: str, now_s: float, tolerance_s: float = 300
) -> bool:
    """True when ``header`` (``v1=<hex>[, v1=<hex>…]``) holds a valid signature of ``body`` at ``timestamp`` and
    the timestamp is within ``tolerance_s`` seconds of ``now_s``; for receivers of this channel's webhooks.

    ``timestamp`` is the ``X-Userloop-Timestamp`` header as received, ``body`` the raw request bytes. Every
    candidate is compared with :func:`hmac.compare_digest`."""
    stamp = str(timestamp).strip()
    if not stamp.isascii() or not stamp.isdigit():
        return False
    if abs(now_s - int(stamp)) > tolerance_s:
        return False
    expected = signature(secret, stamp, body)
    found = False
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == "v1" and value.isascii() and hmac.compare_digest(value.strip().lower(), expected):
            found = True  # no early return: the time taken does not depend on which candidate matched
    return found


def _failed(key: str, error: str, retryable: bool = False) -> Delivery:
    return Delivery(key=key, status="failed", error=error, retryable=retryable)


def _reply_id(response: httpx.Response, data: bytes) -> str | None:
    if "json" not in response.headers.get("content-type", "") and not data.lstrip().startswith(b"{"):
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    reply_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(reply_id, bool) or not isinstance(reply_id, str | int):
        return None
    return str(reply_id)[:256]


class WebhookChannel:
    """Signed JSON webhooks as a :class:`~userloop.engage.channels.base.Channel` (kind ``webhook``).

    ``secret`` signs every request (at least 16 bytes); ``timeout`` bounds connecting, each read and each write, in
    seconds; ``max_body`` bounds the JSON body. ``clock`` gives the timestamp (seconds since the epoch); ``proxy``
    is an HTTP proxy URL (environment proxy settings are not read, so a delivery goes where the URL says).
    """

    kind: ChannelKind = "webhook"

    def __init__(
        self,
        name: str,
        secret: bytes,
        timeout: float = 10.0,
        max_body: int = 256 * 1024,
        *,
        clock: Callable[[], float] = time.time,
        proxy: str | None = None,
        max_connections: int = 20,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ValidationError("the webhook secret must be at least 16 bytes", code="channel_invalid",
                                  field="secret")  # fmt: skip
        if timeout <= 0 or max_body <= 0:
            raise ValidationError("timeout and max_body must be positive", code="channel_invalid", field="timeout")
        self.name = name
        self._secret = secret
        self.timeout = timeout
        self.max_body = max_body
        self.clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            proxy=proxy,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "userloop-webhook/1"},
        )
        self._lock = threading.Lock()

    def request_body(self, message: Message) -> bytes:
        """The JSON body sent for ``message`` (UTF-8, compact, keys sorted)."""
        payload = {
            "key": message.key,
            "person": message.person,
            "subject": message.subject,
            "body": message.body,
            "params": dict(message.params),
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    def _send_one(self, message: Message) -> Delivery:
        key = message.key
        try:
            url = httpx.URL(message.to)
        except (httpx.InvalidURL, TypeError, ValueError):
            return _failed(key, "bad_url")
        if url.scheme not in ("http", "https") or not url.host or any(c in message.to for c in "\r\n\t "):
            return _failed(key, "bad_url")
        if not key.isascii() or not key.isprintable() or not key:
            return _failed(key, "bad_header")
        body = self.request_body(message)
        if len(body) > self.max_body:
            return _failed(key, "too_large")
        stamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": key,
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: f"v1={signature(self._secret, stamp, body)}",
        }
        try:
            with self._client.stream("POST", url, content=body, headers=headers) as response:
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) >= MAX_REPLY:
                        break
        except httpx.TimeoutException:
            return _failed(key, "timeout", retryable=True)
        except httpx.UnsupportedProtocol:
            return _failed(key, "bad_url")
        except httpx.TransportError:  # refused, reset, DNS: the endpoint may be back later
            return _failed(key, "connect_error", retryable=True)
        status = response.status_code
        if 200 <= status < 300:
            return Delivery(key=key, status="sent", provider_id=_reply_id(response, bytes(data)))
        retryable = status in _RETRYABLE_STATUS or status >= 500
        return _failed(key, str(status), retryable=retryable)

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        """One :class:`Delivery` per message, in order (see the module's docstring for the mapping)."""
        with self._lock:
            return [self._send_one(message) for message in messages]

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()
