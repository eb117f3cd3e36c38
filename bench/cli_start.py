"""CLI start-up: ``userloop --help``, and a data command through a running server, each in a fresh process.

    python -m bench.cli_start [--runs 15]

Three figures (medians of ``--runs`` runs):

- ``seconds``: ``userloop --help``; reference ``python -c pass`` with the same interpreter (the ratio says how
  many bare interpreter starts it costs, which drifts less than seconds on a shared machine). Target 0.3 s:
  the command line loads each command's module only when that command runs.
- ``server_command_seconds``: ``userloop sql "SELECT 1"`` on a workspace that a server started here owns (the
  command sends the query over loopback and prints the reply); reference ``python -c "import http.client"``,
  the HTTP client the command cannot do without (the standard library's; ``import httpx`` is also measured).
- ``server_command_to_request_seconds``: the same command from the moment its process is spawned to the moment
  it sends its request (interpreter start, imports, argument parsing, finding the server): the start-up part,
  apart from the server's work. Target 0.3 s: the client loads the HTTP client and the operations' types, not
  the server (FastAPI) nor the engines (DuckDB, Arrow).

Each figure's ratio is against its reference measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.harness import main_guard, report

TARGET_SECONDS = 0.3

#: ``userloop ARGS…`` as the console script runs it, which prints (to stderr) the monotonic clock at its first
#: HTTP request; ``time.perf_counter`` is CLOCK_MONOTONIC on Linux, the same clock in every process.
TO_REQUEST = """
import sys, time
import http.client
real, seen = http.client.HTTPConnection.request, []
def request(*args, **kwargs):
    if not seen:
        seen.append(time.perf_counter())
        print(f"first-request {seen[0]!r}", file=sys.stderr, flush=True)
    return real(*args, **kwargs)
http.client.HTTPConnection.request = request
sys.argv = ["userloop", *sys.argv[1:]]
from userloop.cli.main import main
main()
"""


def userloop_script() -> list[str]:
    """How to run ``userloop`` with this interpreter: its console script beside it, else the module."""
    script = Path(sys.executable).with_name("userloop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "userloop.cli.main"]


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_to_request(args: list[str], runs: int) -> float:
    """The median time from spawning ``userloop ARGS…`` to its first HTTP request."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", TO_REQUEST, *args], check=True, capture_output=True, text=True)
        sent = next(float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("first-request "))
        times.append(sent - start)
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served_workspace() -> Iterator[Path]:
    """A fresh workspace, owned by ``userloop serve`` on a free loopback port until the block ends."""
    with tempfile.TemporaryDirectory(prefix="userloop-bench-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([*userloop_script(), "init", str(ws)], check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen([*userloop_script(), "serve", "-w", str(ws), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            yield ws
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_start")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_COLOR", "1")
    cmd = [*userloop_script(), "--help"]
    median_seconds(cmd, 2)  # warm the file cache and the bytecode
    ours = median_seconds(cmd, args.runs)
    reference = median_seconds([sys.executable, "-c", "pass"], args.runs)
    help_row = report("cli_start", "seconds", ours, "s", runs=args.runs, reference="python -c pass",
                      reference_value=reference, ratio=ours / reference, target=f"<= {TARGET_SECONDS}")  # fmt: skip

    with served_workspace() as ws:
        sql = ["sql", "SELECT 1", "-w", str(ws), "--json"]
        median_seconds([*userloop_script(), *sql], 2)
        command = median_seconds([*userloop_script(), *sql], args.runs)
        to_request = median_to_request(sql, args.runs)
    http_client = median_seconds([sys.executable, "-c", "import http.client"], args.runs)
    httpx_import = median_seconds([sys.executable, "-c", "import httpx"], args.runs)
    report("cli_start", "server_command_seconds", command, "s", runs=args.runs, command='userloop sql "SELECT 1"',
           reference="python -c 'import http.client'", reference_value=http_client, ratio=command / http_client,
           import_httpx_seconds=httpx_import)  # fmt: skip
    start_row = report("cli_start", "server_command_to_request_seconds", to_request, "s", runs=args.runs,
                       reference="python -c 'import http.client'", reference_value=http_client,
                       ratio=to_request / http_client, target=f"<= {TARGET_SECONDS}")  # fmt: skip
    return 0 if help_row["value"] <= TARGET_SECONDS and start_row["value"] <= TARGET_SECONDS else 1


if __name__ == "__main__":
    main_guard(main)
