"""The audit log: every successful change through the API or the CLI is recorded once, with its actor, the thing
before and after, secrets redacted; reads and failed changes are not; the log pages newest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tests.collect.serving import ONE_SHOT_TLS, Server
from userloop.cli.main import app
from userloop.store import Workspace

VIP = {"name": "vip", "kind": "upload", "type": "bool", "title_zh": "贵宾", "title_en": "VIP",
       "source": {"from": "upload"}}  # fmt: skip
SECRET = "s3cr3t-pa55-不可见"


def _api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers=server.admin, timeout=30, **kwargs, verify=ONE_SHOT_TLS)


def _log(server: Server, **params: Any) -> dict[str, Any]:
    reply = _api(server, "GET", "/api/v1/audit", params=params)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_an_update_records_who_before_and_after(server: Server) -> None:
    assert _api(server, "POST", "/api/v1/tags", json=VIP).status_code == 201
    changed = _api(server, "PUT", "/api/v1/tags/vip", json={**VIP, "title_en": "Very important"})
    assert changed.status_code == 200, changed.text
    [entry] = _log(server, action="tags.update")["entries"]
    assert entry["before"]["title_en"] == "VIP" and entry["after"]["title_en"] == "Very important"
    assert entry["target"] == {"tag": "vip"} and entry["project"] == "default"
    assert entry["request"]["title_en"] == "Very important"
    assert entry["actor_kind"] == "token" and entry["actor_id"] is not None and entry["actor_name"]
    assert entry["address"] == "127.0.0.1"
    [created] = _log(server, action="tags.create")["entries"]
    assert created["before"] is None and created["after"]["name"] == "vip"  # a new thing has no "before"


def test_reads_and_failed_changes_record_nothing(server: Server) -> None:
    before = _log(server, limit=500)["entries"]
    assert _api(server, "GET", "/api/v1/tags").status_code == 200
    assert _api(server, "GET", "/api/v1/tags/vip").status_code == 200
    estimate = {"rule": {"type": "tag", "tag": "vip", "op": "eq", "value": True}}
    assert _api(server, "POST", "/api/v1/segments/estimate", json=estimate).status_code in (200, 400)  # a read POST
    assert _api(server, "PUT", "/api/v1/tags/nope", json={**VIP, "name": "nope"}).status_code == 404
    assert _api(server, "POST", "/api/v1/tags", json={**VIP, "type": "nope"}).status_code in (400, 422)
    assert _api(server, "POST", "/api/v1/tags", json=VIP).status_code == 400  # the name is taken
    assert _log(server, limit=500)["entries"] == before


def test_secrets_are_redacted(server: Server) -> None:
    key = _api(server, "POST", "/api/v1/keys", json={"kind": "admin", "name": "robot", "rights": ["read"]})
    assert key.status_code == 201 and key.json()["secret"].startswith("ula_")
    settings = {"host": "127.0.0.1", "port": 2525, "sender": "ops <noreply@example.com>", "username": "ops",
                "password": SECRET, "timeout": 10}  # fmt: skip
    saved = _api(
        server, "PUT", "/api/v1/channels/mail", json={"kind": "email", "provider": "smtp", "settings": settings}
    )
    assert saved.status_code == 200, saved.text
    [made] = _log(server, action="keys.create")["entries"]
    assert made["after"]["secret"] == "[redacted]" and made["after"]["name"] == "robot"
    [channel] = _log(server, action="channels.")["entries"]
    assert channel["request"]["settings"]["password"] == "[redacted]"
    assert channel["request"]["settings"]["username"] == "ops"
    raw = json.dumps(_log(server, limit=500), ensure_ascii=False)
    assert SECRET not in raw and key.json()["secret"] not in raw


def test_the_log_pages_newest_first_and_needs_a_workspace_admin(server: Server) -> None:
    for name in ("p1", "p2", "p3"):
        assert _api(server, "POST", "/api/v1/projects", json={"name": name}).status_code == 201
    first = _log(server, action="projects.", limit=2)
    assert [e["target"] for e in first["entries"]] == [{}, {}]
    assert [e["request"]["name"] for e in first["entries"]] == ["p3", "p2"]
    rest = _log(server, action="projects.", limit=2, before_id=first["next_before_id"])
    assert [e["request"]["name"] for e in rest["entries"]] == ["p1"] and rest["next_before_id"] is None
    everything = _log(server, limit=500)["entries"]
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    assert _log(server, actor="nobody")["entries"] == []
    assert _log(server, project="p1")["entries"] == []  # made from 'default''s scope: no project of its own
    assert _log(server, since="2100-01-01T00:00:00Z")["entries"] == []
    scoped = _api(server, "POST", "/api/v1/keys", json={"kind": "admin", "project": "default"}).json()["secret"]
    refused = httpx.get(server.url + "/api/v1/audit", headers={"Authorization": f"Bearer {scoped}"})
    assert refused.status_code == 403


def test_the_cli_records_the_owner_and_prints_a_table(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    ws.close()
    runner = CliRunner()
    made = runner.invoke(app, ["tags", "create", "-", "-w", str(ws.path), "--json"], input=json.dumps(VIP))
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["audit", "-w", str(ws.path), "--json"])
    [entry] = json.loads(listed.output)["entries"]
    assert (entry["actor_kind"], entry["action"], entry["address"]) == ("owner", "tags.create", None)
    assert entry["actor_name"].startswith("owner")
    table = runner.invoke(app, ["audit", "-w", str(ws.path), "--action", "tags."], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "操作 / action" in table.output and "tags.create" in table.output


def test_an_accounts_change_names_the_account_and_its_password_is_redacted(server: Server) -> None:
    password = "correct horse 电池 staple"
    account = {"login": "li.lei", "name": "李雷", "password": password,
               "roles": [{"project": "default", "role": "analyst"}]}  # fmt: skip
    assert _api(server, "POST", "/api/v1/accounts", json=account).status_code == 201
    [made] = _log(server, action="accounts.create")["entries"]
    assert made["request"]["password"] == "[redacted]" and made["after"]["login"] == "li.lei"
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        signed = browser.post("/api/v1/auth/login", json={"login": "li.lei", "password": password})
        assert signed.status_code == 200, signed.text
        csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
        made_board = browser.post("/api/v1/dashboards", json={"name": "李雷的看板"}, headers=csrf)
        assert made_board.status_code == 201, made_board.text
    [entry] = _log(server, action="dashboards.create")["entries"]
    assert (entry["actor_kind"], entry["actor_name"]) == ("account", "li.lei") and entry["actor_id"] is not None
    assert entry["after"]["created_by"] == "li.lei"
    assert password not in json.dumps(_log(server, limit=500), ensure_ascii=False)


def test_sign_ins_and_failed_ones_are_logged_without_the_password(server: Server) -> None:
    from tests.api.signin import login, make_account

    make_account(server, "auditee", [{"project": "default", "role": "viewer"}])
    assert login(server, "auditee", "not the password").status_code == 401
    assert login(server, "auditee").status_code == 200
    rows = _log(server, action="auth.")["entries"]
    seen = [(r["action"], r["actor_name"]) for r in rows[:2]]
    assert seen == [("auth.login", "auditee"), ("auth.login_failed", "auditee")]
    assert "password" not in json.dumps(rows[:2])
