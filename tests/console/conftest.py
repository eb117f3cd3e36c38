"""A console to drive: a small simulated business (the demo's build: events, models, tags, a segment), an account
per role, a server on loopback serving the built console, and Debian's Chromium.

Everything is built once per session of the tests of this folder (about a minute).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.collect.serving import Server
from tests.console.browser import launched, require_build

if TYPE_CHECKING:
    from playwright.sync_api import Browser

USERS, DAYS = 800, 40
PASSWORD = "console-test-password"
ROLES = ("viewer", "analyst", "operator", "admin")


@dataclass
class Console:
    server: Server
    admin_password: str

    @property
    def url(self) -> str:
        return self.server.url

    def password(self, login: str) -> str:
        return self.admin_password if login == "admin" else PASSWORD

    @contextmanager
    def session(self, login: str) -> Iterator[httpx.Client]:
        """An HTTP client signed in as ``login`` (cookies kept), sending the CSRF token on every request."""
        with httpx.Client(base_url=self.url, timeout=60) as client:
            reply = client.post("/api/v1/auth/login", json={"login": login, "password": self.password(login)})
            assert reply.status_code == 200, reply.text
            client.headers["X-CSRF-Token"] = client.cookies["userloop_csrf"]
            yield client


def _cli(*args: str, stdin: str | None = None) -> str:
    cli = Path(sys.executable).with_name("userloop")
    done = subprocess.run([str(cli), *args], input=stdin, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONWARNINGS": ""})  # fmt: skip
    assert done.returncode == 0, f"userloop {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    dist = require_build()
    ws = tmp_path_factory.mktemp("console") / "ws"
    doc = json.loads(_cli("demo", "-w", str(ws), "--users", str(USERS), "--days", str(DAYS), "--no-serve", "--json"))
    for role in ("viewer", "analyst", "operator"):
        _cli("accounts", "create", role, "--name", role.title(), "--role", role, "-w", str(ws), "--password-stdin",
             stdin=PASSWORD + "\n")  # fmt: skip
    server = Server(Path(doc["workspace"]), doc["write_key"], doc["admin_token"])
    before = os.environ.get("USERLOOP_CONSOLE_DIR")
    os.environ["USERLOOP_CONSOLE_DIR"] = str(dist)
    try:
        server.start()
    finally:
        if before is None:
            os.environ.pop("USERLOOP_CONSOLE_DIR", None)
        else:
            os.environ["USERLOOP_CONSOLE_DIR"] = before
    yield Console(server, doc["console"]["password"])
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module: Playwright's event loop must be gone before other tests run asyncio servers."""
    with launched() as b:
        yield b
