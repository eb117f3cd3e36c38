"""Signed public links of engage messages: the open pixel, the click redirect, one-click unsubscribe and the inbox;
and the member token (kind ``member``) with which one person's app reaches their points (/app/v1/member).

These are the only engage routes that take no API token, so the link itself is the credential. A token is::

    base64url(payload) "." base64url(HMAC-SHA256(secret, "userloop.engage.v1." + base64url(payload))[:18])

without padding (RFC 4648 §5), where ``payload`` is canonical JSON (sorted keys, no spaces) of the kind (``k``),
the expiry in epoch milliseconds or null (``e``) and the claims (``c``: project, message key, person, channel, and
for a click its target ``url``). The tag is HMAC-SHA256 (RFC 2104, FIPS 198-1) truncated to 144 bits (RFC 2104 §5
allows truncation to no less than half the hash and 80 bits; 144 is above NIST SP 800-107's 128-bit guidance and
fills 24 base64 characters exactly, so no character has spare bits and any changed character changes the tag). The
MAC covers the encoded payload text, as JWS does (RFC 7515 §5.1), so there is one accepted spelling of each token;
it is checked with :func:`hmac.compare_digest` before the payload is decoded at all. The kind is inside the MAC, so
an open-pixel token is not a valid unsubscribe token.

Tokens are not encrypted: a person can read their own claims (ids, the target URL), which is what a redirect shows
anyway. Keep secrets at least 32 random bytes; rotate by verifying against the old secret too while links live.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Literal, get_args
from urllib.parse import urlsplit

from userloop.core.errors import ValidationError

__all__ = [
    "MAX_TOKEN_CHARS",
    "PIXEL",
    "PIXEL_CONTENT_TYPE",
    "Kind",
    "click_target",
    "sign",
    "unsubscribe_headers",
    "verify",
]

Kind = Literal["open", "click", "unsubscribe", "inbox", "receipt", "member"]
_KINDS: frozenset[str] = frozenset(get_args(Kind))

#: Longest token :func:`verify` will look at (a URL path segment; browsers and proxies cut URLs near 8 KB).
MAX_TOKEN_CHARS = 4096
#: Longest click target accepted.
MAX_URL_CHARS = 2048
_TAG_BYTES = 18
_TAG_CHARS = 24
_MIN_SECRET_BYTES = 16
_DOMAIN = b"userloop.engage.v1."
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_CLAIM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def _invalid(why: str) -> ValidationError:
    # one message for every refusal, so the answer tells a prober nothing about which check failed
    return ValidationError(f"the link is not valid: {why}", code="token_invalid", field="token")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
        raise ValidationError(
            f"the link-signing secret must be at least {_MIN_SECRET_BYTES} bytes", code="invalid", field="secret"
        )


def _tag(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(mac[:_TAG_BYTES])


def _check_claims(claims: Mapping[str, str | int]) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for name, value in claims.items():
        if not isinstance(name, str) or not _CLAIM_NAME.fullmatch(name):
            raise ValidationError(f"claim name {name!r} must be a short identifier", code="invalid", field="claims")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(f"claim {name!r} must be a string or an integer", code="invalid", field="claims")
        out[name] = value
    return out


def sign(secret: bytes, kind: Kind, claims: Mapping[str, str | int], expires_ms: int | None) -> str:
    """A compact URL-safe token carrying ``claims`` for a link of ``kind`` that stops working at ``expires_ms``
    (epoch milliseconds; None: never). A click token must carry its target as claim ``url`` (see
    :func:`click_target`). Raises ValidationError (code ``invalid``) for a short secret or unusable claims."""
    _check_secret(secret)
    if kind not in _KINDS:
        raise ValidationError(f"unknown link kind {kind!r}", code="invalid", field="kind")
    if expires_ms is not None and (isinstance(expires_ms, bool) or not isinstance(expires_ms, int)):
        raise ValidationError("expires_ms must be epoch milliseconds or None", code="invalid", field="expires_ms")
    body = _check_claims(claims)
    if kind == "click":
        url = body.get("url")
        if not isinstance(url, str):
            raise ValidationError("a click link needs its target as claim 'url'", code="invalid", field="claims")
        click_target(url)
    payload_json = json.dumps(
        {"k": kind, "e": expires_ms, "c": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    payload = _b64encode(payload_json.encode("utf-8"))
    return f"{payload}.{_tag(secret, payload)}"


def verify(secret: bytes, token: str, kind: Kind, now_ms: int) -> dict[str, str | int]:
    """The claims of ``token`` when it was signed with ``secret`` for ``kind`` and has not expired at ``now_ms``
    (valid while ``now_ms < expires_ms``). Anything else, forged, altered, of another kind, malformed or expired,
    raises ValidationError with code ``token_invalid``; nothing else is raised for any token."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise _invalid("malformed")
    payload, dot, tag = token.partition(".")
    if not dot or len(tag) != _TAG_CHARS or not _B64URL.fullmatch(payload) or not _B64URL.fullmatch(tag):
        raise _invalid("malformed")
    if not hmac.compare_digest(_tag(secret, payload).encode("ascii"), tag.encode("ascii")):
        raise _invalid("bad signature")
    try:
        data = json.loads(_b64decode(payload).decode("utf-8"))
    except (binascii.Error, ValueError) as exc:  # only reachable with the secret: a bug, still refused
        raise _invalid("malformed") from exc
    if not isinstance(data, dict) or set(data) != {"k", "e", "c"}:
        raise _invalid("malformed")
    found_kind, expires, claims = data["k"], data["e"], data["c"]
    if found_kind != kind:
        raise _invalid("wrong kind of link")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int)):
        raise _invalid("malformed")
    if expires is not None and now_ms >= expires:
        raise _invalid("expired")
    if not isinstance(claims, dict) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in claims.values()
    ):
        raise _invalid("malformed")
    if kind == "click":
        try:
            click_target(claims.get("url"))
        except ValidationError as exc:
            raise _invalid("bad target") from exc
    return dict(claims)


def click_target(url: object) -> str:
    """``url`` when it is an absolute ``http``/``https`` URL with a host, fit to redirect a browser to; else a
    ValidationError. Refused: other schemes (``javascript:``, ``data:``, ``file:``), scheme-relative
    (``//evil.example``) and relative URLs, user names or passwords in the URL (``https://bank@evil.example``
    phishing), backslashes, whitespace and control characters (browsers drop or reinterpret them, WHATWG URL
    §4.4), and URLs over :data:`MAX_URL_CHARS` characters."""
    if not isinstance(url, str) or not url:
        raise ValidationError("a link target must be an http(s) URL", code="invalid", field="url")
    if len(url) > MAX_URL_CHARS:
        raise ValidationError(f"a link target may be at most {MAX_URL_CHARS} characters", code="invalid", field="url")
    if any(ch <= " " or ch in {"\x7f", "\\"} for ch in url):
        raise ValidationError(
            "a link target may not hold spaces, control characters or backslashes; percent-encode them",
            code="invalid",
            field="url",
        )
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise ValidationError(f"the link target {url!r} is not a URL: {exc}", code="invalid", field="url") from exc
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(parts.scheme.lower() + "://"):
        raise ValidationError(
            f"a link target must start with http:// or https://, not {url[:40]!r}", code="invalid", field="url"
        )
    if not parts.hostname or not port_ok:
        raise ValidationError(f"the link target {url[:80]!r} has no host", code="invalid", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("a link target may not carry a user name or password", code="invalid", field="url")
    return url


_MAILTO = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+(\?[A-Za-z0-9._~%=&+-]*)?")


def unsubscribe_headers(url: str, mailto: str | None) -> dict[str, str]:
    """The e-mail headers that let a mailbox provider offer "unsubscribe" (RFC 2369 §3.2 ``List-Unsubscribe``, a
    comma-separated list of ``<URI>``) and do it in one click (RFC 8058: ``List-Unsubscribe-Post:
    List-Unsubscribe=One-Click``, which makes the receiver POST that body to the HTTPS URI; Gmail and Yahoo require
    both of bulk senders since 2024). ``url`` is the signed unsubscribe link; ``mailto`` an address (or a
    ``mailto:`` URI) that also unsubscribes. RFC 8058 §3.1 allows one-click only for an HTTPS URI, so an ``http``
    URL (a local install without TLS) gets ``List-Unsubscribe`` alone. Values are checked so that no header can be
    injected (no CR, LF, angle brackets or commas)."""
    target = click_target(url)
    if any(ch in target for ch in "<>,") or not target.isascii():
        raise ValidationError(
            "the unsubscribe URL may hold only ASCII and no '<', '>' or ','; percent-encode them",
            code="invalid",
            field="url",
        )
    entries = [f"<{target}>"]
    if mailto is not None:
        address = mailto[len("mailto:") :] if mailto.lower().startswith("mailto:") else mailto
        if not _MAILTO.fullmatch(address) or len(address) > 320:
            raise ValidationError(
                f"the unsubscribe address {mailto[:80]!r} is not a plain e-mail address", code="invalid", field="mailto"
            )
        entries.append(f"<mailto:{address}>")
    headers = {"List-Unsubscribe": ", ".join(entries)}
    if urlsplit(target).scheme.lower() == "https":
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def _gif_pixel() -> bytes:
    """A 1×1 transparent GIF (GIF89a spec, W3C/CompuServe 1990): one-colour global table, a Graphic Control
    Extension marking colour 0 transparent, one LZW-coded pixel of colour 0."""
    header = b"GIF89a"
    screen = (1).to_bytes(2, "little") * 2 + bytes([0x80, 0, 0])  # 1×1, global colour table of 2 entries
    palette = b"\x00\x00\x00" + b"\xff\xff\xff"
    control = b"\x21\xf9\x04" + bytes([0x01, 0, 0, 0]) + b"\x00"  # transparent flag, delay 0, colour 0
    image = b"\x2c" + (0).to_bytes(2, "little") * 2 + (1).to_bytes(2, "little") * 2 + b"\x00"
    data = b"\x02" + b"\x02\x44\x01" + b"\x00"  # LZW min code size 2; clear, 0, end → 0x44 0x01
    return header + screen + palette + control + image + data + b"\x3b"


#: The open-tracking pixel: a 43-byte 1×1 transparent GIF.
PIXEL: bytes = _gif_pixel()
PIXEL_CONTENT_TYPE = "image/gif"
