"""What a collector request becomes: Sensors-format records, refusals, and the lines written to the spool.

Every wire format maps into the same Sensors record shape (``type``, ``event``, ``distinct_id``, ``time`` in
epoch ms, ``properties``…). The SDK's own dedupe id becomes ``event_id``; a record without one gets a
deterministic id here, at spool time: a hash of the project, the record's bytes and how many identical records
came before it in the same request. A replay of the spool and an SDK's retry of the same batch therefore give
the same ids (the loader drops the copies), while two different records never share one.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_RAW_CHARS = 65_536


@dataclass(frozen=True)
class Refusal:
    """One record (or a whole payload, ``index`` -1) refused at the door, with the reason."""

    index: int
    field: str
    reason: str
    raw: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass
class Intake:
    """The records of one request after mapping, and what was refused on the way."""

    records: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # index of each record in the request's messages
    refusals: list[Refusal] = field(default_factory=list)

    def add(self, index: int, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.positions.append(index)

    def refuse(self, index: int, field_name: str, reason: str, raw: object) -> None:
        self.refusals.append(Refusal(index, field_name, reason, raw_text(raw)))


def raw_text(raw: object) -> str:
    """The raw input as text for the dead letter, cut to a bounded size."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        try:
            text = orjson.dumps(raw, default=str).decode()
        except TypeError:
            text = repr(raw)
    return text[:MAX_RAW_CHARS]


def assign_ids(project: str, records: list[dict[str, Any]]) -> list[bytes]:
    """Give every record an ``event_id`` (kept when the SDK sent one) and return each as JSON bytes."""
    seen: Counter[bytes] = Counter()
    out = []
    for record in records:
        if not isinstance(record.get("event_id"), str) or not record["event_id"]:
            body = orjson.dumps(record)
            nth = seen[body]
            seen[body] += 1
            digest = hashlib.blake2b(b"%s\x1f%s\x1f%d" % (project.encode(), body, nth), digest_size=16)
            record["event_id"] = "ul-" + digest.hexdigest()
        out.append(orjson.dumps(record))
    return out


def encode(project: str, intake: Intake, max_record_bytes: int) -> list[bytes]:
    """The records of ``intake`` as spool bodies; a record larger than ``max_record_bytes`` is refused instead.

    The size is that of the record as spooled (its JSON with ``event_id``), so one record can never grow past
    what the loader reads comfortably; its neighbours in the same request are kept.
    """
    bodies = assign_ids(project, intake.records)
    kept: list[bytes] = []
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    for body, record, index in zip(bodies, intake.records, intake.positions, strict=True):
        if len(body) <= max_record_bytes:
            kept.append(body)
            records.append(record)
            positions.append(index)
        else:
            field_name, reason = oversized(record, len(body), max_record_bytes)
            intake.refusals.append(Refusal(index, field_name, reason, raw_text(body[:MAX_RAW_CHARS])))
    intake.records, intake.positions = records, positions
    return kept


def oversized(record: dict[str, Any], size: int, limit: int) -> tuple[str, str]:
    """(field, reason) for a record over the size limit: the reason names its largest field and both sizes."""
    sizes = {k: len(orjson.dumps(v)) for k, v in record.items() if k != "properties"}
    props = record.get("properties")
    if isinstance(props, dict):
        sizes.update({f"properties.{k}": len(orjson.dumps(v)) for k, v in props.items()})
    largest = max(sizes, key=sizes.__getitem__, default="record")
    return largest, (
        f"record is {size} bytes as JSON; the limit is {limit} bytes per record "
        f"(its largest field, {largest}, is {sizes.get(largest, size)} bytes)"
    )


def spool_lines(project: str, source: str, request_id: str, bodies: list[bytes], refusals: list[Refusal]) -> bytes:
    """The spool lines of one request: ``E`` lines for records (encoded by :func:`encode`), ``X`` for refusals."""
    head = f"\t{project}\t{source}\t{request_id}\t".encode()
    parts = [b"E" + head + body + b"\n" for body in bodies]
    for refusal in refusals:
        doc = {"row": refusal.index, "field": refusal.field, "reason": refusal.reason, "raw": refusal.raw}
        parts.append(b"X" + head + orjson.dumps(doc) + b"\n")
    return b"".join(parts)
