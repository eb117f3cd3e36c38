"""How heavy the console's first load is and how soon the home page is usable, measured in the browser and left in
web/test-artifacts/speed.json (a figure to report, not a timing the test asserts: the machine is shared)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.console.browser import ARTIFACTS, watch
from tests.console.conftest import Console
from tests.console.test_console_pages import new_context, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow


def first_load_bytes(url: str) -> dict[str, int]:
    """The page and every script and style it names, as sent with gzip, and as plain bytes."""
    with httpx.Client(base_url=url, timeout=60, headers={"Accept-Encoding": "gzip"}) as http:
        page = http.get("/")
        assets = sorted(set(re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)))
        sent, plain = page.num_bytes_downloaded, len(page.content)
        for asset in assets:
            reply = http.get(asset)
            assert reply.status_code == 200 and reply.headers.get("content-encoding") == "gzip", asset
            sent += reply.num_bytes_downloaded
            plain += len(reply.content)
    return {"files": len(assets) + 1, "gzip_bytes": sent, "plain_bytes": plain}


def test_first_load_and_time_to_interactive_of_home(console: Console, browser: Browser) -> None:
    load = first_load_bytes(console.url)
    assert load["gzip_bytes"] < load["plain_bytes"] / 2
    context = new_context(browser, "zh-CN")
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "admin")
    page.goto(console.url + "/data?tab=events")  # away from home, so that home loads afresh below
    page.get_by_test_id("events-table").wait_for(timeout=60_000)
    started = time.perf_counter()
    page.goto(console.url + "/")
    page.get_by_test_id("home-metrics").wait_for(timeout=60_000)
    interactive = time.perf_counter() - started  # the shell and the cards' frames are there and take input
    page.get_by_test_id("metric-value").first.wait_for(timeout=60_000)
    first_value = time.perf_counter() - started
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("loading").first.wait_for(state="hidden", timeout=60_000)
    all_values = time.perf_counter() - started
    timing = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dom_interactive_ms: n.domInteractive, dom_complete_ms: n.domComplete}; })()"
    )
    watched.check()
    context.close()
    figures = {**load, "home_interactive_s": round(interactive, 3), "home_first_value_s": round(first_value, 3),
               "home_all_values_s": round(all_values, 3), **timing}  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "speed.json").write_text(json.dumps(figures, indent=2, sort_keys=True))
    print("console speed:", figures)
