"""The error types a user can see.

Each carries a stable ``code`` so the CLI, the API and scripts can react to a kind of failure without parsing
prose, and a message that says what to do about it.
"""

from __future__ import annotations


class UserloopError(Exception):
    """Base of every error meant for the user (CLI exit code 2, HTTP 4xx)."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class WorkspaceError(UserloopError):
    """The workspace is missing, malformed or owned by another process."""

    code = "workspace"


class NotFoundError(UserloopError):
    """A named thing (project, key, file) does not exist."""

    code = "not_found"


class ValidationError(UserloopError):
    """Input that breaks a rule: a bad name, a bad mapping, a bad option."""

    code = "invalid"


class ReadOnlyViolation(UserloopError):  # noqa: N818 - a violation is what the user sees
    """An analyst query tried to write, change the schema or reach outside the project."""

    code = "read_only"


class QueryError(UserloopError):
    """An analyst query failed in the engine (syntax, unknown column, timeout)."""

    code = "query"
