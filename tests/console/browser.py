"""The console in a real browser: Debian's Chromium driven by Playwright, a server on loopback serving the built
console, pages checked for console errors and untranslated keys, screenshots kept as build artefacts.

Playwright's own browser downloads are never used (``make test`` installs Debian's ``chromium``); a missing browser
or a missing build fails the tests with the command that fixes it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
#: Where the tests leave their screenshots (a build artefact: gitignored, kept by CI's workspace).
ARTIFACTS = ROOT / "web" / "test-artifacts"
LANGS = ("zh-CN", "en")
#: What an untranslated key looks like on screen: area.key or area.sub.key in ASCII (real text has spaces, CJK or
#: capitals). Matched against the visible text of a page.
_AREAS = "common|login|home|analyses|dashboards|data|users|segments|models|settings"
_KEY = re.compile(rf"\b(?:{_AREAS})\.[a-z][A-Za-z0-9_.]+\b")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's Chromium is not installed: run `make browsers` (apt-get install chromium)")
    return path


def require_build() -> Path:
    if not (DIST / "index.html").exists():
        pytest.fail("the console is not built: run `make console` (npm ci, then the Vite build in web/)")
    return DIST


@dataclass
class Watched:
    """A page with what went wrong on it: console errors and warnings, uncaught exceptions, failed API calls."""

    page: Page
    problems: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def check(self) -> None:
        """Fail with every problem seen, and with any untranslated key visible on the page."""
        # Identifiers shown as data (operation ids in the audit log, event names) are set in code; the rest is prose.
        text = self.page.evaluate(
            "(() => { const copy = document.body.cloneNode(true);"
            " copy.querySelectorAll('code, kbd').forEach((e) => e.remove());"
            " document.body.appendChild(copy); copy.style.display = 'block';"
            " const text = copy.innerText; copy.remove(); return text; })()"
        )
        keys = sorted(set(_KEY.findall(text)))
        problems = self.problems + ([f"untranslated keys on {self.page.url}: {keys}"] if keys else [])
        self.problems.clear()
        assert not problems, "\n".join(problems)


def watch(page: Page) -> Watched:
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if _expected(message):
            return
        if message.type in ("error", "warning"):
            watched.problems.append(f"console {message.type} on {page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.problems.append(f"uncaught on {page.url}: {exc}"))
    page.on(
        "response",
        lambda r: (
            watched.problems.append(f"{r.status} from {r.request.method} {r.url}")
            if r.status >= 500 and "/api/" in r.url
            else None
        ),
    )
    return watched


#: Answers the console asks for knowing they may be refused: "who am I?" before signing in is a 401.
EXPECTED_REFUSALS = ((401, "/api/v1/auth/me"),)


def _expected(message: ConsoleMessage) -> bool:
    """Whether ``message`` is the browser's note of an expected refusal (it logs every 4xx as an error)."""
    url = str(message.location.get("url", ""))
    return message.text.startswith("Failed to load resource") and any(
        f"status of {status} " in message.text and url.split("?", maxsplit=1)[0].endswith(path)
        for status, path in EXPECTED_REFUSALS
    )


@contextmanager
def launched() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, lang: str, name: str) -> Path:
    """A full-page screenshot under web/test-artifacts/screenshots/<lang>/<name>.png."""
    target = ARTIFACTS / "screenshots" / lang / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target
