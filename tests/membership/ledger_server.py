"""A real ``userloop`` server on loopback with a member programme, its metadata on SQLite or PostgreSQL, for the
points ledger's HTTP tests and its bench (a subprocess, so a test can SIGKILL it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from tests.collect.serving import Server
from userloop.membership.members import Programmes
from userloop.store.workspace import CONFIG_FILE, Workspace, WorkspaceConfig

#: The server without per-address and per-key request limits: the load comes from one loopback address.
LAUNCH = """
import sys
from pathlib import Path
from userloop.service.guards import GuardConfig
from userloop.service.runtime import ServiceConfig
from userloop.api.server import serve
guards = GuardConfig(address_rate=1e9, address_burst=1e9, key_rate=1e9, key_burst=1e9, failed_auths_per_minute=1e6)
# no membership pass: its expiry would race the crash test's own expiry runs
serve(Path(sys.argv[1]), ServiceConfig(port=int(sys.argv[2]), guards=guards, scheduler_tick=0.5, membership_tick=None),
      announce=False)
"""

PROGRAMME: dict[str, Any] = {
    "name": "club",
    "title": {"zh": "会员俱乐部", "en": "Club"},
    "timezone": "Asia/Shanghai",
    "wallets": [{"name": "points"}, {"name": "coins", "pending": {"days": 0}, "expiry": {"kind": "end_of_year"}}],
    "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0}],
}


class LedgerServer(Server):
    """A server whose workspace's metadata lives at ``meta_url``, with programme ``club`` (id in ``programme``)."""

    programme: int = 1

    def start(self) -> LedgerServer:
        """Start the server and wait for it, up to two minutes (a loaded machine takes a while to import it)."""
        self.spawn(LAUNCH, [str(self.path), str(self.port)], wait=120)
        return self

    def post(self, client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
        return client.post(self.url + path, json={"programme": self.programme, **body}, headers=self.admin)


def ledger_server(tmp: Path, meta_url: str | None = None) -> LedgerServer:
    """A new workspace (its metadata at ``meta_url``, else the default SQLite file) with the programme."""
    path = tmp / "ws"
    path.mkdir(mode=0o700)
    config = WorkspaceConfig(meta_url=meta_url) if meta_url else WorkspaceConfig()
    (path / CONFIG_FILE).write_text(tomli_w.dumps(config.to_toml()))
    os.chmod(path / CONFIG_FILE, 0o600)
    ws = Workspace(path, config)
    try:
        ws.meta.create_all()
        secrets = ws.create_project("default")
        _key, admin = ws.meta.add_key("admin", "ledger tests", None)
        project = ws.meta.project("default")
        assert project is not None
        programme = Programmes(ws.meta, project).create(PROGRAMME)
    finally:
        ws.close()
    server = LedgerServer(path, secrets.write_key, admin)
    server.programme = programme.id
    return server
