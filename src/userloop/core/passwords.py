"""Operators' passwords: hashed with scrypt, checked in constant time, and the policy a new one must meet.

scrypt (Percival and Josefsson, RFC 7914, "The scrypt Password-Based Key Derivation Function", 2016) is
memory-hard: with ``n=2**15, r=8`` each guess costs 32 MiB of memory and about 0.1 s of one core, which makes
guessing on graphics cards and custom chips expensive. A hash is stored as one self-describing string,
``scrypt$n$r$p$salt$hash`` (salt and hash in unpadded URL-safe base64), so that the cost can be raised later while
old hashes still verify.

Example::

    >>> stored = hash_password("correct horse battery")
    >>> stored.split("$")[:4]
    ['scrypt', '32768', '8', '1']
    >>> verify_password("correct horse battery", stored)
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import cache

from userloop.core.errors import ValidationError

#: scrypt's cost parameters (RFC 7914 §2): CPU/memory cost, block size, parallelism.
N, R, P = 2**15, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024  # a longer "password" only burns the server's CPU
#: Enough memory for scrypt with the highest cost this module accepts when verifying (128 * r * n bytes, twice).
_MAXMEM = 2 * 128 * R * 2**17


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """The stored form of ``password``: ``scrypt$n$r$p$salt$hash`` with a fresh 16-byte salt (RFC 7914)."""
    salt = os.urandom(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (compared in constant time); False for a malformed ``stored``."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        cost = int(n), int(r), int(p)
        if scheme != "scrypt" or not (2 <= cost[0] <= 2**17 and 1 <= cost[1] <= 16 and cost[2] == 1):
            return False
        expected = _unb64(key)
        got = _scrypt(password, _unb64(salt), *cost)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@cache
def dummy_hash() -> str:
    """A hash of nothing anyone knows, verified when a login names no account, so that an unknown login costs as
    much time as a wrong password (no enumeration by timing)."""
    return hash_password(base64.b64encode(os.urandom(18)).decode())


def check_policy(password: str, login: str) -> None:
    """A ValidationError (in both languages) unless ``password`` is at least 10 characters and not the login."""
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"the password must have at least {MIN_LENGTH} characters / 密码至少需要 "
                              f"{MIN_LENGTH} 个字符", field="password")  # fmt: skip
    if len(password) > MAX_LENGTH:
        raise ValidationError(f"the password must have at most {MAX_LENGTH} characters / 密码最多 {MAX_LENGTH} "
                              "个字符", field="password")  # fmt: skip
    if password.strip().lower() == login.strip().lower():
        raise ValidationError("the password must not be the login name / 密码不能与登录名相同", field="password")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
