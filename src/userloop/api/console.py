"""The operators' console: the built single-page app (``web/dist``, Vite's output) served by the service at ``/``.

* ``/assets/<name>``: the hashed scripts, styles and fonts, cached for a year (``immutable``: a new build has new
  names); gzip when the client accepts it, from ``<name>.gz`` when the build left one, else compressed once and
  kept in memory (``Vary: Accept-Encoding``). Only files inside the assets folder; anything else is a 404.
* ``/`` and every other GET path the app owns (its deep links, ``/dashboards/3``) that no route serves:
  ``index.html`` with ``Cache-Control: no-cache`` (the browser asks again and so learns of a new build) and the
  page's own strict Content-Security-Policy. Paths of the API, the member app, the docs, health, signed links and
  the collector are never the app's: they keep their own answers (a JSON 404 for ``/api/v1/nope``, a 405 for a
  wrong method).
* No build: ``/`` answers a small bilingual page saying how to build the console, never a 500.

The folder is ``USERLOOP_CONSOLE_DIR`` when set, else ``web/dist`` at the repository's root. :class:`ResponseGuard`
adds its headers to these answers too, but keeps the Cache-Control and CSP set here.

Example::

    install(app)        # the app's pages answer what no route matched, so routes added later still win
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from userloop.collect.routes import is_collector

CONSOLE_DIR_ENV = "USERLOOP_CONSOLE_DIR"
ASSET_CACHE = "public, max-age=31536000, immutable"
#: The app's page: its own scripts and styles (Ant Design injects style elements, hence 'unsafe-inline' for
#: styles only), images from itself or data: URLs, fetches to the API on the same origin; nothing may frame it.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: The "not built" page: one inline style, nothing else.
MISSING_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
#: The first path segments the app never owns: the API, the member app, docs, health, the console's own assets and
#: the signed links of messages (``/t/…``); the collector's paths are checked with :func:`is_collector`.
NOT_THE_APP = frozenset({"api", "app", "assets", "docs", "docs-assets", "redoc", "openapi.json", "healthz", "t"})
_ASSET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@~-]*(/[A-Za-z0-9_][A-Za-z0-9_.@~-]*)*")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".js", ".mjs", ".css", ".json", ".svg", ".txt", ".wasm", ".ttf", ".map", ".html")
#: At most this many bytes of compressed assets are kept in memory (a build is a few megabytes).
GZIP_MEMORY_BYTES = 64 << 20

NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>userloop — 控制台未构建 / console not built</title>
<style>body{font:15px/1.6 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}
code{background:#f4f4f4;padding:.1em .3em;border-radius:3px}</style></head>
<body>
<h1>控制台尚未构建</h1>
<p>服务在运行，API 可用（<a href="/docs">/docs</a>），但没有找到控制台的构建文件（<code>web/dist</code>）。
在仓库根目录运行 <code>make console</code>，或 <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>，
然后刷新本页。也可以用环境变量 <code>USERLOOP_CONSOLE_DIR</code> 指向已构建的目录。</p>
<h1 lang="en">The console is not built</h1>
<p lang="en">The service runs and its API answers (<a href="/docs">/docs</a>), but the console's build
(<code>web/dist</code>) was not found. At the repository's root run <code>make console</code>, or
<code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, then reload this page. The environment variable
<code>USERLOOP_CONSOLE_DIR</code> can name a built folder instead.</p>
</body></html>
"""


def console_dir() -> Path:
    """Where the built console is: ``USERLOOP_CONSOLE_DIR``, else ``web/dist`` at the repository's root."""
    configured = os.environ.get(CONSOLE_DIR_ENV)
    if configured:
        return Path(configured)
    import userloop

    return Path(userloop.__file__).resolve().parents[2] / "web" / "dist"


@dataclass
class Console:
    """The built console in ``root``: its page and its assets (compressed copies kept in memory)."""

    root: Path
    _gzipped: dict[tuple[Path, int, int], bytes] = field(default_factory=dict)
    _gzipped_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self) -> Response:
        """``index.html``, or the bilingual page that says how to build the console."""
        index = self.root / "index.html"
        if not index.is_file():
            return HTMLResponse(
                NOT_BUILT, headers={"Cache-Control": "no-cache", "Content-Security-Policy": MISSING_CSP}
            )
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP}
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)

    def asset(self, name: str, accept_encoding: str) -> Response:
        """The asset ``name`` (a path inside ``assets/``), gzipped when the client accepts it; 404 otherwise."""
        path = self._asset_path(name)
        media_type = content_type(path)
        headers = {"Cache-Control": ASSET_CACHE, "Vary": "Accept-Encoding"}
        if accepts_gzip(accept_encoding) and path.suffix in _COMPRESSIBLE:
            headers["Content-Encoding"] = "gzip"
            return Response(self._gzip(path), media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    def _asset_path(self, name: str) -> Path:
        """The file ``name`` names inside the assets folder; 404 for a name outside it, a folder, a ``.gz``."""
        missing = HTTPException(404, "no such asset")
        if not _ASSET_NAME.fullmatch(name) or ".." in name or name.endswith(".gz"):
            raise missing
        folder = (self.root / "assets").resolve()
        path = (folder / name).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise missing
        return path

    def _gzip(self, path: Path) -> bytes:
        """``path`` gzipped: the build's ``.gz`` beside it when there is one, else compressed once and kept."""
        ready = path.with_name(path.name + ".gz")
        if ready.is_file():
            return ready.read_bytes()
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size)
        found = self._gzipped.get(key)
        if found is not None:
            return found
        packed = gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)
        with self._lock:
            if self._gzipped_bytes + len(packed) <= GZIP_MEMORY_BYTES:
                self._gzipped[key] = packed
                self._gzipped_bytes += len(packed)
        return packed


def content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known is not None:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (``gzip;q=0`` refuses it)."""
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def owned_by_app(path: str) -> bool:
    """Whether ``path`` may be one of the app's own pages (not the API, docs, health, links or the collector)."""
    first = path.lstrip("/").split("/", 1)[0]
    return first not in NOT_THE_APP and not is_collector(path)


def install(app: FastAPI, root: Path | None = None) -> Console:
    """Serve the console from ``root`` (default :func:`console_dir`).

    The app's pages are the router's fallback, not a route: they answer only a GET that no route matched, whenever
    the route was added (a route added after this call still wins), and a path the app does not own falls through
    to the usual JSON 404."""
    console = Console(root if root is not None else console_dir())

    def asset(name: str, request: Request) -> Response:
        return console.asset(name, request.headers.get("accept-encoding", ""))

    app.add_api_route("/assets/{name:path}", asset, methods=["GET"], include_in_schema=False)
    fallback = app.router.default

    async def pages(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and owned_by_app(scope["path"]):
            await console.page()(scope, receive, send)
            return
        await fallback(scope, receive, send)

    app.router.default = pages
    return console
