"""The HTTP face: the collector and the management API (FastAPI).

The names below load on first use (PEP 562): the CLI imports :mod:`userloop.api.client` to talk to a running
server, and importing this package must not bring the server, the runtime and FastAPI along with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from userloop.core.lazy import lazy_exports

if TYPE_CHECKING:
    from userloop.api.app import create_app
    from userloop.api.server import serve, serve_forever
    from userloop.service.runtime import Runtime, ServiceConfig

__all__ = ["Runtime", "ServiceConfig", "create_app", "serve", "serve_forever"]

_HOMES = {
    "create_app": "userloop.api.app",
    "serve": "userloop.api.server",
    "serve_forever": "userloop.api.server",
    "Runtime": "userloop.service.runtime",
    "ServiceConfig": "userloop.service.runtime",
}


__getattr__ = lazy_exports(__name__, _HOMES, globals())
