"""The error answers of the management API, for its OpenAPI document (each operation's request and reply are
typed with the operation, in :mod:`userloop.ops`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, JsonValue

from userloop.core.errors import CODES

#: The registered error codes, as the OpenAPI enum of ``error.code``.
_CODE_ENUM: list[JsonValue] = [*sorted(CODES)]


class ErrorDetail(BaseModel):
    """What went wrong: a registered code (see :data:`userloop.core.errors.CODES`), a message for people, the
    input at fault and what to do, when known."""

    code: str = Field(
        description="Stable; scripts react to it. One of the registered codes.",
        json_schema_extra={"enum": _CODE_ENUM},
    )
    message: str = Field(description="What went wrong and, where it can, what to do about it.")
    field: str | None = Field(default=None, description="The input at fault, dotted (`definition.steps.0`).")
    hint: str | None = Field(default=None, description="What to do about it.")


class ErrorOut(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


def _error_response(status: int, text: str) -> dict[str, Any]:
    codes = ", ".join(f"`{c}`" for c, entry in sorted(CODES.items()) if entry.status == status)
    return {"model": ErrorOut, "description": f"{text}; `error.code` is one of: {codes}" if codes else text}


#: The error answers every management route may give, for the OpenAPI spec (``include_router(responses=…)``);
#: each lists the codes registered with its status. Declaring 422 here replaces FastAPI's own 422 schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _error_response(status, text)
    for status, text in (
        (400, "The request breaks a rule"),
        (401, "No API token, or not a valid one"),
        (403, "The token may not do this"),
        (404, "No such project or resource"),
        (409, "The request conflicts with the workspace's state"),
        (413, "The body is larger than the server accepts"),
        (414, "The URL (path and query string) is longer than the server accepts"),
        (422, "The request does not match the route's schema; `error.field` names the field"),
        (429, "Too many requests from this address or token; retry after `Retry-After` seconds"),
        (500, "The server failed; the error is in its log"),
    )
}
