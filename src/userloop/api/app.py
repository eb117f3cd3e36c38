"""The FastAPI application: collector routes, the management API under ``/api/v1``, health.

Example::

    runtime = Runtime(Path("userloop-data"))
    app = create_app(runtime)          # uvicorn runs it; its lifespan starts and stops the runtime
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from starlette.types import Scope

from userloop import __version__
from userloop.api import console, errors
from userloop.api.fastpath import CollectorFastPath
from userloop.api.guard import ResponseGuard
from userloop.api.limits import BodyLimit, ClientLimit, UrlLimit, preflight
from userloop.api.models import ERROR_RESPONSES
from userloop.api.routers import (
    auth,
    collector,
    engage_public,
    events,
    health,
    imports,
    member_app,
    member_app_engagement,
    member_app_exchange,
    operations,
    profiles,
)
from userloop.service.collectors import CollectorRuntime
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
        docs_url=None,  # served below, with assets from DOCS_ASSETS instead of a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    _install_docs(app)
    routers = (health, auth, collector, events, operations, imports, profiles, engage_public, member_app,
               member_app_engagement, member_app_exchange)  # fmt: skip
    for module in routers:
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.router.add_api_route(
        "/{path:path}", preflight, methods=["OPTIONS"], include_in_schema=False, route_class_override=_PreflightRoute
    )
    console.install(app)  # /assets and, for a GET no route matched, the console's page
    errors.install(app)
    app.add_middleware(CollectorFastPath, runtime=runtime)
    app.add_middleware(BodyLimit, max_bytes=runtime.config.limits.max_body_bytes)
    app.add_middleware(UrlLimit)
    app.add_middleware(ClientLimit, runtime=runtime)  # 429 before the body is read
    app.add_middleware(ResponseGuard)  # added last: outermost (headers on every answer, the last-resort 500)
    return app


def create_collector_app(runtime: CollectorRuntime) -> FastAPI:
    """A collector process's application (``userloop serve --collector-only``): the SDKs' collector paths (served
    by the fast path, as in the service) and ``/healthz``; every other path is a 404 (the API is the service's)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="userloop collector", version=__version__, lifespan=lifespan, redirect_slashes=False,
                  docs_url=None, redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.runtime = runtime
    app.add_api_route("/healthz", health.healthz, methods=["GET"], include_in_schema=False)
    app.router.add_api_route(
        "/{path:path}", preflight, methods=["OPTIONS"], include_in_schema=False, route_class_override=_PreflightRoute
    )
    errors.install(app)
    app.add_middleware(CollectorFastPath, runtime=runtime)
    app.add_middleware(BodyLimit, max_bytes=runtime.config.limits.max_body_bytes)
    app.add_middleware(UrlLimit)
    app.add_middleware(ClientLimit, runtime=runtime)
    app.add_middleware(ResponseGuard)
    return app


#: Where the interactive docs' scripts, styles and icon are served from (no credentials needed, as /healthz).
DOCS_ASSETS = "/docs-assets"


def docs_assets_dir() -> Path:
    """The Swagger UI and ReDoc files, as the locked package ``fastapi-offline`` ships them."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def _install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` whose pages load every asset from userloop itself, so they work on
    a machine without internet (FastAPI's defaults load them from the jsDelivr CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{app.openapi_url}", title="userloop API — Swagger UI",
            oauth2_redirect_url=oauth2_redirect, swagger_js_url=f"{base}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{DOCS_ASSETS}/favicon.png",
        )  # fmt: skip

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}{app.openapi_url}", title="userloop API — ReDoc",
            redoc_js_url=f"{base}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )  # fmt: skip


class _PreflightRoute(APIRoute):
    """The catch-all OPTIONS route; it does not match other methods, so a path no route serves is a 404 (a route
    matching the path for OPTIONS alone would make every unknown path a 405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("method") != "OPTIONS":
            return Match.NONE, {}
        return super().matches(scope)
