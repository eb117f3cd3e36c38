"""Running the service: ``userloop serve`` and the end of ``make demo``."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any

from userloop.core.errors import WorkspaceError
from userloop.core.permissions import restrict_permissions
from userloop.service.runtime import Runtime, ServiceConfig
from userloop.store.owner import current_owner
from userloop.store.workspace import secure_tree

DEPLOY_DOC = "docs/deploy.md"


def serve(
    workspace_path: Path,
    config: ServiceConfig,
    *,
    announce: bool = True,
    sock: socket.socket | None = None,
    collector: str | None = None,
) -> None:
    """Own the workspace and serve HTTP until interrupted (SIGINT/SIGTERM stop it cleanly).

    ``sock``: a socket already listening on ``config.host:config.port`` (:func:`userloop.cli.ports.claim`), so
    that a taken port is found before any loading and nothing can take it in between.

    Files the service creates are private to its user (umask 077; see :mod:`userloop.store.workspace`); binding
    beyond loopback prints :func:`exposure_warning` to stderr first.

    ``collector``: run a collector process of that name instead (:mod:`userloop.service.collectors`): it does not
    own the workspace, and the service loads what it takes.
    """
    from userloop.api.app import create_app, create_collector_app

    restrict_permissions()
    warning = exposure_warning(config.host)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    if collector is not None:
        from userloop.service.collectors import CollectorRuntime

        intake = CollectorRuntime(workspace_path.expanduser().resolve(), collector, config)
        if announce:
            print(f"userloop collector {collector!r} for {intake.path} at {intake.url}", flush=True)
        run_app(create_collector_app(intake), config, sock)
        return
    owner = current_owner(workspace_path.expanduser().resolve())
    if owner is not None:
        raise WorkspaceError(f"the server at {owner.url} (pid {owner.pid}) already owns this workspace")
    runtime = Runtime(workspace_path, config)
    secure_tree(runtime.path)
    app = create_app(runtime)
    if announce:
        print(f"userloop serving {runtime.path} at {runtime.url}  (docs: {runtime.url}/docs)", flush=True)
    run_app(app, config, sock)


def run_app(app: Any, config: ServiceConfig, sock: socket.socket | None = None) -> None:
    """Serve ``app`` with uvicorn until interrupted, its HTTP protocol from :mod:`userloop.api.protocol`."""
    import uvicorn

    from userloop.api.protocol import uvicorn_options

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            loop="auto",
            timeout_graceful_shutdown=10,
            **uvicorn_options(),
        )
    )
    server.run(sockets=[sock] if sock is not None else None)
    if server.started is False:
        sys.exit(1)


def serve_forever(
    workspace_path: Path, host: str = "127.0.0.1", port: int = 8000, *, sock: socket.socket | None = None
) -> None:
    """Serve ``workspace_path`` until interrupted; prints the URL first (the last step of ``make demo``)."""
    serve(workspace_path, ServiceConfig(host=host, port=port), sock=sock)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine (127.0.0.0/8, ::1, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def exposure_warning(host: str) -> str | None:
    """The warning printed when the service binds ``host`` beyond loopback; None for a loopback address."""
    if is_loopback(host):
        return None
    rule = "!" * 100
    return "\n".join(
        [
            rule,
            f"!! WARNING: userloop is binding {host}, beyond loopback: other machines can reach it over plain HTTP.",
            "!! Exposed: the collector (anyone with a write key sends events), the management API (/api/v1: with",
            "!! an admin token, all personal data, SQL over it, keys), /docs and /openapi.json. Tokens, keys and",
            "!! personal data cross the network unencrypted.",
            "!! Bind 127.0.0.1 and put a TLS reverse proxy in front that exposes only the collector paths;",
            f"!! see {DEPLOY_DOC} (section 'TLS and reverse proxy').",
            rule,
        ]
    )
