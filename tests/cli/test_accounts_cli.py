"""``userloop accounts …`` on the workspace's own files: the first admin is made here (password from standard
input, or typed twice), listed without its hash, given pii, and kept as the last admin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from userloop.cli.main import app
from userloop.store import Workspace


def _run(path: Path, *args: str, stdin: str | None = None) -> tuple[int, Any]:
    result = CliRunner().invoke(app, [*args, "-w", str(path), "--json"], input=stdin, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_the_first_admin_is_made_from_the_cli(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    ws.close()
    code, made = _run(ws.path, "accounts", "create", "Root", "--name", "Root", "--role", "admin", "--password-stdin",
                      stdin="correct horse 42\n")  # fmt: skip
    assert code == 0 and made["login"] == "root" and made["roles"] == [{"project": None, "role": "admin"}]
    code, typed = _run(ws.path, "accounts", "create", "bea", "--role", "viewer", "-p", "default",
                       stdin="another fine one\nanother fine one\n")  # prompted twice, hidden  # fmt: skip
    assert code == 0 and typed["roles"] == [{"project": "default", "role": "viewer"}]
    code, weak = _run(ws.path, "accounts", "create", "cid", "--password-stdin", stdin="cid\n")
    assert code == 2 and "10" in weak["error"]["message"]
    code, granted = _run(ws.path, "accounts", "grant", "bea", "--pii", "-p", "default")
    assert code == 0 and granted["grants"] == [{"project": "default", "grant": "pii"}]
    code, kept = _run(ws.path, "accounts", "disable", "root")
    assert code == 2 and kept["error"]["code"] == "conflict"
    code, listed = _run(ws.path, "accounts", "list")
    assert [a["login"] for a in listed] == ["root", "bea"] and "scrypt" not in json.dumps(listed)
