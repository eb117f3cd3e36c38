"""The small shared HTTP server under every provider fake: :class:`FakeServer` serves one handler function on
``127.0.0.1`` port 0 in a daemon thread (stdlib ``http.server``, one thread per request), and :class:`CallbackSink`
is a server that records what is POSTed to it (a stand-in for our own receipt endpoint).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import httpx


@dataclass(frozen=True)
class Request:
    """One HTTP request as the fake saw it. ``headers`` keys are lower-case; ``query`` is the raw query string."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        """The form-encoded body (last value wins), for providers that take ``application/x-www-form-urlencoded``."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def query_params(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.query, keep_blank_values=True).items()}

    def json(self) -> object:
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(obj: object, status: int = 200) -> Response:
    """A JSON reply in UTF-8, Chinese left as is (as the Chinese providers answer)."""
    body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8"})


Handler = Callable[[Request], Response]


class FakeServer:
    """Serves ``handler`` on ``http://127.0.0.1:<ephemeral port>`` until :meth:`stop`; usable as a context manager.

    A handler that raises answers 500 with the exception's text, so a bug in a fake shows up as a failed test and
    not as a hung one.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed
            # ACK hold the body ~40 ms on every keep-alive exchange
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    response = outer._handler(request)
                except Exception as exc:  # a broken fake answers 500 rather than hanging the client
                    response = Response(500, repr(exc).encode("utf-8"), {"Content-Type": "text/plain"})
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = _serve  # noqa: N815 - http.server's naming
            do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        # a short poll so that stop() (shutdown waits for the loop's next turn) takes milliseconds, not 0.5 s
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-provider", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class CallbackSink:
    """A receiver for provider callbacks: records every request and answers ``ack`` (what the provider expects)."""

    def __init__(self, ack: Response | None = None) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._ack = ack or Response(200, b"")
        self.server = FakeServer(self._record)

    def _record(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        return self._ack

    @property
    def url(self) -> str:
        return self.server.url + "/callback"

    def stop(self) -> None:
        self.server.stop()


def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """POST a callback the way a provider does; returns the receiver's HTTP status."""
    with httpx.Client(timeout=10.0) as client:
        return client.post(url, content=body, headers=dict(headers)).status_code
