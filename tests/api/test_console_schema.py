"""The console's typed client is generated from web/src/api/openapi.json: that file is the application's own
OpenAPI document, so the console cannot call a route the API does not have (regenerate it with
``python -m userloop.api.schema web/src/api/openapi.json``)."""

from __future__ import annotations

from pathlib import Path

from userloop.api.schema import openapi_document, render

COMMITTED = Path(__file__).resolve().parents[2] / "web" / "src" / "api" / "openapi.json"


def test_the_consoles_copy_of_the_openapi_document_is_current() -> None:
    assert COMMITTED.read_bytes() == render(openapi_document()), (
        "web/src/api/openapi.json is stale: run python -m userloop.api.schema web/src/api/openapi.json "
        "and npm --prefix web run gen:api"
    )
