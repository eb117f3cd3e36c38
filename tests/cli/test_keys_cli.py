"""``userloop keys …`` and ``userloop jobs list`` run the keys and jobs operations: in process over the workspace's
files and through the running server (its session token), under the same rules; and the grant route
(``keys.grant``) never lets a token raise its own rights or reach a key outside its scope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.collect.serving import Server
from userloop.api.client import TOKEN_FILE
from userloop.cli.main import app
from userloop.store import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    ws, secrets = Workspace.init(tmp_path / "ws")
    ws.close()
    assert secrets.admin_token
    return ws.path, secrets.admin_token


def _cli(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "-w", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _key(path: Path, key_id: int) -> dict[str, Any]:
    return next(k for k in _cli(path, "keys", "list") if k["id"] == key_id)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_keys_and_jobs_in_process_and_through_the_server(workspace: tuple[Path, str]) -> None:
    path, token = workspace
    made = _cli(path, "keys", "create", "--kind", "admin", "-p", "default", "--rights", "read", "--name", "analyst")
    assert (made["kind"], made["project"], made["rights"]) == ("admin", "default", ["read"])
    assert made["secret"].startswith("ula_")
    assert _cli(path, "keys", "grant", str(made["id"]), "pii") == {"id": made["id"], "grants": ["pii"]}
    row = _key(path, made["id"])
    assert list(row) == ["id", "kind", "project", "rights", "name", "prefix", "created_at", "revoked_at"]
    assert (row["rights"], row["name"], row["revoked_at"]) == ("pii read", "analyst", None)
    assert _cli(path, "jobs", "list") == []
    initial = next(k["id"] for k in _cli(path, "keys", "list") if k["name"] == "initial admin token")
    refused = CliRunner().invoke(app, ["keys", "revoke", str(initial), "-w", str(path)])
    assert refused.exit_code != 0 and "last workspace-level admin token" in refused.output

    server = Server(path, "", token).start()
    try:
        assert _key(path, made["id"])["rights"] == "pii read"
        assert _cli(path, "keys", "grant", str(made["id"]), "pii", "--revoke") == {"id": made["id"], "grants": []}
        writer = _cli(path, "keys", "create", "-p", "default")
        assert (writer["kind"], writer["project"], writer["rights"]) == ("write", "default", ["write"])
        assert httpx.get(server.url + "/api/v1/projects", headers=_bearer(made["secret"])).status_code == 200
        assert _cli(path, "keys", "revoke", str(made["id"])) == {"id": made["id"], "revoked": True}
        assert httpx.get(server.url + "/api/v1/projects", headers=_bearer(made["secret"])).status_code == 401
        runs = _cli(path, "jobs", "list", "--limit", "5")  # the service may have run a job it found due
        assert len(runs) <= 5 and all(r["job"] and r["project"] == "default" for r in runs)
    finally:
        server.stop()
    assert _key(path, made["id"])["revoked_at"] is not None
    assert {r["id"] for r in runs} <= {r["id"] for r in _cli(path, "jobs", "list")}


def test_the_grant_route_never_raises_a_tokens_rights(workspace: tuple[Path, str]) -> None:
    path, token = workspace
    server = Server(path, "", token).start()
    try:
        url = server.url + "/api/v1/keys"
        session = _bearer((path / TOKEN_FILE).read_text().strip())  # the server's own token holds pii

        def mint(headers: dict[str, str], **body: Any) -> dict[str, Any]:
            response = httpx.post(url, headers=headers, json=body)
            assert response.status_code == 201, response.text
            return dict(response.json())

        def grant(headers: dict[str, str], key_id: int, **body: Any) -> httpx.Response:
            return httpx.post(f"{url}/{key_id}/grants", headers=headers, json={"right": "pii", **body})

        admin = _bearer(token)
        own = next(k["id"] for k in httpx.get(url, headers=admin).json() if k["name"] == "initial admin token")
        scoped = mint(admin, kind="admin", project="default", rights=["read", "admin"], name="project admin")
        writer = mint(admin, kind="write", project="default")
        # a token without pii gives it to no one, itself included
        for key_id in (own, scoped["id"]):
            refused = grant(admin, key_id)
            assert refused.status_code == 403 and "does not hold itself: pii" in refused.text
        assert grant(admin, own, revoke=True).status_code == 403
        # a project-scoped token does not reach a workspace-level key (it cannot even learn it exists)
        assert grant(_bearer(scoped["secret"]), own).status_code == 404
        assert grant(session, 99_999).status_code == 404
        assert grant(session, writer["id"]).status_code == 400
        assert httpx.post(f"{url}/{scoped['id']}/grants", headers=session, json={"right": "root"}).status_code == 422
        given = grant(session, scoped["id"])
        assert given.status_code == 200, given.text
        assert given.json()["rights"] == ["admin", "analyse", "operate", "pii", "read"]
        assert grant(session, scoped["id"], revoke=True).json()["rights"] == ["admin", "analyse", "operate", "read"]
    finally:
        server.stop()
