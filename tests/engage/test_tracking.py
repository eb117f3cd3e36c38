"""Signed public links: tokens that survive a round trip and nothing else, safe click targets, RFC 8058 headers,
and the tracking pixel."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from userloop.core.errors import ValidationError
from userloop.engage.tracking import (
    MAX_TOKEN_CHARS,
    PIXEL,
    PIXEL_CONTENT_TYPE,
    click_target,
    sign,
    unsubscribe_headers,
    verify,
)

SECRET = hashlib.sha256(b"test secret for engage links").digest()
OTHER = hashlib.sha256(b"another workspace").digest()
NOW = 1_780_000_000_000  # a fixed instant (epoch ms); nothing reads the clock
CLICK = {
    "project": 3,
    "message": "j12:v2:n5:p981:0",
    "person": 981,
    "channel": "email",
    "url": "https://shop.example/sale?utm_source=userloop&id=9",
}
KINDS = ("open", "click", "unsubscribe", "inbox")


def refused(secret: bytes, token: Any, kind: Any = "open", now_ms: int = NOW) -> None:
    with pytest.raises(ValidationError) as err:
        verify(secret, token, kind, now_ms)
    assert err.value.code == "token_invalid"
    assert err.value.status == 403


# ------------------------------------------------------------------------------------------------------- tokens


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(kind: Any) -> None:
    claims = dict(CLICK) if kind == "click" else {"project": 3, "message": "m-1", "person": 981, "channel": "email"}
    token = sign(SECRET, kind, claims, NOW + 60_000)
    assert verify(SECRET, token, kind, NOW) == claims
    assert token.isascii() and all(c.isalnum() or c in "-_." for c in token)  # safe in a URL path as it is
    assert len(token) < 260


def test_tokens_are_deterministic_and_claims_are_exact() -> None:
    claims = {"person": 2**62, "name": "张三 <x@y>", "empty": "", "neg": -5}
    a, b = sign(SECRET, "inbox", claims, None), sign(SECRET, "inbox", dict(reversed(claims.items())), None)
    assert a == b
    got = verify(SECRET, a, "inbox", 10**15)  # no expiry: valid at any time
    assert got == claims and isinstance(got["person"], int) and isinstance(got["neg"], int)


def test_token_layout_is_documented_hmac() -> None:
    # the format in the module doc, rebuilt independently: payload.base64url(HMAC-SHA256(...)[:18])
    token = sign(SECRET, "open", {"person": 1}, 99)
    payload, tag = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert data == {"k": "open", "e": 99, "c": {"person": 1}}
    mac = hmac.new(SECRET, b"userloop.engage.v1." + payload.encode(), hashlib.sha256).digest()[:18]
    assert base64.urlsafe_b64decode(tag) == mac
    assert len(mac) * 8 >= 128


def test_every_single_character_change_is_refused() -> None:
    token = sign(SECRET, "click", CLICK, NOW + 1)
    alphabet = [chr(c) for c in range(256)] + ["é", "\u2028", "\ufffd", "😀"]
    tried = 0
    for i, original in enumerate(token):
        for ch in alphabet:
            if ch == original:
                continue
            refused(SECRET, token[:i] + ch + token[i + 1 :], "click")
            tried += 1
        refused(SECRET, token[:i] + token[i + 1 :], "click")  # and every deletion
    assert tried == len(token) * (len(alphabet) - 1)
    for extra in ("=", "A", ".", ".A", "=="):  # appended padding or characters
        refused(SECRET, token + extra, "click")
    refused(SECRET, token.replace(".", "=."), "click")


def test_every_byte_of_the_utf8_token_flipped_is_refused() -> None:
    token = sign(SECRET, "unsubscribe", {"person": 7, "project": 1}, None).encode()
    for i in range(len(token)):
        for bit in range(8):
            altered = bytearray(token)
            altered[i] ^= 1 << bit
            refused(SECRET, altered.decode("latin-1"), "unsubscribe")


def test_wrong_secret_and_wrong_kind_are_refused() -> None:
    for kind in KINDS:
        claims = CLICK if kind == "click" else {"person": 1}
        token = sign(SECRET, kind, claims, None)
        refused(OTHER, token, kind)
        refused(SECRET[:-1] + bytes([SECRET[-1] ^ 1]), token, kind)
        for other in KINDS:
            if other != kind:
                refused(SECRET, token, other)
    refused(SECRET, sign(SECRET, "open", {"person": 1}, None), "admin")


def test_expiry_edge() -> None:
    token = sign(SECRET, "unsubscribe", {"person": 1}, NOW)
    assert verify(SECRET, token, "unsubscribe", NOW - 1) == {"person": 1}
    refused(SECRET, token, "unsubscribe", NOW)  # the expiry instant itself is past
    refused(SECRET, token, "unsubscribe", NOW + 1)
    refused(SECRET, sign(SECRET, "open", {"person": 1}, 0), "open", 0)
    # an expiry cannot be stretched by editing the payload: the signature covers it
    payload, tag = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["e"] = NOW + 10**9
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + tag
    refused(SECRET, forged, "unsubscribe", NOW)


def test_a_click_target_is_checked_on_both_sides() -> None:
    with pytest.raises(ValidationError) as err:
        sign(SECRET, "click", {**CLICK, "url": "javascript:alert(1)"}, None)
    assert err.value.code == "invalid"
    with pytest.raises(ValidationError):
        sign(SECRET, "click", {"person": 1}, None)
    # a token made with the key but without the check (an older release, a bug) still cannot redirect anywhere
    payload = (
        base64.urlsafe_b64encode(
            json.dumps({"k": "click", "e": None, "c": {"url": "data:text/html,x"}}, separators=(",", ":")).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    mac = hmac.new(SECRET, b"userloop.engage.v1." + payload.encode(), hashlib.sha256).digest()[:18]
    refused(SECRET, payload + "." + base64.urlsafe_b64encode(mac).decode(), "click")


@pytest.mark.parametrize(
    ("secret", "kind", "claims", "expires"),
    [
        (b"short", "open", {"person": 1}, None),
        ("text secret of enough length", "open", {"person": 1}, None),
        (SECRET, "admin", {"person": 1}, None),
        (SECRET, "open", {"person": True}, None),
        (SECRET, "open", {"person": 1.5}, None),
        (SECRET, "open", {"person": None}, None),
        (SECRET, "open", {"": 1}, None),
        (SECRET, "open", {"a.b": 1}, None),
        (SECRET, "open", {"person": 1}, 1.5),
        (SECRET, "open", {"person": 1}, True),
    ],
)
def test_sign_refuses_bad_input(secret: Any, kind: Any, claims: Any, expires: Any) -> None:
    with pytest.raises(ValidationError) as err:
        sign(secret, kind, claims, expires)
    assert err.value.code == "invalid"


def test_verify_with_a_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValidationError) as err:
        verify(b"", sign(SECRET, "open", {}, None), "open", NOW)
    assert err.value.code == "invalid"


@given(st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_-]{0,200}\.[A-Za-z0-9_-]{24}", fullmatch=True))
@settings(max_examples=examples(500))
@example("")
@example(".")
@example("." + "A" * 24)
@example("e30." + "A" * 24)
@example("A" * (MAX_TOKEN_CHARS + 1))
@example("\x00" * 30)
def test_garbage_is_refused_with_token_invalid_only(garbage: str) -> None:
    for kind in KINDS:
        refused(SECRET, garbage, kind)


@given(st.binary(max_size=200))
@settings(max_examples=examples(200))
def test_garbage_bytes_and_other_types_are_refused(raw: bytes) -> None:
    refused(SECRET, raw.decode("latin-1"), "open")
    refused(SECRET, raw, "open")


@pytest.mark.parametrize("junk", [None, 12, ["a.b"], {"t": 1}])
def test_non_string_tokens_are_refused(junk: Any) -> None:
    refused(SECRET, junk, "open")


@given(
    st.sampled_from(KINDS),
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        st.text(max_size=40) | st.integers(-(2**70), 2**70),
        max_size=6,
    ),
    st.none() | st.integers(-(2**45), 2**45),
    st.integers(-(2**45), 2**45),
)
@settings(max_examples=examples(300))
def test_any_claims_round_trip_until_expiry(kind: Any, claims: dict[str, Any], expires: int | None, now: int) -> None:
    if kind == "click":
        claims = {**claims, "url": "http://127.0.0.1:8080/x"}
    token = sign(SECRET, kind, claims, expires)
    if expires is None or now < expires:
        assert verify(SECRET, token, kind, now) == claims
    else:
        refused(SECRET, token, kind, now)


# ------------------------------------------------------------------------------------------------- click targets


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/",
        "http://127.0.0.1:8080/path?q=1#frag",
        "HTTPS://SHOP.EXAMPLE/A",
        "https://[::1]:8443/x",
        "https://xn--fsqu00a.example/%E4%B8%AD",
        "https://例子.example/中文",
    ],
)
def test_click_target_accepts_http_urls(url: str) -> None:
    assert click_target(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "ftp://files.example/a",
        "//evil.example/path",
        "/relative/path",
        "relative",
        "https:evil.example",
        "https:/evil.example",
        "https:///evil.example",
        "https://",
        "https:\\\\evil.example",
        "https://evil.example\\@good.example",
        "https://good.example@evil.example/",
        "https://user:pw@evil.example/",
        "https://evil.example\n/",
        "https://evil.example/\x00",
        "https://[::1/",
        "https://good.example:99999/",
        "https://good.example:0/",
        "https://good.example:port/",
        "https://good.example/" + "a" * 2100,
        "",
    ],
)
def test_click_target_refuses_everything_else(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        click_target(url)
    assert err.value.code == "invalid" and err.value.field == "url"


def test_click_target_refuses_non_strings() -> None:
    for junk in (None, 1, b"https://x.example/"):
        with pytest.raises(ValidationError):
            click_target(junk)


# ------------------------------------------------------------------------------------------ unsubscribe headers


def test_unsubscribe_headers_rfc_8058() -> None:
    token = sign(SECRET, "unsubscribe", {"person": 1, "project": 2}, None)
    url = f"https://mail.example/u/{token}"
    assert unsubscribe_headers(url, None) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert unsubscribe_headers(url, "unsubscribe+p1@mail.example")["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe+p1@mail.example>"
    )
    assert unsubscribe_headers(url, "mailto:u@mail.example?subject=unsubscribe")["List-Unsubscribe"] == (
        f"<{url}>, <mailto:u@mail.example?subject=unsubscribe>"
    )
    # RFC 8058 §3.1: one-click only with HTTPS; a plain-http install still gets RFC 2369's header
    assert unsubscribe_headers("http://127.0.0.1:8080/u/x", None) == {"List-Unsubscribe": "<http://127.0.0.1:8080/u/x>"}


@pytest.mark.parametrize(
    ("url", "mailto"),
    [
        ("https://mail.example/u/a>,<https://evil.example", None),
        ("https://mail.example/u/a,b", None),
        ("https://mail.example/u/中文", None),
        ("javascript:alert(1)", None),
        ("https://mail.example/u/x", "a@b.example\r\nBcc: victim@x.example"),
        ("https://mail.example/u/x", "a@b.example>, <https://evil.example"),
        ("https://mail.example/u/x", "not an address"),
        ("https://mail.example/u/x", ""),
    ],
)
def test_unsubscribe_headers_refuse_injection(url: str, mailto: str | None) -> None:
    with pytest.raises(ValidationError):
        unsubscribe_headers(url, mailto)


# ----------------------------------------------------------------------------------------------------- pixel


def test_pixel_is_a_1x1_transparent_gif() -> None:
    assert PIXEL_CONTENT_TYPE == "image/gif"
    assert len(PIXEL) == 43
    assert PIXEL[:6] == b"GIF89a" and PIXEL[-1:] == b";"
    width, height = int.from_bytes(PIXEL[6:8], "little"), int.from_bytes(PIXEL[8:10], "little")
    assert (width, height) == (1, 1)
    packed = PIXEL[10]
    assert packed & 0x80  # a global colour table
    table = 2 ** ((packed & 0x07) + 1)
    pos = 13 + 3 * table
    # Graphic Control Extension: transparency flag set, transparent index 0
    assert PIXEL[pos : pos + 3] == b"\x21\xf9\x04"
    assert PIXEL[pos + 3] & 0x01 and PIXEL[pos + 6] == 0
    pos += 8
    assert PIXEL[pos] == 0x2C  # image descriptor at 0,0 of 1×1, no local table
    assert int.from_bytes(PIXEL[pos + 5 : pos + 7], "little") == 1
    assert int.from_bytes(PIXEL[pos + 7 : pos + 9], "little") == 1
    assert PIXEL[pos + 9] & 0x80 == 0
    pos += 10
    min_code, size = PIXEL[pos], PIXEL[pos + 1]
    data = int.from_bytes(PIXEL[pos + 2 : pos + 2 + size], "little")
    width_bits = min_code + 1
    codes = [(data >> (width_bits * i)) & ((1 << width_bits) - 1) for i in range(3)]
    clear, end = 1 << min_code, (1 << min_code) + 1
    assert codes == [clear, 0, end]  # one pixel of colour 0, the transparent one
    assert PIXEL[pos + 2 + size] == 0 and pos + 3 + size == len(PIXEL) - 1
