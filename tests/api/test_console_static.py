"""The console's files over real HTTP, from a small fake build (``USERLOOP_CONSOLE_DIR``): hashed assets cached for
a year and gzipped, the app's page for every path it owns with a strict CSP, the API's own answers untouched, no
way out of the assets folder, and a page that says how to build the console when there is no build."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collect.serving import Server, new_server
from userloop.api.console import CONSOLE_DIR_ENV, accepts_gzip

SCRIPT = ("console.log('userloop');\n" * 400).encode()
PAGE = (
    b'<!doctype html><html><head><script type="module" src="/assets/index-3f2a9c.js"></script></head>'
    b'<body><div id="root"></div></body></html>'
)
PRECOMPRESSED = b"body{color:#222}/* from the .gz the build left */"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    base = Path(tmp_path_factory.mktemp("console"))
    dist = base / "dist"
    (dist / "assets" / "fonts").mkdir(parents=True)
    (dist / "index.html").write_bytes(PAGE)
    (dist / "assets" / "index-3f2a9c.js").write_bytes(SCRIPT)
    (dist / "assets" / "index-77aa01.css").write_bytes(b"body{color:red}")
    (dist / "assets" / "index-77aa01.css.gz").write_bytes(gzip.compress(PRECOMPRESSED))
    (dist / "assets" / "logo-0b1c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (dist / "assets" / "fonts" / "inter-9a.woff2").write_bytes(b"wOF2" + bytes(32))
    (base / "secret.txt").write_text("not for the web")
    (dist / "assets" / "link.js").symlink_to(base / "secret.txt")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CONSOLE_DIR_ENV, str(dist))
        server = new_server(base).start()
    yield server, dist
    server.stop()


def _raw(server: Server, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A GET with the path sent exactly as given (httpx would normalise dot segments) and the body undecoded."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def test_assets_are_cached_for_a_year_and_gzipped(console: tuple[Server, Path]) -> None:
    server, _ = console
    status, headers, body = _raw(server, "/assets/index-3f2a9c.js", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(body) == SCRIPT
    assert len(body) < len(SCRIPT) / 10
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["vary"] == "Accept-Encoding" and headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    assert _raw(server, "/assets/index-3f2a9c.js", {"Accept-Encoding": "gzip"})[2] == body  # kept, the same bytes
    status, headers, body = _raw(server, "/assets/index-3f2a9c.js", {"Accept-Encoding": "gzip;q=0, identity"})
    assert status == 200 and "content-encoding" not in headers and body == SCRIPT
    status, headers, body = _raw(server, "/assets/index-77aa01.css", {"Accept-Encoding": "gzip"})
    assert headers["content-type"] == "text/css; charset=utf-8" and gzip.decompress(body) == PRECOMPRESSED
    status, headers, body = _raw(server, "/assets/logo-0b1c.png", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-type"] == "image/png" and "content-encoding" not in headers
    status, headers, _ = _raw(server, "/assets/fonts/inter-9a.woff2")
    assert status == 200 and headers["content-type"] == "font/woff2"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/nope.js",
        "/assets/",
        "/assets/fonts",
        "/assets/index-77aa01.css.gz",
        "/assets/../index.html",
        "/assets/%2e%2e/index.html",
        "/assets/..%2f..%2fsecret.txt",
        "/assets/fonts/../../../secret.txt",
        "/assets/%2fetc%2fpasswd",
        "/assets/link.js",
    ],
)
def test_nothing_outside_the_assets_is_served(console: tuple[Server, Path], path: str) -> None:
    server, _ = console
    status, headers, body = _raw(server, path)
    assert status == 404, (path, body)
    assert headers["content-type"] == "application/json" and b"not for the web" not in body and b"root" not in body


@pytest.mark.parametrize("path", ["/", "/dashboards/3", "/users/u%201?tab=timeline", "/settings/audit", "/sa/x"])
def test_the_apps_paths_get_its_page_with_a_strict_csp(console: tuple[Server, Path], path: str) -> None:
    server, _ = console
    status, headers, body = _raw(server, path)
    assert status == 200 and body == PAGE and headers["content-type"].startswith("text/html")
    assert headers["cache-control"] == "no-cache"
    csp = headers["content-security-policy"]
    for rule in ("script-src 'self'", "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
                 "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "connect-src 'self'"):  # fmt: skip
        assert rule in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_the_api_and_the_service_keep_their_own_answers(console: tuple[Server, Path]) -> None:
    server, _ = console
    with httpx.Client(base_url=server.url, timeout=60) as web:
        missing = web.get("/api/v1/nope", headers=server.admin)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert web.get("/api/v1/keys/1", headers=server.admin).status_code == 405  # DELETE only
        assert web.get("/api", headers=server.admin).status_code == 404
        assert web.get("/app/v1/nope").status_code == 404
        assert web.get("/healthz").json()
        assert "swagger" in web.get("/docs").text.lower()
        assert "root" not in web.get("/sa").text  # a collector path stays the collector's
        assert "root" not in web.get("/t/o/forged").text  # a message's signed link
        paths = web.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/assets") or p == "/{path}"]
        assert web.post("/dashboards/3").status_code == 404  # the app's pages are GET only


def test_without_a_build_the_page_says_how_to_build_it(console: tuple[Server, Path]) -> None:
    server, dist = console
    (dist / "index.html").rename(dist / "index.html.away")
    try:
        reply = httpx.get(server.url + "/")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
        assert "make console" in reply.text and "npm --prefix web ci" in reply.text
        assert "控制台尚未构建" in reply.text and "The console is not built" in reply.text
        assert httpx.get(server.url + "/dashboards").status_code == 200
    finally:
        (dist / "index.html.away").rename(dist / "index.html")
    assert httpx.get(server.url + "/").content == PAGE


def test_accept_encoding_is_read_as_the_rfc_says() -> None:
    assert accepts_gzip("gzip") and accepts_gzip("br, gzip;q=0.5") and accepts_gzip("*")
    assert not accepts_gzip("") and not accepts_gzip("gzip;q=0") and not accepts_gzip("identity, br")
