"""``userloop demo`` works as printed: a small demo on a free port, then every "next" command it printed, run
as printed (through a shell, from the repository's root, nothing activated) while the demo serves.

Also here, on the same run: the plain progress lines a log gets when the output is not a terminal, and the
models and example segments a short history cannot have, named with the reason.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.collect.serving import free_port

pytestmark = pytest.mark.slow  # a real demo (300 people × 30 days) and a dozen CLI processes: about a minute

REPO = Path(__file__).resolve().parents[2]
USERS, DAYS = 300, 30


@dataclass
class Demo:
    workspace: Path
    port: int
    stdout: list[str]
    stderr: list[str]

    def next_commands(self) -> list[str]:
        start = next(i for i, line in enumerate(self.stdout) if line.startswith("Next "))
        return [line.strip() for line in self.stdout[start + 1 :] if line.startswith("  ")]


def _pump(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line.rstrip("\n"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo as ``make demo`` runs it (the venv's console script, from the repository's root, output piped),
    serving on a free port until the tests of this module are done."""
    ws = tmp_path_factory.mktemp("demo") / "ws"
    port = free_port()
    cli = Path(sys.executable).with_name("userloop")
    env = {**os.environ, "USERLOOP_PROGRESS_SECONDS": "0.3", "PYTHONWARNINGS": ""}
    args = [str(cli), "demo", "-w", str(ws), "--users", str(USERS), "--days", str(DAYS), "--port", str(port)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    result = Demo(ws, port, [], [])
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, result.stdout), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, result.stderr), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        deadline = time.monotonic() + 240
        while not any(line.startswith("userloop serving") for line in result.stdout):
            assert proc.poll() is None, "\n".join(result.stdout + result.stderr)
            assert time.monotonic() < deadline, "the demo did not start serving"
            time.sleep(0.2)
        yield result
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pump in pumps:
            pump.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_every_next_command_runs_as_printed_from_the_repository(demo: Demo) -> None:
    commands = demo.next_commands()
    assert len(commands) >= 8
    cli = os.path.relpath(Path(sys.executable).with_name("userloop"), REPO)
    for command in commands:
        assert command.startswith(f"{cli} "), command  # the venv's script, not a bare `userloop`
        done = subprocess.run(command, check=False, shell=True, cwd=REPO, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), command
    queried = [c for c in commands if " query examples/" in c]
    assert {re.search(r"examples/\S+", c).group() for c in queried} >= {"examples/funnel.json"}  # type: ignore[union-attr]


def test_the_suggested_import_reports_duplicates_and_rejects_through_the_server(demo: Demo) -> None:
    [command] = [c for c in demo.next_commands() if " import events " in c]
    done = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    duplicates = re.search(r"duplicates\s+([\d,]+)", done.stdout)
    rejects = re.search(r"rejected\s+2\s+→ (\S+)", done.stdout)
    assert duplicates and int(duplicates.group(1)) >= 1, done.stdout
    assert rejects and Path(rejects.group(1)).is_file(), done.stdout


def test_progress_is_plain_periodic_lines_when_not_on_a_terminal(demo: Demo) -> None:
    sim = [line for line in demo.stderr if line.startswith("simulating and loading")]
    assert len(sim) >= 2, demo.stderr  # the loading takes seconds; a line every 0.3 s
    assert all(f"/{DAYS} (" in line for line in sim)
    assert sim[-1].startswith(f"simulating and loading / 模拟并导入: day {DAYS}/{DAYS} (100%), done in")
    assert any(line.startswith("models, tags and example segments") for line in demo.stderr)


def test_a_short_history_says_what_it_skipped_and_why(demo: Demo) -> None:
    text = "\n".join(demo.stdout)
    assert "skipped churn model / 跳过模型: needs more than 112 days of history" in text
    assert f"the demo has {DAYS}" in text
    assert "skipped example segment / 跳过示例人群 '高流失风险的复购用户 / repeat buyers at high churn risk'" in text
    assert "it needs the churn model" in text


def test_a_taken_port_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import socket

    cli = Path(sys.executable).with_name("userloop")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ws = tmp_path / "ws"
        done = subprocess.run(
            [str(cli), "demo", "-w", str(ws), "--users", "100", "--days", "3", "--port", str(port)],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"port {port} on 127.0.0.1 is in use; pass --port " in done.stderr
        assert "or stop the other process" in done.stderr and "端口" in done.stderr
        assert not ws.exists() and list(tmp_path.iterdir()) == []
        # refused before any loading: nothing was written (the workspace is created before the simulation starts)
        as_json = subprocess.run(
            [str(cli), "demo", "-w", str(ws), "--port", str(port), "--json"],
            check=False,
            capture_output=True,
            text=True,
        )
        assert as_json.returncode == 2
        assert '"code":"port_in_use"' in as_json.stdout and '"field":"--port"' in as_json.stdout
        served = subprocess.run(
            [str(cli), "serve", "-w", str(ws), "--port", str(port)], check=False, capture_output=True, text=True
        )
        assert served.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in served.stderr
        assert not ws.exists()


def test_the_console_is_served_and_its_printed_account_signs_in(demo: Demo) -> None:
    line = next(line for line in demo.stdout if line.startswith("Console / 控制台: "))
    found = re.search(r"(http://\S+/) — sign in as / 登录账号 (\S+), password / 密码 (\S+)$", line)
    assert found, line
    url, login, password = found.groups()
    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and '<div id="root">' in page.text  # the built console (make test builds it)
    signed = httpx.post(url + "api/v1/auth/login", json={"login": login, "password": password}, timeout=30)
    assert signed.status_code == 200, signed.text
    me = httpx.get(url + "api/v1/auth/me", cookies=signed.cookies, timeout=30)
    assert me.status_code == 200 and me.json()["account"]["login"] == login, me.text
