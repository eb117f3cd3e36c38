"""Queries: analyst SQL now; analyses compiled to SQL (trends, funnels, retention, …) build on it.

The names below load on first use (PEP 562): a light submodule (:mod:`userloop.query.spec`, the request and
reply types) does not import DuckDB and Arrow with the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from userloop.core.lazy import lazy_exports

if TYPE_CHECKING:
    from userloop.query.sql import SqlResult, compile_readonly, run_readonly

__all__ = ["SqlResult", "compile_readonly", "run_readonly"]

__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "userloop.query.sql"), globals())
