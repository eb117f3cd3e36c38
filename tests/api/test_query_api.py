"""Analyses over HTTP: POST /api/v1/query, cancellation, insights CRUD, the core-metrics dashboard; and the CLI
commands talking to that server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.collect.serving import ONE_SHOT_TLS, Server
from userloop.cli.main import app
from userloop.sim.run import run_simulation
from userloop.store import Workspace

END = date(2026, 6, 30)
TRENDS = {
    "kind": "trends",
    "date_range": {"from": "2026-06-01", "to": "2026-06-30"},
    "series": [{"event": "order_paid", "math": "sum", "property": "order_amount"}, {"event": "$any", "math": "dau"}],
    "breakdown": {"property": "$os"},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    ws, secrets = Workspace.init(Path(tmp_path_factory.mktemp("q")) / "ws")
    try:
        run_simulation(ws, "default", users=600, days=90, seed=5, end_date=END)
    finally:
        ws.close()
    assert secrets.admin_token
    server = Server(ws.path, "", secrets.admin_token).start()
    yield server, {"Authorization": f"Bearer {secrets.admin_token}"}
    server.stop()


def _post(served: tuple[Server, dict[str, str]], path: str, body: dict[str, Any]) -> httpx.Response:
    server, headers = served
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60, verify=ONE_SHOT_TLS)


def test_query_runs_caches_and_explains(served: tuple[Server, dict[str, str]]) -> None:
    r = _post(served, "/api/v1/query", {"definition": TRENDS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "trends" and not body["cached"]
    assert len(body["result"]["buckets"]) == 30
    assert {line["breakdown"] for line in body["result"]["series"]} >= {"Android", "iOS"}
    again = _post(served, "/api/v1/query", {"definition": TRENDS}).json()
    assert again["cached"] and again["result"] == body["result"]
    explained = _post(served, "/api/v1/query", {"definition": TRENDS, "explain": True}).json()
    assert "SELECT" in explained["sql"]["s0"]


def test_bad_definitions_are_400_with_a_reason(served: tuple[Server, dict[str, str]]) -> None:
    cases = [
        ({"kind": "nope"}, "unknown analysis kind"),
        ({"kind": "trends", "series": []}, "series"),
        ({"kind": "trends", "series": [{"event": "x", "filters": [{"property": "nope"}]}]}, "needs one value"),
        ({"kind": "trends", "series": [{"event": "x", "math": "sum", "property": "nope"}]}, "unknown event property"),
        ({"kind": "trends", "series": [{"event": "x"}], "date_range": {"from": "2026-02-01", "to": "2026-01-01"}},
         "before"),
    ]  # fmt: skip
    for definition, reason in cases:
        r = _post(served, "/api/v1/query", {"definition": definition})
        assert r.status_code == 400, (definition, r.text)
        assert reason in r.json()["error"]["message"], r.text
    server, headers = served
    assert httpx.delete(server.url + "/api/v1/query/none-such", headers=headers).status_code == 404
    assert httpx.post(server.url + "/api/v1/query", json={"definition": TRENDS}).status_code == 401


def test_insights_crud_and_run(served: tuple[Server, dict[str, str]]) -> None:
    server, headers = served
    created = _post(served, "/api/v1/insights", {"name": "GMV by OS", "definition": TRENDS, "dashboard": "ops"})
    assert created.status_code == 201, created.text
    iid = created.json()["id"]
    listed = httpx.get(server.url + "/api/v1/insights", params={"dashboard": "ops"}, headers=headers).json()
    assert [i["id"] for i in listed] == [iid]
    changed = httpx.put(server.url + f"/api/v1/insights/{iid}", json={"name": "GMV"}, headers=headers).json()
    assert changed["name"] == "GMV" and changed["definition"] == TRENDS
    bad = httpx.put(server.url + f"/api/v1/insights/{iid}", json={"definition": {"kind": "x"}}, headers=headers)
    assert bad.status_code == 400
    ran = httpx.post(server.url + f"/api/v1/insights/{iid}/run", headers=headers, timeout=60).json()
    assert ran["insight"]["id"] == iid and ran["kind"] == "trends"
    assert httpx.delete(server.url + f"/api/v1/insights/{iid}", headers=headers).status_code == 200
    assert httpx.get(server.url + f"/api/v1/insights/{iid}", headers=headers).status_code == 404


def test_core_metrics_dashboard_runs_every_panel(served: tuple[Server, dict[str, str]]) -> None:
    server, headers = served
    doc = httpx.post(server.url + "/api/v1/dashboards/core-metrics/run", headers=headers, timeout=300).json()
    errors = {p["key"]: p["error"] for p in doc["panels"] if "error" in p}
    assert not errors
    assert len(doc["panels"]) == len(httpx.get(server.url + "/api/v1/dashboards/core-metrics", headers=headers).json())


def test_cli_query_and_insights_through_the_server(served: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, _ = served
    definition = tmp_path / "d.json"
    definition.write_text(json.dumps(TRENDS))
    runner = CliRunner()
    ws = ["-w", str(server.path)]
    r = runner.invoke(app, ["query", str(definition), *ws, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["kind"] == "trends"
    r = runner.invoke(app, ["query", str(definition), *ws])
    assert r.exit_code == 0 and "total" in r.output
    r = runner.invoke(app, ["insights", "save", "cli one", str(definition), *ws, "--json"])
    assert r.exit_code == 0, r.output
    iid = json.loads(r.output)["id"]
    assert runner.invoke(app, ["insights", "run", str(iid), *ws, "--json"]).exit_code == 0
    assert runner.invoke(app, ["insights", "delete", str(iid), *ws]).exit_code == 0
    definition.write_text("{not json")
    r = runner.invoke(app, ["query", str(definition), *ws, "--json"])
    assert r.exit_code == 2 and "not valid JSON" in json.loads(r.output)["error"]["message"]
