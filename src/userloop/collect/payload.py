"""Decoding request bodies: gzip, base64, form fields and JSON, each failure a :class:`PayloadError`.

Decompression is bounded (``max_bytes``), so a small gzip bomb cannot grow into gigabytes in memory.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any
from urllib.parse import parse_qs

import orjson

from userloop.collect.records import raw_text


class PayloadError(Exception):
    """The request body cannot be read; ``raw`` is kept for the dead letter."""

    def __init__(self, reason: str, raw: object = b"", *, field: str = "payload") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.raw = raw_text(raw)


class TooLarge(PayloadError):  # noqa: N818 - the name is what the client is told
    """The body, once decompressed, exceeds the limit."""


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (or zlib) data, refusing output larger than ``max_bytes``."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise PayloadError(f"body is not valid gzip: {exc}", data) from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise TooLarge(f"decompressed body is larger than {max_bytes} bytes", data[:1024])
    return out


def maybe_gunzip(data: bytes, max_bytes: int, *, encoding: str | None = None) -> bytes:
    """Gunzip when the header says so or the bytes start with the gzip magic number."""
    if (encoding or "").lower() == "gzip" or data[:2] == b"\x1f\x8b":
        return gunzip(data, max_bytes)
    return data


def b64decode(text: str | bytes) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    data = data.strip().replace(b"-", b"+").replace(b"_", b"/")
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"data is not valid base64: {exc}", text) from exc


def parse_json(data: bytes | str, what: str = "body") -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc}", data) from exc


def parse_form(data: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body: the first value of each field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("form body is not UTF-8", data) from exc
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=1000)
    except ValueError as exc:
        raise PayloadError(f"form body cannot be read: {exc}", data) from exc
    return {k: v[0] for k, v in fields.items() if v}


def json_or_base64(value: str, max_bytes: int, *, gzipped: bool = False, what: str = "data") -> Any:
    """A form value that holds JSON, base64 of JSON, or base64 of gzip of JSON."""
    stripped = value.lstrip()
    if not gzipped and stripped[:1] in ("{", "["):
        return parse_json(stripped, what)
    raw = b64decode(value)
    if gzipped or raw[:2] == b"\x1f\x8b":
        raw = gunzip(raw, max_bytes)
    return parse_json(raw, what)


def as_list(doc: Any) -> list[Any]:
    return doc if isinstance(doc, list) else [doc]
