"""The console's pages on a running service (the demo's 100,000 people × 180 days): how long each takes to show its
data in Debian's Chromium, against the sign-in page (static, no analysis) loaded in the same run.

    make demo                                   # prints the console's address and the admin's password
    python -m bench.console --url http://127.0.0.1:8000 --password '…'

Each page is opened three times (the first warms the analysis cache as an operator's first visit of the day does;
the figure is the median of the warm loads, with the cold one beside it). A page "loads" when its main view is
visible and nothing is loading. The bar (issue #17): every page under 1.5 s, except analyses that say they are
computing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from bench.harness import main_guard, report

PAGES = (
    ("home", "/", "home-metrics"),
    ("analyses", "/analyses", "insight-list"),
    ("dashboards", "/dashboards", "dashboard-list"),
    ("data-events", "/data?tab=events", "events-table"),
    ("data-properties", "/data?tab=properties", "properties-table"),
    ("data-rejects", "/data?tab=rejects", "rejects-table"),
    ("users", "/users", "user-search"),
    ("segments", "/segments?tab=segments", "segments-table"),
    ("tags", "/segments?tab=tags", "tags-table"),
    ("models-rfm", "/models?tab=rfm", "rfm-table"),
    ("models-lifecycle", "/models?tab=lifecycle", "lifecycle-sankey"),
    ("models-clv", "/models?tab=clv", "clv-histogram"),
    ("settings-accounts", "/settings?tab=accounts", "accounts-table"),
    ("settings-audit", "/settings?tab=audit", "audit-table"),
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's Chromium is needed: make browsers")
        return 1
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()

        def load(path: str, ready: str) -> float:
            started = time.perf_counter()
            page.goto(args.url + path)
            page.get_by_test_id(ready).first.wait_for(state="visible", timeout=120_000)
            page.get_by_test_id("loading").first.wait_for(state="hidden", timeout=120_000)
            page.get_by_test_id("analysis-computing").first.wait_for(state="hidden", timeout=120_000)
            return time.perf_counter() - started

        reference = statistics.median(load("/login", "login-name") for _ in range(args.repeat))
        page.get_by_test_id("login-name").fill(args.login)
        page.get_by_test_id("login-password").fill(args.password)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("nav").wait_for(timeout=60_000)
        slowest = 0.0
        for name, path, ready in PAGES:
            times = [load(path, ready) for _ in range(args.repeat)]
            warm = statistics.median(times[1:]) if len(times) > 1 else times[0]
            slowest = max(slowest, warm)
            report("console", f"page {name}", warm, "s", cold=times[0], reference="sign-in page",
                   reference_value=reference, ratio=warm / reference, target="<= 1.5 s")  # fmt: skip
        report("console", "slowest page", slowest, "s", target="<= 1.5 s")
        browser.close()
    return 0


if __name__ == "__main__":
    main_guard(main)
