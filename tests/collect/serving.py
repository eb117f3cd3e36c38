"""A real server on loopback in a subprocess (so tests can SIGKILL it), and helpers to talk to it."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from userloop.store import Workspace

#: ``verify=`` for the tests' one-shot requests (``httpx.get``, ``httpx.post``, ``httpx.request``) made in loops and
#: helpers: without it each one builds a client that loads the CA bundle, ~30 ms of CPU, often more than the
#: request. The servers under test speak plain HTTP on loopback; this context trusts no certificate at all.
ONE_SHOT_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

LAUNCH = """
import sys
from pathlib import Path
from userloop.service.guards import GuardConfig
from userloop.service.runtime import ServiceConfig
from userloop.api.server import serve
from userloop.collect.door import Limits
limits = Limits(max_body_bytes=int(sys.argv[3]), max_records=int(sys.argv[4]), rate_per_second=float(sys.argv[5]),
                burst=float(sys.argv[5]) * 2)
guards = GuardConfig(failed_auths_per_minute=float(sys.argv[6]))
config = ServiceConfig(port=int(sys.argv[2]), limits=limits, scheduler_tick=0.2, guards=guards)
serve(Path(sys.argv[1]), config, announce=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    path: Path
    write_key: str
    admin_token: str
    port: int = field(default_factory=free_port)
    max_body: int = 5 << 20
    max_records: int = 10_000
    rate: float = 0.0
    failed_auths_per_minute: float = 20.0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def start(self) -> Server:
        args = [str(self.path), str(self.port), str(self.max_body), str(self.max_records), str(self.rate),
                str(self.failed_auths_per_minute)]  # fmt: skip
        self.spawn(LAUNCH, args)
        return self

    def spawn(self, script: str, args: list[str], wait: float = 90.0) -> None:
        """Run ``script`` with ``args`` in a new Python process and wait until the server answers /healthz
        (``wait`` seconds at most: a loaded 2-core machine has taken 38 s to start one)."""
        self.proc = subprocess.Popen([sys.executable, "-c", script, *args], env={**os.environ, "PYTHONWARNINGS": ""})
        deadline = time.monotonic() + wait
        # one client for all the polls: each httpx.get builds a client and loads the CA bundle (~30 ms of CPU),
        # which every 50 ms took a good part of a core from the starting server
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    time.sleep(0.05)
        self.proc.kill()  # a server that never answered would outlive the test (and its workspace) otherwise
        self.proc.wait()
        raise RuntimeError("the server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None

    def settle(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until everything acknowledged is loaded; returns the collector status."""
        deadline = time.monotonic() + timeout
        with httpx.Client(headers=self.admin, timeout=10) as client:  # one client for all the polls (see spawn)
            while True:
                doc = client.get(self.url + "/api/v1/collector").json()
                if doc["durable"] == doc["committed"] or doc["backlog_bytes"] == 0:
                    return doc
                if time.monotonic() > deadline:
                    raise TimeoutError(doc)
                time.sleep(0.05)

    def sql(self, query: str, project: str = "default") -> list[list[Any]]:
        self.settle()
        response = httpx.post(
            self.url + "/api/v1/sql",
            headers=self.admin,
            json={"query": query, "project": project, "limit": 1_000_000},
            verify=ONE_SHOT_TLS,
        )
        assert response.status_code == 200, response.text
        return list(response.json()["rows"])

    def rejects(self, project: str = "default") -> list[dict[str, Any]]:
        self.settle()
        response = httpx.get(
            self.url + "/api/v1/rejects",
            headers=self.admin,
            params={"project": project, "limit": 1000},
            verify=ONE_SHOT_TLS,
        )
        return list(response.json())


def new_server(tmp: Path, **kwargs: Any) -> Server:
    ws, secrets = Workspace.init(tmp / "ws")
    ws.close()
    assert secrets.admin_token
    return Server(ws.path, secrets.write_key, secrets.admin_token, **kwargs)


def message_ids(batch: dict[str, Any], reply: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(accepted, refused) message ids of a Segment batch, from the collector's reply."""
    refused_at = {int(r["index"]) for r in reply["rejected"]}
    ids = [str(m["messageId"]) for m in batch["batch"]]
    return {m for i, m in enumerate(ids) if i not in refused_at}, {m for i, m in enumerate(ids) if i in refused_at}


class Load:
    """SDK clients posting ``batch(client, n)`` to servers until stopped or their server stops answering, keeping
    which message ids were acknowledged, refused, or never answered (and the first batches, to send again)."""

    def __init__(self, batch: Callable[[int, int], dict[str, Any]]) -> None:
        self.batch = batch
        self.acked: set[str] = set()
        self.refused: set[str] = set()
        self.unacked: list[dict[str, Any]] = []
        self.first: list[dict[str, Any]] = []  # acknowledged batches an SDK sends again
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def run(self, client: int, target: Server) -> None:
        thread = threading.Thread(target=self._client, args=(client, target))
        self.threads.append(thread)
        thread.start()

    def _client(self, c: int, target: Server) -> None:
        with httpx.Client(auth=(target.write_key, ""), timeout=10) as http:
            for n in range(100_000):
                if self.stop.is_set():
                    return
                batch = self.batch(c, n)
                try:
                    reply = http.post(target.url + "/v1/batch", json=batch)
                    ok = reply.status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.record(batch, reply.json() if ok else None, first=n == 0)
                if not ok:
                    return

    def record(self, batch: dict[str, Any], reply: dict[str, Any] | None, *, first: bool = False) -> None:
        with self.lock:
            if reply is None:
                self.unacked.append(batch)
                return
            if first:
                self.first.append(batch)
            took, refused = message_ids(batch, reply)
            self.acked.update(took)
            self.refused.update(refused - self.acked)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
