"""The operation layer: every operation once, a typed request to a typed reply, shared by the API, the CLI
(in process or through the running server) and the console's generated client (see :mod:`userloop.ops.base`)."""

from userloop.ops.base import (
    Access,
    NoInput,
    OpContext,
    Operation,
    ProjectScoped,
    Service,
    Strict,
    find,
    operation,
    operations,
)

__all__ = [
    "Access",
    "NoInput",
    "OpContext",
    "Operation",
    "ProjectScoped",
    "Service",
    "Strict",
    "find",
    "operation",
    "operations",
]
