"""The FastAPI application: collector routes, the management API under ``/api/v1``, health.

Example::

    runtime = Runtime(Path("userloop-data"))
    app = create_app(runtime)          # uvicorn runs it; its lifespan starts and stops the runtime
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import duckdb
import pyarrow as pa
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from userloop import __version__
from userloop.api.fastpath import CollectorFastPath
from userloop.api.guard import ResponseGuard
from userloop.api.limits import BodyLimit, ClientLimit, preflight
from userloop.api.models import ERROR_RESPONSES
from userloop.api.routers import (
    collector,
    events,
    health,
    imports,
    jobs,
    keys,
    operations,
    profiles,
    projects,
    properties,
    rejects,
)
from userloop.core.errors import NotFoundError, UserloopError
from userloop.service.runtime import Runtime

log = logging.getLogger(__name__)


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
    for module in (health, collector, events, projects, keys, rejects, jobs, operations, imports, properties):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    for router in (profiles.tags_router, profiles.segments_router, profiles.users_router):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.router.add_api_route(
        "/{path:path}", preflight, methods=["OPTIONS"], include_in_schema=False, route_class_override=_PreflightRoute
    )
    app.add_exception_handler(UserloopError, _user_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for kind in _BAD_INPUT:
        app.add_exception_handler(kind, _bad_input)
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


#: Errors that the engines raise on a value the request brought (a number out of range, bytes that are not the
#: file they claim to be). Routes map them to a 400 naming the field where they can; these handlers catch the
#: rest, so that user input never makes a 500.
_BAD_INPUT: tuple[type[Exception], ...] = (
    OverflowError,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
    pa.ArrowInvalid,
)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    """422 with where and why, without echoing the input: a body that is not UTF-8 cannot be echoed as JSON
    (FastAPI's default handler fails on it with a 500)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]  # fmt: skip
    return JSONResponse({"detail": errors}, 422)


async def _bad_input(request: Request, exc: Exception) -> Response:
    """400 for a value of the request that an engine could not use (see ``_BAD_INPUT``)."""
    log.info("bad input on %s %s: %r", request.method, request.url.path, exc)
    message = f"a value in the request cannot be used: {exc}"
    return JSONResponse({"detail": {"code": "invalid_value", "message": message}}, 400)


async def _user_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserloopError)
    status = 404 if isinstance(exc, NotFoundError) else 400
    return JSONResponse({"detail": {"code": exc.code, "message": exc.message}}, status)
