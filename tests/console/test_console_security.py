"""What people may do and what user data may not do, tried through the console in a real browser and through the
API beside it: a viewer changes nothing, an analyst manages no accounts, and markup arriving as an event name, a
property value or a segment name is shown as text and never runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.console.browser import watch
from tests.console.conftest import Console
from tests.console.test_console_pages import new_context, open_page, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

PAYLOAD = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
RULE = {"type": "event", "event": "app_start", "window": {"last": 30}}


def ran_script(page: Page) -> object:
    return page.evaluate("window.__xss")


def test_markup_in_event_names_property_values_and_segment_names_is_text(console: Console, browser: Browser) -> None:
    now = int(time.time() * 1000)
    records = [
        {"type": "track", "event": "app_start", "distinct_id": "xss-person", "time": now,
         "properties": {"xss_note": SCRIPT + PAYLOAD}},
        {"type": "track", "event": PAYLOAD, "distinct_id": "xss-person", "time": now},
    ]  # fmt: skip
    sent = httpx.post(console.url + "/api/v1/events:batch", json=records, timeout=30,
                      headers={"Authorization": f"Bearer {console.server.write_key}"})  # fmt: skip
    assert sent.status_code == 200 and sent.json()["accepted"] == 1, sent.text  # the markup name is rejected
    console.server.settle()
    with console.session("admin") as http:
        made = http.post("/api/v1/segments", json={"project": "default", "name": PAYLOAD, "rule": RULE})
        assert made.status_code == 201, made.text
    context = new_context(browser, "en")
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "admin")
    seen = {
        "segments": ("/segments?tab=segments", "segments-table", PAYLOAD),
        "rejects": ("/data?tab=rejects", "rejects-table", PAYLOAD),
        "person": ("/users/xss-person", "user-360", "xss_note"),
    }
    for name, (path, ready, text) in seen.items():
        open_page(page, console, path, ready)
        assert ran_script(page) is None, name
        assert text in page.inner_text("body"), name
        assert page.locator("img[src='x']").count() == 0, name
    watched.check()
    context.close()


def test_a_viewer_changes_nothing_in_the_console_nor_through_the_api(console: Console, browser: Browser) -> None:
    context = new_context(browser, "en")
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "viewer")
    open_page(page, console, "/segments?tab=segments", "segments-table")
    assert page.get_by_test_id("segment-new").count() == 0 or page.get_by_test_id("segment-new").is_disabled()
    open_page(page, console, "/settings?tab=events", "events-table")
    for tab in ("accounts", "keys", "audit"):
        assert page.get_by_test_id(f"settings-tab-{tab}").count() == 0, tab
    watched.check()
    context.close()
    with console.session("viewer") as http:
        refused = {
            "segment": http.post("/api/v1/segments", json={"project": "default", "name": "v", "rule": RULE}),
            "tag": http.post("/api/v1/tags/starter", json={"project": "default"}),
            "insight": http.post("/api/v1/insights", json={"project": "default", "name": "v", "query": {}}),
            "accounts": http.get("/api/v1/accounts"),
        }
    for what, reply in refused.items():
        assert reply.status_code == 403, (what, reply.text)


def test_an_analyst_builds_but_manages_no_accounts(console: Console, browser: Browser) -> None:
    context = new_context(browser, "en")
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "analyst")
    open_page(page, console, "/settings?tab=events", "events-table")
    assert page.get_by_test_id("settings-tab-accounts").count() == 0
    open_page(page, console, "/segments?tab=segments", "segments-table")
    assert page.get_by_test_id("segment-new").is_enabled()
    watched.check()
    context.close()
    with console.session("analyst") as http:
        assert http.get("/api/v1/accounts").status_code == 403
        made = http.post("/api/v1/accounts", json={"login": "intruder", "password": "long-enough-pw", "roles": []})
        assert made.status_code == 403, made.text
        segment = http.post("/api/v1/segments", json={"project": "default", "name": "analyst's", "rule": RULE})
        assert segment.status_code == 201, segment.text
