"""``/docs`` and ``/redoc`` work on a machine without internet: every asset their pages load is served by
userloop itself, without credentials, with the right content type (a real server on loopback)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.collect.serving import ONE_SHOT_TLS, Server

CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


class _Refs(HTMLParser):
    """Every URL a page loads: ``src`` and ``href`` attributes, and ``url: '…'`` / ``spec-url`` in scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "spec-url"} and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.inline.append(data)


def page_refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    inline = "\n".join(parser.inline)
    quoted = re.findall(r"url:\s*'([^']+)'", inline)
    return parser.urls + quoted


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(server: Server, page: str) -> None:
    reply = httpx.get(server.url + page, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    # no absolute URL to any host, in attributes or inline scripts (the old pages loaded the jsDelivr CDN)
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s'\"<>]+", html)
    refs = page_refs(html)
    assets = [r for r in refs if r.endswith((".js", ".css", ".png"))]
    assert len(assets) == (3 if page == "/docs" else 2), refs  # bundle, css, icon / redoc bundle, icon
    csp = reply.headers["content-security-policy"]
    assert "http" not in csp and "script-src 'self'" in csp
    for ref in refs:
        url = urljoin(server.url + page, ref)
        assert urlsplit(url).netloc == f"127.0.0.1:{server.port}"
        # no credentials, as a browser opening the page sends none
        got = httpx.get(url, timeout=10, verify=ONE_SHOT_TLS)
        assert got.status_code == 200, (ref, got.status_code)
        kind = next((v for k, v in CONTENT_TYPES.items() if ref.endswith(k)), "json" if "openapi" in ref else None)
        assert kind is not None and kind in got.headers["content-type"], (ref, got.headers["content-type"])
        assert len(got.content) > (1000 if kind != "image/png" else 100)


def test_the_bundles_are_the_real_ones(server: Server) -> None:
    swagger = httpx.get(server.url + "/docs-assets/swagger-ui-bundle.js", timeout=10).text
    assert "SwaggerUIBundle" in swagger
    redoc = httpx.get(server.url + "/docs-assets/redoc.standalone.js", timeout=10).text
    assert "Redoc" in redoc
    assert httpx.get(server.url + "/docs-assets/nope.js", timeout=10).status_code == 404
