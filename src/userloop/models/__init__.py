"""Statistical models of user behaviour."""

from __future__ import annotations

__all__: list[str] = []
