"""The morning of an analyst, through the console only: build a funnel in the form, run it, save it, put it on a new
dashboard, turn the people who dropped off into a segment, compare them with everyone, and open one of them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.console.browser import screenshot, watch
from tests.console.conftest import Console
from tests.console.test_console_pages import new_context, open_page, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow


def choose(page: Page, testid: str, text: str, *, search: bool = False) -> None:
    """Pick ``text`` in the Ant Design select ``testid`` (typing it first when the select searches)."""
    page.get_by_test_id(testid).click()
    if search:
        page.keyboard.type(text)
    options = page.locator(".ant-select-dropdown:visible .ant-select-item-option")
    options.filter(has_text=re.compile(re.escape(text))).first.click()


def test_funnel_to_dashboard_to_segment_to_comparison_to_a_person(console: Console, browser: object) -> None:
    context = new_context(browser, "en")  # type: ignore[arg-type]
    page = context.new_page()
    watched = watch(page)
    sign_in(page, console, "analyst")
    open_page(page, console, "/analyses/new", "analysis-kind")
    choose(page, "analysis-kind", "Funnel")
    choose(page, "funnel-step-0", "app_start", search=True)
    choose(page, "funnel-step-1", "order_paid", search=True)
    page.get_by_test_id("analysis-run").click()
    page.get_by_test_id("analysis-chart").wait_for(timeout=60_000)
    page.get_by_test_id("analysis-table").wait_for()
    screenshot(page, "en", "flow-1-funnel")

    page.get_by_test_id("analysis-save").click()
    page.get_by_test_id("insight-name").fill("Start to pay")
    page.get_by_test_id("insight-save-confirm").click()
    page.wait_for_url(re.compile(r"/analyses/insights/\d+"), timeout=30_000)
    insight_id = int(re.search(r"/insights/(\d+)", page.url).group(1))  # type: ignore[union-attr]

    page.get_by_test_id("analysis-add-to-dashboard").click()
    page.get_by_role("radio", name="A new dashboard").check()
    page.get_by_test_id("dashboard-new-name").fill("Morning numbers")
    page.get_by_test_id("dashboard-add-confirm").click()
    page.get_by_test_id("dashboard-add-confirm").wait_for(state="hidden", timeout=30_000)

    page.get_by_test_id("analysis-run").click()
    page.get_by_test_id("analysis-chart").wait_for(timeout=60_000)
    page.get_by_test_id("analysis-to-segment").click()
    page.locator("[data-testid^='to-segment-option-']", has_text="Dropped off").first.click()
    page.get_by_test_id("segment-name").fill("Started, never paid")
    page.get_by_test_id("segment-create-confirm").click()
    page.wait_for_url(re.compile(r"/segments/\d+"), timeout=60_000)
    page.get_by_test_id("segment-detail").wait_for(timeout=60_000)
    screenshot(page, "en", "flow-2-segment")

    page.get_by_test_id("segment-compare").click()
    page.get_by_test_id("compare-table").wait_for(timeout=60_000)
    screenshot(page, "en", "flow-3-compare")

    with console.session("analyst") as http:
        dashboards = http.get("/api/v1/dashboards", params={"project": "default"}).json()
        [board] = [d for d in dashboards if d["name"] == "Morning numbers"]
        shown = http.get(f"/api/v1/dashboards/{board['id']}", params={"project": "default"}).json()
        assert [tile["insight_id"] for tile in shown["layout"]] == [insight_id]
        segments = http.get("/api/v1/segments", params={"project": "default"}).json()
        [segment] = [s for s in segments if s["name"] == "Started, never paid"]
        members = http.get(f"/api/v1/segments/{segment['id']}/members", params={"project": "default", "limit": 1})
        person = members.json()["user_ids"][0]
    open_page(page, console, f"/segments/{segment['id']}", "segment-members-table")
    page.get_by_test_id("segment-members-table").get_by_role("link", name=str(person)).first.click()
    page.get_by_test_id("user-360").wait_for(timeout=60_000)
    page.get_by_test_id("user-timeline").wait_for(timeout=60_000)
    screenshot(page, "en", "flow-4-person")
    watched.check()
    context.close()
