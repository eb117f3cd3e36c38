"""The one error body of the HTTP face, for every 4xx and 5xx::

    {"error": {"code": "not_found", "message": "no project named 'shop'", "field": "project", "hint": "…"}}

``code`` is registered in :data:`userloop.core.errors.CODES` with the status it answers; ``field`` and ``hint``
appear only when known. The exception handlers installed by :func:`install` give this body to a
:class:`~userloop.core.errors.UserloopError` (its registered status), to the framework's errors (an unknown path,
a wrong method, a route's ``HTTPException``), to the 422 of a request that does not match its schema, and to
values an engine could not use; :func:`send_error` gives it from ASGI middleware, before any route runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pyarrow as pa
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import Send

from userloop.core.errors import UserloopError, code_for_status, error_body, registered
from userloop.store.duck import BAD_VALUE_ERRORS

log = logging.getLogger(__name__)

#: Errors that the engines raise on a value the request brought (a number out of range, bytes that are not the
#: file they claim to be). Routes map them to a 400 naming the field where they can; these handlers catch the
#: rest, so that user input never makes a 500.
BAD_INPUT: tuple[type[Exception], ...] = (OverflowError, *BAD_VALUE_ERRORS, pa.ArrowInvalid)
#: Where FastAPI says a request field came from: the first element of a validation error's location.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
#: FastAPI's detail of the 400 for a body it cannot decode.
_UNPARSABLE = "There was an error parsing the body"
#: Field errors named in a 422's message at most (the rest are counted).
_NAMED_ERRORS = 5


def json_error(
    code: str,
    message: str,
    *,
    status: int | None = None,
    field: str | None = None,
    hint: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error answer for ``code``, with the code's registered status unless ``status`` is given."""
    body = orjson.dumps(error_body(code, message, field=field, hint=hint))
    return Response(body, status or registered(code).status, dict(headers or {}), media_type="application/json")


async def send_error(
    send: Send,
    code: str,
    message: str,
    *,
    retry_after: float | None = None,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """The error answer for ``code`` sent straight on the ASGI channel (from middleware, before any handler)."""
    body = orjson.dumps(error_body(code, message))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_seconds(retry_after)).encode()))
    await send({"type": "http.response.start", "status": registered(code).status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def retry_seconds(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least one."""
    return max(1, math.ceil(wait)) if math.isfinite(wait) else 3600


def install(app: FastAPI) -> None:
    """Give every error ``app`` answers the one body."""
    app.add_exception_handler(UserloopError, _user_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for kind in BAD_INPUT:
        app.add_exception_handler(kind, _bad_input)


async def _user_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserloopError)
    return json_error(exc.code, exc.message, field=exc.field, hint=exc.hint)


async def _http_error(request: Request, exc: Exception) -> Response:
    """A framework error or a route's ``HTTPException``: its status, with the code the status means (or the
    ``{code, message}`` the route gave as its detail)."""
    assert isinstance(exc, HTTPException)
    detail: Any = exc.detail
    code, field = code_for_status(exc.status_code), None
    if isinstance(detail, dict):
        code, message = str(detail.get("code", code)), str(detail.get("message", ""))
    elif exc.status_code == 404 and detail == "Not Found":  # the router's own: no route serves the path
        message = f"no route serves {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":  # the router's own
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    elif detail == _UNPARSABLE:  # FastAPI's own, for a body it cannot decode (not UTF-8)
        message, field = "the body cannot be read as JSON (is it UTF-8?)", "body"
    else:
        message = str(detail)
    registered(code)
    return json_error(code, message, status=exc.status_code, field=field, headers=exc.headers)


async def _invalid_request(_request: Request, exc: Exception) -> Response:
    """422 naming the fields and why, without echoing the input: a body that is not UTF-8 cannot be echoed as
    JSON (FastAPI's default handler fails on it with a 500)."""
    assert isinstance(exc, RequestValidationError)
    errors = [(_field(e), str(e.get("msg", ""))) for e in exc.errors()]
    if not errors:
        return json_error("invalid_request", "the request does not match the route's schema")
    named = "; ".join(f"{where}: {why}" for where, why in errors[:_NAMED_ERRORS])
    more = f" (and {len(errors) - _NAMED_ERRORS} more)" if len(errors) > _NAMED_ERRORS else ""
    return json_error("invalid_request", named + more, field=errors[0][0])


def _field(error: Mapping[str, Any]) -> str:
    """The dotted location of a validation error, without its source (``definition.steps.0``, ``limit``); the
    source alone when the error concerns it as a whole (a body that is not JSON)."""
    loc = [str(part) for part in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        return loc[0] if loc else "body"
    rest = loc[1:] if loc and loc[0] in _SOURCES else loc
    return ".".join(rest or loc) or "request"


async def _bad_input(request: Request, exc: Exception) -> Response:
    """400 for a value of the request that an engine could not use (see :data:`BAD_INPUT`)."""
    log.info("bad input on %s %s: %r", request.method, request.url.path, exc)
    return json_error("invalid_value", f"a value in the request cannot be used: {exc}")
