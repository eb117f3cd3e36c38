"""The HTTP face: the collector and the management API (FastAPI).

The names below load on first use (PEP 562): the CLI imports :mod:`userloop.api.client` to talk to a running
server, and importing this package must not bring the server, the runtime and FastAPI along with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
