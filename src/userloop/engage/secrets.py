"""Channel credentials encrypted at rest: a Fernet key per workspace, values stored as ``enc:v1:<token>``.

Fernet (https://github.com/fernet/spec/blob/master/Spec.md, via ``cryptography``) is AES-128-CBC with an
HMAC-SHA256 over the whole token, so a value encrypted under another key, or altered, does not decrypt at all
(``InvalidToken``) instead of decrypting to garbage. The ``enc:v1:`` prefix marks a stored value as encrypted and
names the scheme, so a later scheme (``enc:v2:``) can sit next to it while values are rotated.

Where the key comes from (:meth:`SecretBox.for_workspace`): the environment variable ``USERLOOP_SECRET_KEY`` when
set (a Fernet key: 32 random bytes, URL-safe base64; for deployments that keep secrets out of the data volume), else
the workspace file ``secret.key``, made on first use with mode 0600. The file is written whole under a temporary
name opened with ``O_CREAT | O_EXCL`` and then published with ``link()`` (which fails if the name exists): two
processes starting at once both end up reading the one key that won, and nobody ever reads a half-written file.
Losing the key loses the stored credentials (they must be entered again); it never exposes them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets as _random
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from userloop.core.errors import ValidationError

PREFIX = "enc:v1:"
ENV_KEY = "USERLOOP_SECRET_KEY"
KEY_FILE = "secret.key"
#: What a listing shows in place of a secret; given back on update, it means "keep the stored value".
MASK = "********"


def _check_key(key: bytes, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValidationError(
            f"the secret key in {where} is not a Fernet key (32 bytes, URL-safe base64)",
            code="channel_invalid",
            field=ENV_KEY if where == ENV_KEY else KEY_FILE,
            hint="generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'",
        )
    return key


class SecretBox:
    """Encrypts and decrypts channel secrets under one Fernet key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(_check_key(key, "the given key"))
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose`` (``"links"`` signs the public open, click and unsubscribe links), derived
        from the workspace's key with HMAC-SHA256, so every process holding the key signs alike."""
        return hmac.new(self._key, f"userloop:{purpose}".encode(), hashlib.sha256).digest()

    @staticmethod
    def generate_key() -> bytes:
        return Fernet.generate_key()

    @classmethod
    def for_workspace(cls, path: Path) -> SecretBox:
        """The box of the workspace at ``path``: ``$USERLOOP_SECRET_KEY``, else ``<path>/secret.key`` (made on first
        use, mode 0600)."""
        env = os.environ.get(ENV_KEY)
        if env:
            return cls(_check_key(env.strip().encode("ascii", "replace"), ENV_KEY))
        key_path = Path(path) / KEY_FILE
        if not key_path.exists():
            _create_key_file(key_path)
        return cls(_check_key(key_path.read_bytes().strip(), str(key_path)))

    def encrypt(self, clear: str) -> str:
        """``enc:v1:`` + a Fernet token of ``clear`` (UTF-8)."""
        return PREFIX + self._fernet.encrypt(clear.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str) -> str:
        """The clear text of a value made by :meth:`encrypt`; a clear error when this key did not make it."""
        if not self.is_encrypted(value):
            raise ValidationError("the stored value is not an encrypted secret", code="channel_invalid")
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValidationError(
                "the workspace's secret key does not open this value",
                code="channel_invalid",
                hint=f"the value was encrypted under another key: restore that key ({ENV_KEY} or {KEY_FILE}) "
                "or enter the channel's secrets again",
            ) from exc

    @staticmethod
    def is_encrypted(value: object) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX)


def _create_key_file(key_path: Path) -> None:
    """Write a new key to ``key_path`` unless another process got there first (then its key stands)."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_path.with_name(f".{KEY_FILE}.{os.getpid()}.{_random.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask
            f.write(Fernet.generate_key() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, key_path)
    finally:
        tmp.unlink(missing_ok=True)
