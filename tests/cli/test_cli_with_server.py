"""While a server owns the workspace, the data commands go through it (DuckDB has one writer)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.collect.serving import new_server
from tests.ingest.helpers import lines, track
from userloop.cli.main import app

runner = CliRunner()


def call(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_data_commands_talk_to_the_server(tmp_path: Path) -> None:
    server = new_server(tmp_path).start()
    ws = str(server.path)
    try:
        data = tmp_path / "e.jsonl"
        data.write_text("\n".join(str(x) for x in lines(track("view", "u1", price=1.0), "{bad")) + "\n")
        code, out = call("import", "events", str(data), "-w", ws, "--json")
        assert code == 0
        assert json.loads(out.splitlines()[0])["accepted"] == 1
        code, out = call("sql", "SELECT count(*) AS n FROM events", "-w", ws, "--json")
        assert (code, json.loads(out)["rows"]) == (0, [[1]])
        code, out = call("rejects", "list", "-w", ws, "--json")
        assert code == 0
        assert "malformed JSON" in json.loads(out)[0]["reason"]
        code, out = call("properties", "list", "-w", ws, "--json")
        assert [p["name"] for p in json.loads(out)] == ["price"]
        code, out = call("projects", "create", "second", "-w", ws, "--json")
        assert code == 0
        assert json.loads(out)["write_key"].startswith("ulw_")
        code, out = call("projects", "list", "-w", ws, "--json")
        assert [p["project"] for p in json.loads(out)] == ["default", "second"]
        code, out = call("models", "run", "-w", ws, "--only", "rfm", "--json")
        assert code == 0
        assert "rfm" in json.loads(out)["models"]
        code, out = call("simulate", "-w", ws, "--users", "10", "--days", "3", "--json")
        assert code == 2
        assert "owns this workspace" in json.loads(out)["error"]["message"]
    finally:
        server.stop()
