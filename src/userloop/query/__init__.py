"""Queries: analyst SQL now; analyses compiled to SQL (trends, funnels, retention, …) build on it.

The names below load on first use (PEP 562): a light submodule (:mod:`userloop.query.spec`, the request and
reply types) does not import DuckDB and Arrow with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from userloop.query.sql import SqlResult, compile_readonly, run_readonly

__all__ = ["SqlResult", "compile_readonly", "run_readonly"]

_NAMES = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("userloop.query.sql"), name)
    globals()[name] = value
    return value
