"""The chdb HTTP endpoint (:mod:`userloop.store.chdb_http`) in its own process, for tests that reach ClickHouse
through the wire as a server would be reached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def chdb_endpoint(folder: Path, user: str, password: str) -> Iterator[tuple[str, int]]:
    """Start the endpoint over a chdb folder under ``folder``; yields (the URL's host:port part, port)."""
    secret = folder / "password"
    secret.write_text(password, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "userloop.store.chdb_http", "--path", str(folder / "ch"), "--user", user,
         "--password-file", str(secret)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        yield f"127.0.0.1:{port}", port
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
