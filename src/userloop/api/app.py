"""The FastAPI application: collector routes, the management API under ``/api/v1``, health.

Example::

    runtime = Runtime(Path("userloop-data"))
    app = create_app(runtime)          # uvicorn runs it; its lifespan starts and stops the runtime
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from userloop import __version__
from userloop.api import errors
from userloop.api.fastpath import CollectorFastPath
from userloop.api.guard import ResponseGuard
from userloop.api.limits import BodyLimit, ClientLimit, preflight
from userloop.api.models import ERROR_RESPONSES
from userloop.api.routers import collector, events, health, imports, operations, profiles
from userloop.service.runtime import Runtime


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> FastAPI:
    """The application for ``runtime``; with ``manage_runtime`` its lifespan starts and stops the runtime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="userloop",
        version=__version__,
        description="Collector (Sensors, Segment, PostHog, Mixpanel, native) and management API.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    for module in (health, collector, events, operations, imports, profiles):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.router.add_api_route(
        "/{path:path}", preflight, methods=["OPTIONS"], include_in_schema=False, route_class_override=_PreflightRoute
    )
    errors.install(app)
    app.add_middleware(CollectorFastPath, runtime=runtime)
    app.add_middleware(BodyLimit, max_bytes=runtime.config.limits.max_body_bytes)
    app.add_middleware(ClientLimit, runtime=runtime)  # 429 before the body is read
    app.add_middleware(ResponseGuard)  # added last: outermost (headers on every answer, the last-resort 500)
    return app


class _PreflightRoute(APIRoute):
    """The catch-all OPTIONS route; it does not match other methods, so a path no route serves is a 404 (a route
    matching the path for OPTIONS alone would make every unknown path a 405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") != "OPTIONS":
            return Match.NONE, {}
        return super().matches(scope)
