"""Configuration, errors, clock and identifiers shared by every layer."""

from __future__ import annotations

from userloop.core.errors import UserloopError

__all__ = ["UserloopError"]
