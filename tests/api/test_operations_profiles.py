"""Tags, segments, users and imports on the operation layer: every operation is a route of /openapi.json under its
own id, a command prints the same JSON in process and through the running server, the routes whose content is a
file (CSV upload, export, import) run the same functions, and a body's project may be named by ``?project=``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.collect.serving import Server
from userloop.cli.main import app
from userloop.ops import operations
from userloop.sim.run import run_simulation
from userloop.store import Workspace

DOMAINS = ("tags", "segments", "users")
RULE = {
    "type": "event",
    "event": "order_paid",
    "count": {"op": "gte", "value": 1},
    "window": {"from": "2026-05-01", "to": "2026-06-30"},
}
UPLOAD_TAG = {"name": "vip", "kind": "upload", "type": "bool", "title_zh": "VIP", "title_en": "VIP",
              "source": {"from": "upload"}}  # fmt: skip


def _cli(path: Path, *args: str, input: str | None = None) -> Any:
    result = CliRunner().invoke(app, [*args, "-w", str(path), "--json"], input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A small business with the starter tags computed, a rule segment and an upload tag, made in process."""
    folder = Path(tmp_path_factory.mktemp("opsprof"))
    ws, secrets = Workspace.init(folder / "ws")
    try:
        run_simulation(ws, "default", users=200, days=40, seed=5, end_date=date(2026, 6, 30))
    finally:
        ws.close()
    assert secrets.admin_token
    _cli(ws.path, "tags", "starter")
    _cli(ws.path, "tags", "materialise", "--date", "2026-06-30")
    rule = folder / "rule.json"
    rule.write_text(json.dumps(RULE))
    _cli(ws.path, "segments", "create", "buyers", str(rule))
    _cli(ws.path, "tags", "create", "-", input=json.dumps(UPLOAD_TAG))
    return ws.path, secrets.admin_token


def test_every_profile_operation_is_a_route_under_its_id(workspace: tuple[Path, str]) -> None:
    path, token = workspace
    server = Server(path, "", token).start()
    try:
        spec = httpx.get(server.url + "/openapi.json", timeout=30).json()
    finally:
        server.stop()
    routes = {
        op["operationId"]: (method.upper(), route) for route, ops in spec["paths"].items() for method, op in ops.items()
    }
    ours = [op for op in operations().values() if op.id.split(".")[0] in DOMAINS]
    assert len(ours) >= 20
    for op in ours:
        assert routes.get(op.id) == (op.method, op.path), op.id
    assert routes["tags.upload"] == ("POST", "/api/v1/tags/{tag}/upload")
    assert routes["segments.export"] == ("GET", "/api/v1/segments/{segment_id}/export")
    upload = spec["paths"]["/api/v1/tags/{tag}/upload"]["post"]
    assert set(upload["requestBody"]["content"]) == {"text/csv"}
    assert "application/octet-stream" in spec["paths"]["/api/v1/imports/{kind}"]["post"]["requestBody"]["content"]


def test_the_cli_prints_the_same_json_in_process_and_through_the_server(
    workspace: tuple[Path, str], tmp_path: Path
) -> None:
    path, token = workspace
    segment = next(s for s in _cli(path, "segments", "list") if s["name"] == "buyers")
    member = _cli(path, "segments", "members", str(segment["id"]), "--limit", "1")["user_ids"][0]
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(RULE))
    commands = [
        ["tags", "list"],
        ["tags", "show", "rfm_class"],
        ["segments", "list"],
        ["segments", "show", str(segment["id"])],
        ["segments", "members", str(segment["id"]), "--limit", "5"],
        ["segments", "changes", str(segment["id"]), "--date", segment["refreshed_at"][:10]],
        ["segments", "fields"],
        ["segments", "compare", str(segment["id"])],
        ["users", "show", str(member)],
        ["users", "timeline", str(member), "--limit", "3"],
    ]
    local = [_cli(path, *c) for c in commands]
    estimate = _cli(path, "segments", "estimate", str(rule))
    exported = _cli(path, "segments", "export", str(segment["id"]), "--fields", "user_id,tag:rfm_class",
                    "-o", str(tmp_path / "local.csv"))  # fmt: skip
    server = Server(path, "", token).start()
    try:
        remote = [_cli(path, *c) for c in commands]
        for command, here, there in zip(commands, local, remote, strict=True):
            if command[:2] == ["segments", "compare"]:
                here.pop("seconds"), there.pop("seconds")
            assert here == there, command
        again = _cli(path, "segments", "estimate", str(rule))
        assert {**again, "took_ms": 0} == {**estimate, "took_ms": 0}
        downloaded = _cli(path, "segments", "export", str(segment["id"]), "--fields", "user_id,tag:rfm_class",
                          "-o", str(tmp_path / "remote.csv"))  # fmt: skip
        assert downloaded["bytes"] == exported["bytes"] == (tmp_path / "remote.csv").stat().st_size
        assert (tmp_path / "remote.csv").read_text() == (tmp_path / "local.csv").read_text()
        csv = tmp_path / "vip.csv"
        csv.write_text(f"id\n{member}\n999999999\n")
        uploaded = _cli(path, "tags", "upload", "vip", str(csv), "--id-kind", "user_id")
        assert (uploaded["accepted"], uploaded["rejected"], uploaded["rejects"][0]["row"]) == (1, 1, 2)
        assert _cli(path, "tags", "delete", "vip") == {"deleted": "vip"}
    finally:
        server.stop()
    assert "vip" not in {t["name"] for t in _cli(path, "tags", "list")}


def test_a_body_names_its_project_or_the_query_string_does(workspace: tuple[Path, str]) -> None:
    path, token = workspace
    server = Server(path, "", token).start()
    headers = {"Authorization": f"Bearer {token}"}
    url = server.url + "/api/v1/segments/estimate"
    try:
        default = httpx.post(url, json={"rule": RULE}, headers=headers, timeout=60)
        named = httpx.post(url, params={"project": "default"}, json={"rule": RULE}, headers=headers, timeout=60)
        elsewhere = httpx.post(url, params={"project": "nope"}, json={"rule": RULE}, headers=headers, timeout=60)
        in_body = httpx.post(url, json={"rule": RULE, "project": "nope"}, headers=headers, timeout=60)
    finally:
        server.stop()
    assert default.status_code == named.status_code == 200, (default.text, named.text)
    assert default.json()["size"] == named.json()["size"] > 0
    assert elsewhere.status_code == in_body.status_code == 404, (elsewhere.text, in_body.text)
    assert elsewhere.json()["error"]["code"] == "not_found"
