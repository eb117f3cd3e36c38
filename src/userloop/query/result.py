"""The reply of an analysis, apart from the engine that computes it: a client that only reads replies (the CLI
talking to a running server) imports this module without DuckDB, Arrow or the compiler."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class QueryResult(BaseModel):
    """What ``POST /api/v1/query`` and ``userloop query --json`` return."""

    kind: str
    result: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)
    took_ms: float
    cached: bool
    data_version: int
    query_id: str | None = None
    sql: dict[str, str] | None = None
