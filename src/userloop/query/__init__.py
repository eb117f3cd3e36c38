"""Queries: analyst SQL now; analyses compiled to SQL (trends, funnels, retention, …) build on it."""

from __future__ import annotations

from userloop.query.sql import SqlResult, compile_readonly, run_readonly

__all__ = ["SqlResult", "compile_readonly", "run_readonly"]
