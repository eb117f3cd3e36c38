"""WebhookChannel against a real HTTP server on 127.0.0.1: signature, idempotency, status mapping, timeouts, pool."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import examples
from userloop.core.errors import ValidationError
from userloop.engage.channels.base import Message
from userloop.engage.channels.webhook import WebhookChannel, signature, verify_signature

SECRET = b"whsec-0123456789abcdef"
NOW_S = 1_767_225_600  # 2026-01-01T00:00:00Z, passed explicitly


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int]


@dataclass
class Server:
    base: str
    seen: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    """``/status/N`` answers N; ``/id`` answers 200 with a JSON id; ``/slow`` answers after 5 s; ``/big`` sends a
    large reply."""

    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is observable

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.seen.append(  # type: ignore[attr-defined]
            Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address)
        )
        status, reply, kind = 200, b"", "text/plain"
        if self.path.startswith("/status/"):
            status = int(self.path.rsplit("/", 1)[1])
        elif self.path == "/id":
            reply, kind = json.dumps({"id": "evt_42", "ok": True}).encode(), "application/json"
        elif self.path == "/slow":
            time.sleep(5)
        elif self.path == "/big":
            reply = b"{" + b" " * 200_000 + b"}"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(reply)))
        if status in (301, 302):
            self.send_header("Location", "/id")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up (the timeout test, the cut reply) is expected here


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.seen = state.seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def hook(key: str, to: str, **kw: object) -> Message:
    fields: dict[str, object] = {"key": key, "channel": "webhook", "person": 7, "to": to, "body": "你好 hello"}
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


@pytest.fixture
def channel() -> Iterator[WebhookChannel]:
    ch = WebhookChannel("hooks", SECRET, timeout=5.0, clock=lambda: NOW_S)
    yield ch
    ch.close()


def test_a_signed_json_post_with_the_idempotency_key(server: Server, channel: WebhookChannel) -> None:
    message = hook("j1-n2-p7-o1", f"{server.base}/id", subject="春节", params={"coupon": "SPRING-50"})
    (result,) = channel.send([message])
    assert (result.status, result.provider_id) == ("sent", "evt_42")
    (seen,) = server.seen
    assert seen.path == "/id"
    assert seen.headers["idempotency-key"] == "j1-n2-p7-o1"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.headers["x-userloop-timestamp"] == str(NOW_S)
    assert json.loads(seen.body) == {
        "key": "j1-n2-p7-o1",
        "person": 7,
        "subject": "春节",
        "body": "你好 hello",
        "params": {"coupon": "SPRING-50"},
    }
    header = seen.headers["x-userloop-signature"]
    assert header == "v1=" + signature(SECRET, str(NOW_S), seen.body)
    assert verify_signature(SECRET, seen.headers["x-userloop-timestamp"], seen.body, header, now_s=NOW_S + 60)
    # What a receiver must refuse: another body, another secret, an old or a future timestamp, another scheme.
    assert not verify_signature(SECRET, NOW_S, seen.body.replace(b"7", b"8"), header, now_s=NOW_S)
    assert not verify_signature(b"another-secret-0000", NOW_S, seen.body, header, now_s=NOW_S)
    assert not verify_signature(SECRET, NOW_S, seen.body, header, now_s=NOW_S + 301)
    assert not verify_signature(SECRET, NOW_S, seen.body, header, now_s=NOW_S - 301)
    assert verify_signature(SECRET, NOW_S, seen.body, header, now_s=NOW_S + 1000, tolerance_s=1000)
    assert not verify_signature(SECRET, NOW_S, seen.body, header.replace("v1=", "v0="), now_s=NOW_S)
    assert not verify_signature(SECRET, "17672256OO", seen.body, header, now_s=NOW_S)
    # A rotated secret: the header may carry several signatures, any one of them valid.
    rotated = f"v1={'0' * 64}, {header}"
    assert verify_signature(SECRET, NOW_S, seen.body, rotated, now_s=NOW_S)


@settings(max_examples=examples(50))
@given(body=st.binary(max_size=200), stamp=st.integers(0, 2**40), skew=st.integers(-300, 300))
def test_any_signed_body_verifies_and_any_changed_byte_does_not(body: bytes, stamp: int, skew: int) -> None:
    header = "v1=" + signature(SECRET, str(stamp), body)
    assert verify_signature(SECRET, str(stamp), body, header, now_s=stamp + skew)
    changed = body + b"x"
    assert not verify_signature(SECRET, str(stamp), changed, header, now_s=stamp + skew)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, ("sent", None, False)),
        (201, ("sent", None, False)),
        (204, ("sent", None, False)),
        (302, ("failed", "302", False)),  # redirects are not followed
        (400, ("failed", "400", False)),
        (401, ("failed", "401", False)),
        (404, ("failed", "404", False)),
        (410, ("failed", "410", False)),
        (408, ("failed", "408", True)),
        (429, ("failed", "429", True)),
        (500, ("failed", "500", True)),
        (503, ("failed", "503", True)),
    ],
)
def test_status_mapping(server: Server, channel: WebhookChannel, status: int, outcome: tuple[object, ...]) -> None:
    (result,) = channel.send([hook("k", f"{server.base}/status/{status}")])
    assert (result.status, result.error, result.retryable) == outcome
    assert [s.path for s in server.seen] == [f"/status/{status}"]


def test_a_timeout_is_retryable_and_the_batch_goes_on(server: Server) -> None:
    ch = WebhookChannel("hooks", SECRET, timeout=0.3, clock=lambda: NOW_S)
    started = time.monotonic()
    results = ch.send([hook("slow", f"{server.base}/slow"), hook("ok", f"{server.base}/id")])
    elapsed = time.monotonic() - started
    ch.close()
    assert [(r.status, r.error, r.retryable) for r in results] == [
        ("failed", "timeout", True),
        ("sent", None, False),
    ]
    assert elapsed < 4.5  # it gave up on /slow at its timeout (0.3 s), not when the server answered (5 s)


def test_an_unreachable_endpoint_is_that_message_s_retryable_failure(channel: WebhookChannel) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (result,) = channel.send([hook("k", f"http://127.0.0.1:{port}/x")])
    assert (result.status, result.error, result.retryable) == ("failed", "connect_error", True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "not a url", "http://", "/relative", "file:///etc/passwd", "javascript:x()",
            "http://a.example/x\r\nHost: evil", "mailto:a@example.com"],
)  # fmt: skip
def test_bad_urls_are_refused_before_sending(channel: WebhookChannel, url: str) -> None:
    (result,) = channel.send([hook("k", url)])
    assert (result.status, result.error, result.retryable) == ("failed", "bad_url", False)


def test_limits_and_bad_keys(server: Server) -> None:
    ch = WebhookChannel("hooks", SECRET, max_body=1024, clock=lambda: NOW_S)
    results = ch.send(
        [
            hook("big", f"{server.base}/id", body="字" * 400),  # 1,200 bytes of UTF-8
            hook("a\r\nX-Evil: 1", f"{server.base}/id"),
            hook("small", f"{server.base}/big"),  # a huge reply is cut at MAX_REPLY, not read whole
        ]
    )
    ch.close()
    assert [(r.status, r.error) for r in results] == [("failed", "too_large"), ("failed", "bad_header"), ("sent", None)]
    assert [s.path for s in server.seen] == ["/big"]


def test_one_pooled_connection_for_a_batch(server: Server, channel: WebhookChannel) -> None:
    results = channel.send([hook(f"k{i}", f"{server.base}/status/200") for i in range(20)])
    results += channel.send([hook("again", f"{server.base}/id")])
    assert {r.status for r in results} == {"sent"}
    assert len({s.client for s in server.seen}) == 1
    assert [s.headers["idempotency-key"] for s in server.seen][:3] == ["k0", "k1", "k2"]


def test_bad_channel_settings() -> None:
    with pytest.raises(ValidationError) as short:
        WebhookChannel("hooks", b"short")
    assert short.value.code == "channel_invalid"
    with pytest.raises(ValidationError):
        WebhookChannel("hooks", SECRET, timeout=0)
