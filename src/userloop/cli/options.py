"""The options every command shares: the workspace, the project, JSON output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_WORKSPACE = "userloop-data"
DEFAULT_WORKSPACE_PATH = Path(DEFAULT_WORKSPACE)

Workspace_ = Annotated[
    Path,
    typer.Option("-w", "--workspace", envvar="USERLOOP_WORKSPACE", help="Workspace folder.", show_default=True),
]
Project_ = Annotated[str, typer.Option("-p", "--project", help="Project name.")]
Json_ = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
