"""A command that goes through a running server loads the HTTP client and the operations' types, not the
server (FastAPI, uvicorn) nor the engines (DuckDB, Arrow, SQLAlchemy): that is what makes it start fast. A
command run in process loads the engines it uses, still not the server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.collect.serving import new_server
from userloop.api.client import ServerClient
from userloop.core.errors import WorkspaceError
from userloop.ops.query import RunSql
from userloop.store import Workspace

#: Runs ``userloop ARGS…`` as the console script does, then writes the modules it imported to the file
#: named by the first argument (after the command's own exit).
RUN_CLI = """
import json, sys
out, sys.argv = sys.argv[1], ["userloop", *sys.argv[2:]]
from userloop.cli.main import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "userloop.api.app", "userloop.api.server", "userloop.service.runtime")
ENGINES = ("duckdb", "pyarrow", "sqlalchemy", "numpy", "sqlglot", "userloop.query.engine", "userloop.profile.platform")


def run_cli(tmp_path: Path, *args: str) -> tuple[int, str, set[str]]:
    """The exit code, stdout and imported modules of ``userloop ARGS…`` in a fresh interpreter."""
    report = tmp_path / "modules.json"
    env = {**os.environ, "USERLOOP_CLI": "1", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", RUN_CLI, str(report), *args], check=True, capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    found = json.loads(report.read_text())
    return int(found["code"] or 0), done.stdout, set(found["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules]


def test_commands_through_a_server_load_neither_the_server_nor_the_engines(tmp_path: Path) -> None:
    server = new_server(tmp_path).start()
    ws = str(server.path)
    try:
        code, out, modules = run_cli(tmp_path, "sql", "SELECT 41 + 1 AS answer", "-w", ws, "--json")
        assert (code, json.loads(out)["rows"]) == (0, [[42]])
        assert "http.client" in modules  # it did talk HTTP
        assert "httpx" not in modules  # the standard library's client is enough
        assert loaded(modules, SERVER_SIDE + ENGINES) == []
        for command in (["tags", "list"], ["segments", "list"], ["projects", "list"], ["insights", "list"]):
            code, out, modules = run_cli(tmp_path, *command, "-w", ws, "--json")
            assert code == 0, out
            assert isinstance(json.loads(out), list)
            assert loaded(modules, SERVER_SIDE + ENGINES) == [], command
    finally:
        server.stop()


def test_commands_in_process_do_not_load_the_server(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    ws.close()
    code, out, modules = run_cli(tmp_path, "sql", "SELECT 41 + 1 AS answer", "-w", str(ws.path), "--json")
    assert (code, json.loads(out)["rows"]) == (0, [[42]])
    assert "duckdb" in modules  # it ran here
    assert loaded(modules, (*SERVER_SIDE, "http.client", "userloop.query.engine", "userloop.profile.platform")) == []


def test_every_operations_types_load_without_the_engines() -> None:
    """The client reads any operation's request and reply types (the registry imports every domain): none
    of them brings an engine or the server."""
    script = (
        "import sys, json\n"
        "from userloop.ops import operations\n"
        "ops = operations()\n"
        "for op in ops.values():\n"
        "    op.reply  # the reply's validator, as the client builds it\n"
        "print(json.dumps({'count': len(ops), 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    found = json.loads(done.stdout)
    assert found["count"] >= 40
    assert loaded(set(found["modules"]), SERVER_SIDE + ENGINES + ("httpx",)) == []


def test_a_server_that_is_gone_is_a_clear_error() -> None:
    """The owner file names a server that no longer answers: a WorkspaceError names its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: the connection is refused
        client = ServerClient(url, "token", timeout=5)
        with pytest.raises(WorkspaceError, match=f"cannot reach the server at {url}"):
            client.run("sql.run", RunSql(query="SELECT 1"))
