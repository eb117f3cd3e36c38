"""The operation layer's faces agree: every operation is a route of /openapi.json under its own id, with typed
request and reply schemas, and a CLI command prints the same JSON in process as through the running server."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from tests.collect.serving import Server
from userloop.cli.main import app
from userloop.ops import operations
from userloop.sim.run import run_simulation
from userloop.store import Workspace

TRENDS = {
    "kind": "trends",
    "date_range": {"from": "2026-06-01", "to": "2026-06-30"},
    "series": [{"event": "order_paid", "math": "sum", "property": "order_amount"}],
    "breakdown": {"property": "$os"},
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    ws, secrets = Workspace.init(Path(tmp_path_factory.mktemp("ops")) / "ws")
    try:
        run_simulation(ws, "default", users=200, days=40, seed=7, end_date=date(2026, 6, 30))
    finally:
        ws.close()
    assert secrets.admin_token
    return ws.path, secrets.admin_token


@pytest.fixture(scope="module")
def openapi(workspace: tuple[Path, str]) -> dict[str, Any]:
    """The running server's schema (the server stops at once: the CLI test opens the workspace itself)."""
    path, token = workspace
    server = Server(path, "", token).start()
    try:
        return dict(httpx.get(server.url + "/openapi.json", timeout=30).json())
    finally:
        server.stop()


def test_every_operation_is_a_route_under_its_id(openapi: dict[str, Any]) -> None:
    ops = operations()
    routes = {
        spec["operationId"]: (method.upper(), path)
        for path, methods in openapi["paths"].items()
        for method, spec in methods.items()
    }
    ids = [spec["operationId"] for methods in openapi["paths"].values() for spec in methods.values()]
    assert len(ids) == len(set(ids)), "operation ids are unique"
    for op in ops.values():
        assert routes.get(op.id) == (op.method, op.path), op.id


def test_every_operation_has_typed_request_and_reply(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    for op in operations().values():
        assert issubclass(op.request, BaseModel), op.id
        spec = openapi["paths"][op.path][op.method.lower()]
        reply = spec["responses"][str(op.status)]["content"]["application/json"]["schema"]
        assert _typed(reply, schemas), (op.id, reply)
        names = {p["name"] for p in spec.get("parameters", [])}
        body = spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        fields = set(op.request.model_fields)
        if body is not None:
            fields -= set(op.path_params)
            assert set(schemas[body["$ref"].rsplit("/", 1)[1]]["properties"]) == fields, op.id
        else:
            assert names == fields, op.id


def _typed(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether a reply schema names its fields: a model, or an array of models or of a plain type (never a
    free-form object)."""
    if "$ref" in schema:
        return bool(schemas[schema["$ref"].rsplit("/", 1)[1]].get("properties"))
    if schema.get("type") == "array":
        return _typed(schema["items"], schemas)
    return schema.get("type") in {"string", "integer", "number", "boolean"}


def _cli(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "-w", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_cli_prints_the_same_json_in_process_and_through_the_server(
    workspace: tuple[Path, str], tmp_path: Path
) -> None:
    path, token = workspace
    definition = tmp_path / "trends.json"
    definition.write_text(json.dumps(TRENDS))
    saved = _cli(path, "insights", "save", "GMV by OS", str(definition), "--dashboard", "ops")
    commands = [
        ["sql", "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY event"],
        ["insights", "list", "--dashboard", "ops"],
        ["insights", "show", str(saved["id"])],
        ["models", "report", "rfm"],
        ["projects", "list"],
        ["properties", "list"],
        ["rejects", "list"],
    ]
    _cli(path, "models", "run", "--only", "rfm", "--as-of", "2026-06-30")
    local = [_cli(path, *c) for c in commands]
    ran = _cli(path, "query", str(definition))
    server = Server(path, "", token).start()
    try:
        assert [_cli(path, *c) for c in commands] == local
        remote = _cli(path, "query", str(definition))
        assert (remote["kind"], remote["result"], remote["warnings"]) == (ran["kind"], ran["result"], ran["warnings"])
        assert _cli(path, "insights", "delete", str(saved["id"])) == {"deleted": saved["id"]}
    finally:
        server.stop()
    assert _cli(path, "insights", "list") == []
