"""Starting the command line is cheap: ``userloop --help`` imports no command module and no heavy library, and
the lazy command table stays true to the commands it stands for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
import typer.main
from typer._click.utils import make_default_short_help
from typer.testing import CliRunner

from userloop.cli.main import COMMANDS, app

HEAVY = ("duckdb", "pyarrow", "sqlalchemy", "fastapi", "numpy", "pandas", "uvicorn", "pydantic", "rich")

_PROBE = """
import json, sys
sys.argv = ["userloop", *sys.argv[1:]]
from userloop.cli.main import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
cli = sorted(m for m in sys.modules if m.startswith("userloop.cli.") and m.endswith("_cmd"))
print(json.dumps({"heavy": loaded, "command_modules": cli}))
"""


def _modules_after(*args: str) -> dict[str, list[str]]:
    script = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_top_level_help_imports_no_command_module_and_no_heavy_library() -> None:
    for args in (["--help"], ["--version"], []):
        loaded = _modules_after(*args)
        assert loaded == {"heavy": [], "command_modules": []}, args


def test_a_command_loads_only_its_own_module() -> None:
    loaded = _modules_after("rejects", "--help")
    assert loaded["command_modules"] == ["userloop.cli.workspace_cmd"]
    assert "duckdb" not in loaded["heavy"]  # its help does not open anything either


def test_the_probe_sees_heavy_imports_when_a_command_brings_them(tmp_path: Path) -> None:
    """The check above can fail: a command that really opens a workspace shows its libraries."""
    loaded = _modules_after("init", str(tmp_path / "ws"), "--json")
    assert loaded["command_modules"] == ["userloop.cli.workspace_cmd"]
    assert "duckdb" in loaded["heavy"]


def test_help_lists_every_command_with_its_own_first_sentence() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    text = CliRunner().invoke(app, ["--help"]).output
    for name, entry in COMMANDS.items():
        cmd = root.get_command(ctx, name)  # type: ignore[attr-defined]
        assert cmd is not None and cmd.name == name
        assert make_default_short_help(entry.help, 1000) == make_default_short_help(cmd.help or "", 1000), name
        assert f"  {name} " in text


def test_walking_the_tree_loads_every_command() -> None:
    """What a documentation walker does: list_commands and get_command at every level reach every leaf."""
    root = typer.main.get_command(app)

    def leaves(cmd: typer.core.TyperGroup | typer.core.TyperCommand, ctx: typer.Context, path: str) -> list[str]:
        if not hasattr(cmd, "list_commands"):
            return [path]
        found = []
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{path} {name}"
            found += leaves(sub, typer.Context(sub, parent=ctx, info_name=name), f"{path} {name}".strip())
        return found

    found = leaves(root, typer.Context(root), "")  # type: ignore[arg-type]
    assert {"init", "demo", "serve", "sql", "query", "import events", "tags list", "models run"} <= set(found)
    assert len(found) > 50


def test_a_typo_is_answered_with_the_nearest_command() -> None:
    result = CliRunner().invoke(app, ["segment"])
    assert result.exit_code == 2 and "Did you mean 'segments'" in result.output
