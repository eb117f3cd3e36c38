"""userloop: a self-hosted user-operations platform.

collect → understand → segment → act → measure → iterate.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
