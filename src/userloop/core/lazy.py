"""Package names that load on first use (PEP 562 module ``__getattr__``).

A package whose ``__init__`` re-exports its main classes would otherwise import their engines (DuckDB, Arrow,
FastAPI) whenever any light submodule of it is imported; the CLI's start-up and the HTTP client depend on not
paying for that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``homes`` (name → the module that defines it) is
    imported from its home on first use and kept in ``namespace`` (the package's ``globals()``), so the next use
    is a plain lookup; any other name is an ``AttributeError``, as for a module without it."""

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return load
