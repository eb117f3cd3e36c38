"""docs/api.md and the API agree: the documented ``POST /api/v1/query`` body, read from the doc's code block,
runs against a real server and gives the numbers an independent SQL sum gives; a bare definition is refused with
the form to use; the project settings (money property) read and change as documented."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collect.serving import Server
from userloop.sim.run import run_simulation
from userloop.store import Workspace

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_query_body() -> dict[str, Any]:
    """The JSON block that follows the ``<!-- query-example -->`` marker in docs/api.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- query-example -->\s*```json\n(.*?)\n```", text, re.S)
    assert match, "docs/api.md lost its POST /api/v1/query example"
    body: dict[str, Any] = json.loads(match.group(1))
    return body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ws, secrets = Workspace.init(Path(tmp_path_factory.mktemp("apidoc")) / "ws")
    try:
        run_simulation(ws, "default", users=300, days=45, seed=11, end_date=date(2026, 6, 30))
    finally:
        ws.close()
    assert secrets.admin_token
    server = Server(ws.path, "", secrets.admin_token).start()
    yield server
    server.stop()


def test_the_documented_body_runs_and_matches_sql(served: Server) -> None:
    body = documented_query_body()
    reply = httpx.post(served.url + "/api/v1/query", headers=served.admin, json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["kind"] == body["definition"]["kind"] and doc["query_id"] == body["query_id"]
    (line,) = doc["result"]["series"]
    # the same sum, independently: local (Asia/Shanghai) June days, through analyst SQL
    check = httpx.post(served.url + "/api/v1/sql", headers=served.admin, timeout=60, json={"query": (
        "SELECT sum(order_amount) FROM events WHERE event = 'order_paid' AND "
        "CAST(timezone('Asia/Shanghai', CAST(time AS TIMESTAMPTZ)) AS DATE) BETWEEN DATE '2026-06-01' "
        "AND DATE '2026-06-30'")})  # fmt: skip
    assert check.status_code == 200, check.text
    expected = check.json()["rows"][0][0]
    assert expected > 0
    assert line["total"] == pytest.approx(expected, rel=1e-9)
    assert sum(line["data"]) == pytest.approx(expected, rel=1e-9)


def test_a_bare_definition_is_refused_with_the_form_to_use(served: Server) -> None:
    bare = documented_query_body()["definition"]
    reply = httpx.post(served.url + "/api/v1/query", headers=served.admin, json=bare, timeout=30)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and '"definition"' in error["message"], error


def test_the_money_property_is_a_project_setting(served: Server) -> None:
    url = served.url + "/api/v1/projects/default"
    assert httpx.get(url, headers=served.admin).json()["money_property"] == "order_amount"
    refused = httpx.patch(url, headers=served.admin, json={"money_property": "payment_method"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "money_property_invalid" and "NUMBER" in error["message"] and "hint" in error
    try:
        changed = httpx.patch(url, headers=served.admin, json={"money_property": "item_count"})
        assert changed.status_code == 200 and changed.json()["money_property"] == "item_count"
        # the dashboard's GMV panel now sums it
        panels = httpx.get(served.url + "/api/v1/dashboards/core-metrics", headers=served.admin).json()
        sums = [s["property"] for p in panels for s in p["definition"].get("series", []) if s.get("math") == "sum"]
        assert sums and set(sums) == {"item_count"}
        # a change of the collector's settings alone leaves the money property as it is
        limited = httpx.patch(url, headers=served.admin, json={"rate_per_second": 500})
        assert limited.status_code == 200 and limited.json()["money_property"] == "item_count"
    finally:
        httpx.patch(url, headers=served.admin, json={"money_property": "order_amount", "rate_per_second": None})
