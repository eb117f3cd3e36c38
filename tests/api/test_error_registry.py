"""One error registry, one error body: every code the product raises is registered with its status, and every
4xx/5xx — from a route, the framework, the limits or the last-resort guard — and the CLI's ``--json`` answer
``{"error": {"code", "message", "field"?, "hint"?}}``."""

from __future__ import annotations

import ast
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import userloop
from tests.collect.serving import ONE_SHOT_TLS, Server, new_server
from userloop.api.client import _error
from userloop.api.limits import MAX_URL_BYTES
from userloop.cli.main import app as cli
from userloop.core.errors import (
    CODES,
    STATUS_CODES,
    NotFoundError,
    UnregisteredCodeError,
    ValidationError,
)

#: A server with routes that raise what a test names, next to the real ones.
LAUNCH = """
import sys
from pathlib import Path

from fastapi import HTTPException

from userloop.api.app import create_app
from userloop.api.server import run_app
from userloop.collect.door import Limits
from userloop.core.errors import UserloopError
from userloop.service.guards import GuardConfig
from userloop.service.runtime import Runtime, ServiceConfig

guards = GuardConfig(failed_auths_per_minute=float(sys.argv[3]))
config = ServiceConfig(port=int(sys.argv[2]), limits=Limits(max_body_bytes=1 << 16), guards=guards)
app = create_app(Runtime(Path(sys.argv[1]), config))


@app.get("/test/raise/{code}", include_in_schema=False)
def raise_code(code: str, field: str | None = None, hint: str | None = None) -> None:
    raise UserloopError(f"raised {code}", code=code, field=field, hint=hint)


@app.get("/test/http/{status}", include_in_schema=False)
def raise_http(status: int, code: str | None = None) -> None:
    raise HTTPException(status, {"code": code, "message": f"http {status}"} if code else f"http {status}")


@app.get("/test/overflow", include_in_schema=False)
def overflow() -> None:
    raise OverflowError("Python int too large to convert to C long")


@app.get("/test/crash", include_in_schema=False)
def crash() -> None:
    raise RuntimeError("a bug")


run_app(app, config)
"""
SRC = Path(userloop.__file__).parent


def launch(tmp: Path, *, failed_auths_per_minute: float = 1000.0) -> Server:
    server = new_server(tmp)
    server.spawn(LAUNCH, [str(server.path), str(server.port), str(failed_auths_per_minute)])
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = launch(Path(tmp_path_factory.mktemp("errors")))
    httpx.get(f"{srv.url}/test/raise/not_found", timeout=120)  # the first answer loads the error path's imports
    yield srv
    srv.stop()


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` of a response, once its body is checked to be the one error body and nothing else."""
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "field", "hint"}, error
    assert error["code"] in CODES and isinstance(error["message"], str) and error["message"], error
    return dict(error)


# the registry -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", sorted(CODES))
def test_every_registered_code_answers_its_status_with_the_one_body(server: Server, code: str) -> None:
    entry = CODES[code]
    response = httpx.get(f"{server.url}/test/raise/{code}")
    assert response.status_code == entry.status, response.text
    hint = {"hint": entry.hint} if entry.hint else {}
    assert error_of(response) == {"code": code, "message": f"raised {code}", **hint}
    assert entry.description.endswith(".") and entry.description[0].isupper(), entry


def test_field_and_hint_travel_in_the_body(server: Server) -> None:
    params = {"field": "definition.steps", "hint": "add a second step"}
    response = httpx.get(f"{server.url}/test/raise/invalid", params=params)
    assert response.status_code == 400
    assert error_of(response) == {"code": "invalid", "message": "raised invalid", **params}


def test_an_unregistered_code_fails_when_the_error_is_made() -> None:
    with pytest.raises(UnregisteredCodeError, match="'not_fuond' is not registered"):
        NotFoundError("no such thing", code="not_fuond")
    with pytest.raises(UnregisteredCodeError, match="'invlaid'"):
        type("TypoError", (ValidationError,), {"code": "invlaid"})
    assert ValidationError("x").status == 400 and NotFoundError("x").status == 404


def _code_literals() -> dict[str, list[str]]:
    """Every error code written in the package's source: ``code="…"`` arguments, ``code = "…"`` class attributes,
    ``code: str = "…"`` parameter defaults, ``HTTPException(status, {"code": "…", …})`` details, and the code
    argument of the functions that make an error body; each with where it is written."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            for literal in _codes_in(node):
                found.setdefault(literal, []).append(f"{where}:{node.lineno}")  # type: ignore[attr-defined]
    return found


def _codes_in(node: ast.AST) -> list[str]:
    def text(value: ast.AST | None) -> list[str]:
        return [value.value] if isinstance(value, ast.Constant) and isinstance(value.value, str) else []

    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        first = text(node.args[1] if name == "send_error" and len(node.args) > 1 else None)
        first += text(node.args[0] if name in ("json_error", "error_body") and node.args else None)
        details = [a for a in node.args if name == "HTTPException" and isinstance(a, ast.Dict)]
        pairs = [(k, v) for d in details for k, v in zip(d.keys, d.values, strict=True)]
        first += [code for k, v in pairs if text(k) == ["code"] for code in text(v)]
        return first + [s for k in node.keywords if k.arg == "code" for s in text(k.value)]
    if isinstance(node, ast.ClassDef):
        assigns = [s for s in node.body if isinstance(s, ast.Assign)]
        return [v for s in assigns for t in s.targets if getattr(t, "id", "") == "code" for v in text(s.value)]
    if isinstance(node, ast.FunctionDef):
        args = node.args.args[len(node.args.args) - len(node.args.defaults) :]
        return [v for a, d in zip(args, node.args.defaults, strict=True) if a.arg == "code" for v in text(d)]
    return []


def test_every_code_written_in_the_source_is_registered_and_every_registered_code_is_used() -> None:
    found = _code_literals()
    assert len(found) >= 45, sorted(found)  # the scan sees the codes (it is not vacuously green)
    unregistered = {code: places for code, places in found.items() if code not in CODES}
    assert unregistered == {}
    unused = set(CODES) - set(found) - set(STATUS_CODES.values())
    assert unused == set()


# the framework's errors ---------------------------------------------------------------------------------------
# (a GET of "/" or "/nope" is the console's page: tests/api/test_console_static.py)
@pytest.mark.parametrize(("method", "path"), [("GET", "/api/nope"), ("GET", "/docs/nope"), ("DELETE", "/api/v2/x"),
                                              ("PUT", "/a/b/c")])  # fmt: skip
def test_unknown_paths_answer_not_found(server: Server, method: str, path: str) -> None:
    response = httpx.request(method, server.url + path, headers=server.admin)
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": f"no route serves {path}"}


def test_a_known_path_with_another_method_answers_method_not_allowed(server: Server) -> None:
    for method, path in [("PATCH", "/sa"), ("DELETE", "/api/v1/jobs")]:
        response = httpx.request(method, server.url + path, headers=server.admin)
        assert response.status_code == 405, response.text
        error = error_of(response)
        assert error["code"] == "method_not_allowed" and error["message"].startswith(f"{method} is not allowed")
        assert response.headers["allow"] and response.headers["allow"] in error["message"]


def test_a_request_off_its_schema_answers_invalid_request_naming_the_field(server: Server) -> None:
    response = httpx.get(server.url + "/api/v1/jobs", params={"limit": 0}, headers=server.admin)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request" and error["field"] == "limit" and "limit:" in error["message"]
    body = {"name": ["not", "a", "name"], "timezone": "UTC", "color": "red"}
    response = httpx.post(server.url + "/api/v1/projects", json=body, headers=server.admin)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "name" and "color:" in error["message"], error
    headers = {**server.admin, "Content-Type": "application/json"}
    response = httpx.post(server.url + "/api/v1/projects", content=b'{"name": ', headers=headers)
    assert response.status_code == 422 and error_of(response)["field"] == "body"
    response = httpx.post(server.url + "/api/v1/projects", content=b'{"name": "\xff"}', headers=headers)
    assert response.status_code == 400, response.text  # FastAPI's own answer for a body that is not UTF-8
    assert error_of(response) == {"code": "invalid", "message": "the body cannot be read as JSON (is it UTF-8?)",
                                  "field": "body"}  # fmt: skip


def test_route_http_exceptions_answer_their_status_with_the_status_code_or_their_own(server: Server) -> None:
    for status, code in sorted(STATUS_CODES.items()):
        response = httpx.get(f"{server.url}/test/http/{status}", verify=ONE_SHOT_TLS)
        assert response.status_code == status
        assert error_of(response) == {"code": code, "message": f"http {status}", **_hint(code)}
    response = httpx.get(f"{server.url}/test/http/400", params={"code": "unreadable_file"})
    assert response.status_code == 400
    assert error_of(response) == {"code": "unreadable_file", "message": "http 400"}
    assert httpx.get(f"{server.url}/test/http/418").json()["error"]["code"] == "invalid"


def _hint(code: str) -> dict[str, str]:
    hint = CODES[code].hint
    return {"hint": hint} if hint else {}


def test_a_value_an_engine_cannot_use_is_invalid_value_and_a_bug_is_internal(server: Server) -> None:
    response = httpx.get(server.url + "/test/overflow")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_value"
    response = httpx.get(server.url + "/test/crash")
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal", "message": "the server failed; the error is in its log"}
    assert "a bug" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"  # the guard's headers on its own answer


def test_authentication_and_scope_errors(server: Server) -> None:
    response = httpx.get(server.url + "/api/v1/projects")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert error_of(response) == {"code": "unauthorized", "message": response.json()["error"]["message"],
                                  **_hint("unauthorized")}  # fmt: skip
    response = httpx.get(server.url + "/api/v1/projects", headers={"Authorization": "Bearer ula_forged"})
    assert response.status_code == 401 and error_of(response)["code"] == "unauthorized"
    reader_key = {"kind": "admin", "project": "default", "name": "reader", "rights": ["read"]}
    created = httpx.post(server.url + "/api/v1/keys", headers=server.admin, json=reader_key)
    assert created.status_code == 201, created.text
    reader = {"Authorization": f"Bearer {created.json()['secret']}"}
    response = httpx.get(server.url + "/api/v1/keys", headers=reader)
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden" and "'admin' right" in response.json()["error"]["message"]


def test_the_limits_answer_the_one_body(server: Server) -> None:
    big = b"x" * (1 << 17)
    for path in ("/api/v1/projects", "/v1/batch"):  # the management API and the collector's fast path
        response = httpx.post(server.url + path, content=big, headers=server.admin)
        assert response.status_code == 413
        assert error_of(response) == {"code": "too_large", "message": f"request body is larger than {1 << 16} bytes"}
    response = httpx.options(server.url + "/api/v1/projects", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and error_of(response)["code"] == "forbidden"


def get_raw(server: Server, target: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of ``GET target`` sent as it is (httpx refuses URLs over 64 KiB)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", target, headers=server.admin)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        connection.close()


def test_an_over_long_url_answers_uri_too_long_with_the_one_body(server: Server) -> None:
    fits = "/api/v1/projects?x=" + "a" * (MAX_URL_BYTES - len("/api/v1/projects?x="))
    assert get_raw(server, fits)[0] == 200
    over = {"/api/v1/projects?x=" + "a" * 70_000: "a 70,000-character query string, past httptools' 64 KiB",
            fits + "a": "one byte over", "/api/v1/" + "p" * MAX_URL_BYTES: "a long path",
            "/sa?data=" + "a" * 3_000_000: "a collector route, a URL of megabytes"}  # fmt: skip
    for target, what in over.items():
        status, content_type, body = get_raw(server, target)
        assert (status, content_type) == (414, "application/json"), (what, status, body[:200])
        error = json.loads(body)["error"]
        message = f"the URL is longer than {MAX_URL_BYTES} bytes"
        assert error == {"code": "uri_too_long", "message": message, "hint": CODES["uri_too_long"].hint}, what


def test_too_many_failed_authentications_answer_rate_limited(tmp_path: Path) -> None:
    srv = launch(tmp_path, failed_auths_per_minute=2)
    try:
        forged = {"Authorization": "Bearer ula_forged"}
        statuses = [httpx.get(srv.url + "/api/v1/projects", headers=forged).status_code for _ in range(2)]
        assert statuses == [401, 401]
        response = httpx.get(srv.url + "/api/v1/projects", headers=srv.admin)
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert error_of(response) == {"code": "rate_limited", "message": response.json()["error"]["message"],
                                      **_hint("rate_limited")}  # fmt: skip
    finally:
        srv.stop()


def test_openapi_documents_the_one_body(server: Server) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorOut"]["required"] == ["error"]
    assert schemas["ErrorDetail"]["properties"]["code"]["enum"] == sorted(CODES)
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "field", "hint"}
    operations = [op for path in spec["paths"].values() for op in path.values()]
    assert len(operations) > 60
    for op in operations:
        errors = {status: r for status, r in op["responses"].items() if status >= "400"}
        assert {"401", "404", "422", "500"} <= set(errors), op["operationId"]
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert "`model_no_report`" in operations[0]["responses"]["404"]["description"]


# the client and the CLI ---------------------------------------------------------------------------------------
def test_the_client_reads_the_body_back_into_the_error(server: Server) -> None:
    response = httpx.get(f"{server.url}/test/raise/query_timeout", params={"field": "timeout"})
    error = _error(response.status_code, response.content)
    assert (error.code, error.field, error.hint) == ("query_timeout", "timeout", CODES["query_timeout"].hint)
    assert error.message == "server: raised query_timeout"
    missing = httpx.get(f"{server.url}/test/raise/model_no_report")
    error = _error(missing.status_code, missing.content)
    assert isinstance(error, NotFoundError) and error.code == "model_no_report"
    proxy = _error(502, b"<html>Bad Gateway</html>")
    assert proxy.code == "internal" and "Bad Gateway" in proxy.message
    newer = _error(409, b'{"error": {"code": "a_code_of_a_newer_server", "message": "m"}}')
    assert (newer.code, newer.message) == ("conflict", "server: m")


def test_cli_json_errors_print_the_one_body(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["projects", "list", "-w", str(tmp_path / "none"), "--json"])
    assert result.exit_code == 2
    body = json.loads(result.output)
    assert set(body) == {"error"} and body["error"]["code"] == "workspace"
    assert body["error"]["hint"] == CODES["workspace"].hint and "userloop init" in body["error"]["message"]
    text = CliRunner().invoke(cli, ["projects", "list", "-w", str(tmp_path / "none")])
    assert text.exit_code == 2 and f"hint: {CODES['workspace'].hint}" in text.output


def test_cli_json_errors_raised_outside_a_command_print_the_one_body(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_text("id\nu1\n")
    args = ["import", "users", str(tmp_path / "u.csv"), "--rename", "no-equals", "-w", str(tmp_path), "--json"]
    done = subprocess.run([sys.executable, "-m", "userloop.cli.main", *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    error = {"code": "invalid", "message": "--rename takes OLD=NEW, got 'no-equals'"}
    assert json.loads(done.stdout) == {"error": error}
