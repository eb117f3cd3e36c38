"""Every page of the console, in Chinese and in English, signed in through the sign-in page: each shows its data
with no console error, no failed API call and no untranslated key, and leaves a screenshot
(web/test-artifacts/screenshots/<lang>/<page>.png) and its load time (web/test-artifacts/timings.json)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest

from tests.console.browser import ARTIFACTS, LANGS, screenshot, watch
from tests.console.conftest import Console

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.slow

#: (screenshot name, path, what must be visible once the page has its data)
PAGES = (
    ("home", "/", "home-metrics"),
    ("analyses", "/analyses", "insight-list"),
    ("analysis-funnel", "/analyses/new?kind=funnel", "analysis-kind"),
    ("dashboards", "/dashboards", "dashboard-list"),
    ("data-events", "/data?tab=events", "events-table"),
    ("data-properties", "/data?tab=properties", "properties-table"),
    ("data-collector", "/data?tab=collector", "collector-status"),
    ("data-rejects", "/data?tab=rejects", "rejects-table"),
    ("data-import", "/data?tab=import", "import-upload|import-no-right"),
    ("users", "/users", "user-search"),
    ("segments", "/segments?tab=segments", "segments-table"),
    ("tags", "/segments?tab=tags", "tags-table"),
    ("segment-new", "/segments/new", "segment-builder"),
    ("segment-compare", "/segments/compare", "segment-compare-page"),
    ("models-rfm", "/models?tab=rfm", "rfm-table"),
    ("models-lifecycle", "/models?tab=lifecycle", "lifecycle-sankey"),
    ("models-value", "/models?tab=value", "value-tiers"),
    ("models-clv", "/models?tab=clv", "clv-histogram"),
    ("models-churn", "/models?tab=churn", "model-run"),
    ("settings-projects", "/settings?tab=projects", "projects-table"),
    ("settings-events", "/settings?tab=events", "events-table"),
    ("settings-keys", "/settings?tab=keys", "keys-table"),
    ("settings-accounts", "/settings?tab=accounts", "accounts-table"),
    ("settings-audit", "/settings?tab=audit", "audit-table"),
)


def new_context(browser: Browser, lang: str) -> BrowserContext:
    context = browser.new_context(locale=lang, viewport={"width": 1440, "height": 900})
    context.add_init_script(f"window.localStorage.setItem('userloop.lang', {json.dumps(lang)})")
    return context


def sign_in(page: Page, console: Console, login: str) -> None:
    page.goto(console.url + "/login")
    page.get_by_test_id("login-name").fill(login)
    page.get_by_test_id("login-password").fill(console.password(login))
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("nav").wait_for(timeout=30_000)


def open_page(page: Page, console: Console, path: str, ready: str) -> float:
    """Go to ``path`` and wait until ``ready`` (test ids, ``|`` between alternatives) is visible with nothing
    loading; the seconds it took."""
    started = time.perf_counter()
    page.goto(console.url + path)
    shown = page.locator(", ".join(f"[data-testid='{r}']" for r in ready.split("|")))
    shown.first.wait_for(state="visible", timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.get_by_test_id("loading").first.wait_for(state="hidden", timeout=60_000)
    return time.perf_counter() - started


def a_person(console: Console) -> str:
    with console.session("admin") as http:
        members = http.get("/api/v1/segments/1/members", params={"project": "default", "limit": 1}).json()
    return str(members["user_ids"][0])


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_shows_its_data_translated_and_without_errors(console: Console, browser: Browser, lang: str) -> None:
    context = new_context(browser, lang)
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "admin")
    timings: dict[str, float] = {}
    pages = [*PAGES, ("user-360", f"/users/{a_person(console)}", "user-360")]
    for name, path, ready in pages:
        timings[name] = round(open_page(page, console, path, ready), 3)
        screenshot(page, lang, name)
        watched.check()
    context.close()
    record = ARTIFACTS / "timings.json"
    known = json.loads(record.read_text()) if record.exists() else {}
    known[lang] = timings
    record.write_text(json.dumps(known, indent=2, sort_keys=True))


#: The pages every role sees (the settings tabs of admins aside): each role walks them without an error.
SHARED = tuple(p for p in PAGES if not p[0].startswith("settings-") or p[0] == "settings-events")


@pytest.mark.parametrize("login", ["viewer", "analyst", "operator"])
def test_each_role_walks_every_page_it_sees(console: Console, browser: Browser, login: str) -> None:
    context = new_context(browser, "zh-CN" if login == "analyst" else "en")
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, login)
    for _name, path, ready in SHARED:
        open_page(page, console, path, ready)
        watched.check()
    context.close()
