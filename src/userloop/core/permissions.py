"""File permissions: everything userloop writes is its owner's alone (files 0600, folders 0700)."""

from __future__ import annotations

import os

#: Permission bits nobody but the owner gets on anything userloop creates.
PRIVATE_UMASK = 0o077


def restrict_permissions() -> None:
    """From now on this process creates files 0600 and folders 0700 at most (umask 077).

    Called by the CLI at start, when a workspace is created or opened and when the service starts: the engines
    (DuckDB, SQLite), the spool and exports create their files themselves, so a umask is the one place that covers
    them all.
    """
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)
