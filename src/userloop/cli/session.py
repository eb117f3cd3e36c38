"""Opening a workspace from the CLI.

A workspace that a running server owns must not be opened a second time (DuckDB has one writer). Commands
first ask :func:`server_client`: when a server owns the workspace they send their request to it (with the
session token it leaves in the workspace); otherwise :func:`open_local` opens the files, and refuses with the
server's address if one started in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from userloop.core.errors import WorkspaceError
from userloop.store.owner import current_owner

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.store import Workspace


def server_client(path: Path) -> ServerClient | None:
    """A client for the server that owns the workspace, or None when none runs."""
    from userloop.api.client import ServerClient

    return ServerClient.for_workspace(path)


@contextmanager
def open_local(path: Path, *, read_only: bool = False) -> Iterator[Workspace]:
    owner = current_owner(path.expanduser().resolve())
    if owner is not None:
        raise WorkspaceError(
            f"the server at {owner.url} (pid {owner.pid}) owns this workspace; use its API, or stop it first"
        )
    from userloop.store import Workspace  # DuckDB and SQLAlchemy: only when the files are opened here

    ws = Workspace.open(path, read_only=read_only)
    try:
        yield ws
    finally:
        ws.close()
