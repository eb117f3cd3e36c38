"""The command line: stable JSON, clear errors, help for every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ingest.helpers import lines, track
from userloop.cli.main import app

runner = CliRunner()


def call(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_json_shape_and_import_flow(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    code, out = call("init", str(ws), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {"workspace", "project", "write_key", "admin_token"}
    data = tmp_path / "e.jsonl"
    data.write_text(
        "\n".join(str(x) for x in lines(track("view", "u1", price=1.0), track("view", "u2"), "{bad")) + "\n"
    )
    code, out = call("import", "events", str(data), "-w", str(ws), "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["accepted"], summary["rejected"], summary["duplicates"]) == (2, 1, 0)
    assert summary["new_properties"] == ["events.price"]
    assert Path(summary["rejects_file"]).exists()
    code, out = call("sql", "SELECT event, count(*) AS n FROM events GROUP BY event", "-w", str(ws), "--json")
    assert code == 0 and json.loads(out)["rows"] == [["view", 2]]
    code, out = call("sql", "SELECT distinct_id FROM events ORDER BY 1", "-w", str(ws), "--csv")
    assert out.splitlines() == ["distinct_id", "u1", "u2"]
    code, out = call("rejects", "list", "-w", str(ws), "--json")
    assert code == 0 and "malformed JSON" in json.loads(out)[0]["reason"]
    code, out = call("properties", "list", "-w", str(ws), "--json")
    assert [(p["table"], p["name"], p["type"]) for p in json.loads(out)] == [("events", "price", "NUMBER")]


def test_projects_create_and_list(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    call("init", str(ws), "--json")
    code, out = call("projects", "create", "store_b", "-w", str(ws), "--timezone", "UTC", "--json")
    assert code == 0 and json.loads(out)["write_key"].startswith("ulw_")
    code, out = call("projects", "list", "-w", str(ws), "--json")
    assert [p["project"] for p in json.loads(out)] == ["default", "store_b"]


@pytest.mark.parametrize(
    ("args", "code_word"),
    [
        (["sql", "DELETE FROM events"], "read_only"),
        (["import", "events", "/no/such/file.jsonl"], "not_found"),
        (["projects", "create", "Bad Name"], "invalid"),
        (["sql", "SELECT 1", "-p", "nope"], "not_found"),
    ],
)
def test_user_errors_exit_2_with_json_error(tmp_path: Path, args: list[str], code_word: str) -> None:
    ws = tmp_path / "ws"
    call("init", str(ws), "--json")
    code, out = call(*args, "-w", str(ws), "--json")
    assert code == 2
    assert json.loads(out)["error"]["code"] == code_word


def test_missing_workspace_is_explained(tmp_path: Path) -> None:
    code, out = call("sql", "SELECT 1", "-w", str(tmp_path / "none"), "--json")
    assert code == 2 and "userloop init" in json.loads(out)["error"]["message"]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["import"],
        ["import", "events"],
        ["import", "users"],
        ["import", "items"],
        ["sql"],
        ["simulate"],
        ["demo"],
        ["projects"],
        ["projects", "create"],
        ["rejects", "list"],
        ["properties", "list"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    code, out = call(*command, "--help")
    assert code == 0
    assert "Usage" in out and len(out) > 200


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("userloop")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("userloop ")


def test_the_cli_writes_private_files_whatever_the_umask_it_was_given() -> None:
    """Exports and rejects files the CLI writes outside a workspace hold personal data: 0600, like the workspace."""
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "os.umask(0o022)\n"
        "from userloop.cli.main import main\n"
        "sys.argv = ['userloop', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(oct(os.umask(0)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0o77"
