"""Who a record is about: device ids, login ids, and which one an event carries.

A person starts anonymous on their first device (the device id is the ``distinct_id``); from the moment they
register (the ``track_signup`` record binds the device id to the login id) their events carry the login id.
A second device is anonymous until it logs in, which binds its id to the same login id (DOMAIN §1).

Identifiers are built as fixed-width byte matrices and handed to Arrow as buffers, so millions of them cost a
few vector operations. Event and order ids are bijective mixes of a per-seed key, the chunk and a running
counter: unique by construction, deterministic, and not guessable from their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

NEVER_MS = np.iinfo(np.int64).max

_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _byte_to_hex_table(digits: np.ndarray) -> np.ndarray:
    codes = np.arange(256)
    pairs = np.stack([digits[codes >> 4], digits[codes & 15]], axis=1)
    return pairs.copy().view(np.uint16).ravel()


def _pair_to_hex_table(digits: np.ndarray) -> np.ndarray:
    """Four hex digits (as one uint32) for each 16-bit word read from big-endian bytes on this machine."""
    word = np.arange(1 << 16).astype(np.uint16)
    first, second = word.view(np.uint8).reshape(-1, 2).T.astype(np.int64)
    chars = np.stack([digits[first >> 4], digits[first & 15], digits[second >> 4], digits[second & 15]], axis=1)
    return chars.astype(np.uint8).copy().view(np.uint32).ravel()


_BYTE_HEX_LOWER = _byte_to_hex_table(_HEX_LOWER)
_BYTE_HEX_UPPER = _byte_to_hex_table(_HEX_UPPER)
_PAIR_HEX_LOWER = _pair_to_hex_table(_HEX_LOWER)


def strings_from_matrix(chars: np.ndarray) -> pa.StringArray:
    """An Arrow string array whose i-th value is the bytes of row i of a ``(n, width)`` uint8 matrix."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def decimal_strings(values: np.ndarray, width: int, prefix: bytes = b"") -> pa.StringArray:
    """``prefix`` followed by each non-negative integer zero-padded to ``width`` digits."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((values.astype(np.int64)[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (len(values), len(prefix)))
    return strings_from_matrix(np.concatenate([head, digits], axis=1))


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64, so distinct inputs give distinct outputs."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def counter_ids(key: int, chunk: int, count: int, prefix: bytes = b"", stream: int = 0) -> pa.StringArray:
    """``count`` unique ids for the records of one chunk: ``prefix`` + 16 hex digits.

    The digits are mix64(key + chunk·2⁴⁰ + stream·2³⁸ + i): a bijection of distinct counters, so ids never
    repeat within a key (for fewer than 2³⁸ records per chunk and stream, and streams 0–3).
    """
    base = np.uint64((key + (chunk << 40) + (stream << 38)) & 0xFFFFFFFFFFFFFFFF)
    words = np.ascontiguousarray(mix64(np.arange(count, dtype=np.uint64) + base), dtype=">u8").view(np.uint16)
    digits = np.take(_PAIR_HEX_LOWER, words).view(np.uint8).reshape(count, 16)
    if prefix:
        head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (count, len(prefix)))
        digits = np.concatenate([head, digits], axis=1)
    return strings_from_matrix(digits)


def _uuid_matrix(rng: np.random.Generator, n: int, upper: np.ndarray) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    lower = _BYTE_HEX_LOWER[raw].view(np.uint8).reshape(n, 32)
    upper_hex = _BYTE_HEX_UPPER[raw].view(np.uint8).reshape(n, 32)
    hexes = np.where(upper[:, None], upper_hex, lower)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    parts = [hexes[:, 0:8], dash, hexes[:, 8:12], dash, hexes[:, 12:16], dash, hexes[:, 16:20], dash, hexes[:, 20:]]
    return np.concatenate(parts, axis=1)


@dataclass(frozen=True)
class Ids:
    """Every identifier of every person, in one Arrow string array for fast ``take``.

    The array holds, for ``n`` people: the first device's id (``[0, n)``), the second device's id
    (``[n, 2n)``) and the login id (``[2n, 3n)``). Device ids look like an iOS IDFV (upper-case UUID) or an
    Android UUID (lower case); login ids are member numbers such as ``u10384756``.
    """

    n: int
    table: pa.StringArray

    @classmethod
    def build(cls, n: int, first_is_ios: np.ndarray, second_is_ios: np.ndarray, rng: np.random.Generator) -> Ids:
        first = _uuid_matrix(rng, n, first_is_ios)
        second = _uuid_matrix(rng, n, second_is_ios)
        member = rng.permutation(n).astype(np.int64) + 10_000_000
        login = decimal_strings(member, 8, b"u")
        devices = strings_from_matrix(np.concatenate([first, second], axis=0))
        table = pa.concat_arrays([devices, login])
        return cls(n=n, table=table)

    def device_index(self, person: np.ndarray, device: np.ndarray | int) -> np.ndarray:
        return np.asarray(device, dtype=np.int64) * self.n + person

    def login_index(self, person: np.ndarray) -> np.ndarray:
        return 2 * self.n + person.astype(np.int64)

    def resolve(
        self, person: np.ndarray, device: np.ndarray, time_ms: np.ndarray, signup_ms: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index into :attr:`table` of each record's ``distinct_id``, and whether it is the login id.

        ``signup_ms`` is a ``(2, n)`` array: when each person's first and second device were bound to the
        login id (:data:`NEVER_MS` if not yet). A record at or after its device's binding carries the login id.
        """
        bound = signup_ms[device, person]
        is_login = time_ms >= bound
        index = np.where(is_login, self.login_index(person), self.device_index(person, device))
        return index, is_login

    def session_events(
        self,
        person: np.ndarray,
        device: np.ndarray,
        session: np.ndarray,
        time_ms: np.ndarray,
        signup_ms: np.ndarray,
    ) -> tuple[pa.Array, np.ndarray]:
        """``distinct_id`` and ``is_login_id`` of events grouped by session.

        ``person`` and ``device`` are per session, ``session`` (ascending) and ``time_ms`` per event. Each
        session's id is gathered once; events then read them in order, which is much faster than a random
        gather per event. The few events of a session that spans a signup read the other id from a short list
        appended after the sessions' ids.
        """
        bound = signup_ms[device, person]
        is_login = time_ms >= bound[session]
        first = np.r_[0, np.flatnonzero(session[1:] != session[:-1]) + 1]
        session_login = np.zeros(len(person), dtype=bool)
        session_login[session[first]] = is_login[first]
        index = np.where(session_login, self.login_index(person), self.device_index(person, device))
        odd = np.flatnonzero(is_login != session_login[session])
        other = np.where(
            is_login[odd], self.login_index(person[session[odd]]), self.device_index(person, device)[session[odd]]
        )
        pick = session.astype(np.int64)
        pick[odd] = len(person) + np.arange(len(odd))
        ids = self.table.take(pa.array(np.concatenate([index, other])))
        return ids.take(pa.array(pick)), is_login

    def strings(self, index: np.ndarray) -> pa.Array:
        return self.table.take(pa.array(index, type=pa.int64()))
