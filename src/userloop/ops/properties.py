"""The property registry: names, tables, types and display names."""

from __future__ import annotations

from pydantic import Field

from userloop.ops.base import OpContext, ProjectScoped, Strict, operation


class PropertyOut(Strict):
    table: str = Field(description="events, users or items.")
    name: str
    type: str
    display_zh: str | None
    display_en: str | None
    first_seen: str


class ListProperties(ProjectScoped):
    """The project whose registry to list."""


@operation("properties.list", "GET", "/api/v1/properties", right="read",
           summary="List a project's registered properties")  # fmt: skip
def list_properties(ctx: OpContext, req: ListProperties) -> list[PropertyOut]:
    return [PropertyOut.model_validate(r) for r in ctx.store.property_rows()]
