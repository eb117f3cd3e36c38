"""Running the service: ``userloop serve`` and the end of ``make demo``."""

from __future__ import annotations

import sys
from pathlib import Path

from userloop.api.runtime import Runtime, ServiceConfig
from userloop.core.errors import WorkspaceError
from userloop.store.owner import current_owner


def serve(workspace_path: Path, config: ServiceConfig, *, announce: bool = True) -> None:
    """Own the workspace and serve HTTP until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    import uvicorn

    from userloop.api.app import create_app

    owner = current_owner(workspace_path.expanduser().resolve())
    if owner is not None:
        raise WorkspaceError(f"the server at {owner.url} (pid {owner.pid}) already owns this workspace")
    runtime = Runtime(workspace_path, config)
    app = create_app(runtime)
    if announce:
        print(f"userloop serving {runtime.path} at {runtime.url}  (docs: {runtime.url}/docs)", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            loop="auto",
            http="auto",
            timeout_graceful_shutdown=10,
        )
    )
    server.run()
    if server.started is False:
        sys.exit(1)


def serve_forever(workspace_path: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``workspace_path`` until interrupted; prints the URL first (the last step of ``make demo``)."""
    serve(workspace_path, ServiceConfig(host=host, port=port))
