"""The HTTP face: the collector and the management API (FastAPI)."""

from __future__ import annotations

from userloop.api.app import create_app
from userloop.api.server import serve, serve_forever
from userloop.service.runtime import Runtime, ServiceConfig

__all__ = ["Runtime", "ServiceConfig", "create_app", "serve", "serve_forever"]
