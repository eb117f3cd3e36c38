"""Who owns a workspace: a running server, or nobody (then a command opens the files itself).

DuckDB lets one process write a database file. ``userloop serve`` writes ``server.json`` (its pid and URL)
into the workspace while it runs; a CLI command reads it first and, when a live server owns the workspace,
sends its request to that server instead of opening the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

OWNER_FILE = "server.json"


@dataclass(frozen=True)
class Owner:
    pid: int
    url: str


def current_owner(workspace: Path) -> Owner | None:
    """The live server that owns ``workspace``, or None (a stale file from a dead server is ignored)."""
    path = workspace / OWNER_FILE
    try:
        doc = json.loads(path.read_text())
        owner = Owner(pid=int(doc["pid"]), url=str(doc["url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return owner if _alive(owner.pid) else None


def claim(workspace: Path, url: str) -> Owner:
    owner = Owner(pid=os.getpid(), url=url)
    tmp = workspace / (OWNER_FILE + ".tmp")
    tmp.write_text(json.dumps({"pid": owner.pid, "url": url}))
    tmp.replace(workspace / OWNER_FILE)
    return owner


def release(workspace: Path) -> None:
    path = workspace / OWNER_FILE
    try:
        if int(json.loads(path.read_text())["pid"]) == os.getpid():
            path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
