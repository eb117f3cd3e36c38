"""What every HTTP answer carries, and what the service answers when a handler fails.

:class:`ResponseGuard` is the outermost ASGI middleware (inside only Starlette's own error middleware). It adds
the security headers to every answer — management API, collector fast path, 413s and 429s of the limits alike —
and turns an exception that escaped every handler into a logged, JSON 500 that still carries those headers.

The headers:

* ``X-Content-Type-Options: nosniff`` — a browser never guesses a JSON or CSV answer is HTML;
* ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` — no page can frame the API (clickjacking);
* ``Content-Security-Policy: default-src 'none'`` — an answer rendered by mistake can load and run nothing; the
  interactive docs (``/docs``, ``/redoc``) get the policy their pages need: scripts, styles and images from
  userloop itself (``/docs-assets``, see :func:`userloop.api.app.create_app`), never from another host;
* ``Cache-Control: no-store`` — answers hold personal data and new secrets (a key's or a project's write key,
  shown once): no proxy or browser cache may keep them;
* ``Referrer-Policy: no-referrer``.

The cost per answer is one list concatenation; the collector's fast path pays it too.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from userloop.api.errors import send_error

log = logging.getLogger(__name__)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: The Swagger UI and ReDoc pages: local scripts and styles, one inline script, fetches of /openapi.json.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def _headers(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", csp.encode()),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
    ]


API_HEADERS = _headers(API_CSP)
DOCS_HEADERS = _headers(DOCS_CSP)


class ResponseGuard:
    """ASGI middleware: security headers on every answer; a logged JSON 500 for an exception nothing handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = DOCS_HEADERS if scope["path"] in DOCS_PATHS else API_HEADERS
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = with_security_headers(message.get("headers", ()), extra)
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:
            # the last resort: a handler let an exception escape. Log it with the request line, answer a
            # proper 500 (JSON, with the headers) when nothing was sent yet; the client never sees the traceback
            log.exception("unhandled error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await send_error(send, "internal", "the server failed; the error is in its log", extra_headers=extra)


def with_security_headers(
    headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus ``extra``; a header the answer already set (e.g. its own Cache-Control) is kept."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *(h for h in extra if h[0] not in present)]
