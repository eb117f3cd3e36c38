"""``userloop import`` says the same whether it runs in process or through the server that owns the workspace:
accepted, rejected with the rejects file, duplicates, and the file named as the user gave it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from tests.collect.serving import new_server
from tests.ingest.helpers import lines, track
from userloop.cli.main import app
from userloop.store import Workspace

runner = CliRunner()
BAD = ['{"type": "track", "event": "view"', '{"type": "track", "distinct_id": "u9", "time": 1}']


def _file(tmp_path: Path) -> Path:
    good = lines(track("view", "u1", price=1.0), track("view", "u2"), track("buy", "u1"))
    data = tmp_path / "events.jsonl"
    data.write_text("\n".join(str(x) for x in [*good, good[0], *BAD]) + "\n")  # one repeated: a duplicate
    return data


def _import(ws: Path, data: Path, *extra: str) -> str:
    result = runner.invoke(app, ["import", "events", str(data), "-w", str(ws), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _shape(text: str) -> tuple[list[str], Path]:
    """The summary's lines with the time and the rejects path taken out, and that path."""
    found = re.search(r"→ (\S+)", text)
    assert found, text
    lines_ = [re.sub(r"in [\d.]+ s", "in _ s", line.split("→")[0].rstrip()) for line in text.splitlines()]
    return lines_, Path(found.group(1))


def test_through_the_server_the_summary_shows_duplicates_and_rejects_like_a_local_import(tmp_path: Path) -> None:
    data = _file(tmp_path)
    local_ws, _ = Workspace.init(tmp_path / "local")
    local_ws.close()
    local, local_rejects = _shape(_import(local_ws.path, data))
    assert any(re.fullmatch(r"\s+duplicates\s+1", line) for line in local)
    assert any(re.fullmatch(r"\s+rejected\s+2", line) for line in local)

    server = new_server(tmp_path / "served").start()
    try:
        remote, remote_rejects = _shape(_import(server.path, data))
        assert remote == local
        for rejects in (local_rejects, remote_rejects):
            refused = [json.loads(line)["raw"] for line in rejects.read_text().splitlines()]
            assert refused == BAD, rejects
        doc = json.loads(_import(server.path, data, "--json").splitlines()[0])
        assert doc["files"] == [str(data)]  # the user's file, not the server's temporary copy
        assert (doc["accepted"], doc["duplicates"], doc["rejected"]) == (0, 4, 2)  # all seen before now

        wanted = tmp_path / "mine" / "rejects.jsonl"
        _, shown = _shape(_import(server.path, data, "--rejects", str(wanted)))
        assert shown == wanted  # --rejects is honoured through the server as it is locally
        assert [json.loads(line)["raw"] for line in wanted.read_text().splitlines()] == BAD
    finally:
        server.stop()
