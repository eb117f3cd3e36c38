"""Opening a workspace from the CLI.

A workspace that a running server owns must not be opened a second time (DuckDB has one writer). Commands
go through :func:`open_local`, which refuses with the server's address in that case; the HTTP client that
sends the command to that server instead arrives with the service (``userloop serve``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from userloop.core.errors import WorkspaceError
from userloop.store import Workspace
from userloop.store.owner import current_owner


@contextmanager
def open_local(path: Path, *, read_only: bool = False) -> Iterator[Workspace]:
    owner = current_owner(path.expanduser().resolve())
    if owner is not None:
        raise WorkspaceError(
            f"the server at {owner.url} (pid {owner.pid}) owns this workspace; use its API, or stop it first"
        )
    ws = Workspace.open(path, read_only=read_only)
    try:
        yield ws
    finally:
        ws.close()
