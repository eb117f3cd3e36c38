"""Secrets and identifiers.

Write keys and admin tokens are 32 random bytes; they are shown once and stored as SHA-256 digests. A slow
password hash buys nothing for a 256-bit random secret (no dictionary to attack) and would tax every collector
request, so a fast digest compared in constant time is the right tool here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

WRITE_KEY_PREFIX = "ulw_"
ADMIN_TOKEN_PREFIX = "ula_"  # noqa: S105 - a prefix, not a secret


def new_secret(prefix: str) -> str:
    """A fresh URL-safe secret with a readable prefix, e.g. ``ulw_3q…``."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time check of a presented secret against its stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)


def display_prefix(secret: str) -> str:
    """The part of a secret that may be shown in listings (prefix + 6 characters)."""
    return secret[:10]
