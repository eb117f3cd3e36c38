"""The FastAPI application: collector routes, the management API under ``/api/v1``, health.

Example::

    runtime = Runtime(Path("userloop-data"))
    app = create_app(runtime)          # uvicorn runs it; its lifespan starts and stops the runtime
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from userloop import __version__
from userloop.api.fastpath import CollectorFastPath
from userloop.api.limits import BodyLimit, ClientLimit, preflight
from userloop.api.routers import (
    collector,
    events,
    health,
    imports,
    jobs,
    keys,
    models,
    profiles,
    projects,
    properties,
    query,
    rejects,
)
from userloop.api.runtime import Runtime
from userloop.core.errors import NotFoundError, UserloopError


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
    for module in (health, collector, events, projects, keys, rejects, jobs, query, imports, models, properties):
        app.include_router(module.router)
    for router in (profiles.tags_router, profiles.segments_router, profiles.users_router):
        app.include_router(router)
    app.add_api_route("/{path:path}", preflight, methods=["OPTIONS"], include_in_schema=False)
    app.add_exception_handler(UserloopError, _user_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(CollectorFastPath, runtime=runtime)
    app.add_middleware(BodyLimit, max_bytes=runtime.config.limits.max_body_bytes)
    app.add_middleware(ClientLimit, runtime=runtime)  # added last: outermost (429 before the body is read)
    return app


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    """422 with where and why, without echoing the input: a body that is not UTF-8 cannot be echoed as JSON
    (FastAPI's default handler fails on it with a 500)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]  # fmt: skip
    return JSONResponse({"detail": errors}, 422)


async def _user_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserloopError)
    status = 404 if isinstance(exc, NotFoundError) else 400
    return JSONResponse({"detail": {"code": exc.code, "message": exc.message}}, status)
