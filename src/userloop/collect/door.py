"""The collector's front door: decode, authenticate, limit, check, spool, answer.

Framework-free: the API layer turns an HTTP request into a :class:`RawRequest` and the returned
:class:`Answer` back into a response, so the same path serves every wire format.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from userloop.collect.checks import Admission, Pending, Rules, problem
from userloop.collect.keys import KeyBook
from userloop.collect.limits import RateLimiter
from userloop.collect.payload import PayloadError, TooLarge
from userloop.collect.records import Intake, Refusal, encode, spool_lines
from userloop.collect.spool import Spool
from userloop.collect.wire import Decoded, RawRequest, Receipt, WireFormat

#: The largest record (as spooled JSON) the front door takes: far below what the loader reads at once.
MAX_RECORD_BYTES = 1 << 20
#: How much of an unloaded spool the door reads at start for the property names on their way.
SEED_BYTES = 256 << 20


@dataclass(frozen=True)
class Limits:
    """Request limits. ``max_body_bytes`` is enforced on the wire (413) before a handler runs.

    ``max_record_bytes`` bounds one record as spooled (its JSON): a larger record is refused on its own, with
    the field that makes it large, while its neighbours are kept. It stays far below what the loader reads at
    once, so no record can stall or swell the loader.
    """

    max_body_bytes: int = 5 << 20
    max_decompressed_bytes: int = 50 << 20
    max_records: int = 10_000
    max_record_bytes: int = MAX_RECORD_BYTES
    rate_per_second: float = 200_000.0
    burst: float = 400_000.0


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def backlog_names(spool: Spool, budget: int = SEED_BYTES) -> dict[str, Pending]:
    """The property names of the records spooled but not loaded yet (after a restart), per project.

    The door's registry snapshot cannot know them, and without them it could take a spelling the loader will
    refuse, or more new names than a cap allows. They count until the loader has loaded that backlog. A backlog
    larger than ``budget`` bytes is read only up to it (the loader still enforces every rule).
    """
    pending: dict[str, Pending] = {}
    end = spool.durable  # the start of the new segment: the backlog is everything before it
    position, read = spool.committed(), 0
    while position < end and read < budget:
        data, position = spool.read(position, 16 << 20)
        read += len(data)
        for line in data.split(b"\n"):
            parts = line.split(b"\t", 4)
            if len(parts) == 5 and parts[0] == b"E":
                try:
                    record = orjson.loads(parts[4])
                except orjson.JSONDecodeError:
                    continue
                pending.setdefault(parts[1].decode("utf-8", "replace"), Pending()).seed(record, end)
    return pending


class FrontDoor:
    """Takes requests of any wire format into the spool; see the module docstring."""

    def __init__(self, spool: Spool, keys: KeyBook, limits: Limits) -> None:
        self.spool = spool
        self.keys = keys
        self.limits = limits
        self.limiter = RateLimiter(limits.rate_per_second, limits.burst)
        self.rules: dict[str, Rules] = {}
        self.pending = backlog_names(spool)  # per project: property names on their way to the registry

    async def take(self, wire: WireFormat, raw: RawRequest, *, admin_project: str | None = None) -> Answer:
        """Answer one request. ``admin_project``: the caller holds an admin token and names the project."""
        request_id = uuid.uuid4().hex
        try:
            decoded = wire.decode(raw, self.limits.max_decompressed_bytes)
        except TooLarge as exc:
            return Answer(413, wire.error_reply(413, exc.reason))
        except PayloadError as exc:
            return await self._undecodable(wire, raw, exc, request_id)
        key = self.keys.write_key(decoded.key) if admin_project is None else self.keys.project_key(admin_project)
        if key is None:
            return Answer(401, wire.error_reply(401, "a valid project write key is required"))
        if decoded.project and decoded.project != key.project:
            return Answer(403, wire.error_reply(403, f"this write key is not for project {decoded.project!r}"))
        if len(decoded.messages) > self.limits.max_records:
            reason = f"{len(decoded.messages)} records in one request; the limit is {self.limits.max_records}"
            return Answer(413, wire.error_reply(413, reason))
        # one bucket per project, counted in records, checked before anything is taken
        wait = self.limiter.take(("project", key.project), len(decoded.messages), rate=key.rate_per_second,
                                 burst=key.burst)  # fmt: skip
        if wait == math.inf:
            burst = int(self.limiter.burst_for(key.rate_per_second, key.burst))
            reason = f"{len(decoded.messages)} records in one request; this project takes at most {burst} at once"
            return Answer(413, wire.error_reply(413, reason))
        if wait:
            answer = Answer(429, wire.error_reply(429, "rate limit exceeded; retry later"))
            answer.headers["Retry-After"] = str(int(wait))
            return answer
        receipt = await self._spool(wire, decoded, key.project, request_id)
        status, body = wire.reply(receipt)
        return Answer(status, body, self.keys.cors_headers(key.project, raw.headers.get("origin")))

    async def _spool(self, wire: WireFormat, decoded: Decoded, project: str, request_id: str) -> Receipt:
        now_ms = int(time.time() * 1000)
        intake = wire.to_intake(decoded, now_ms)
        bodies = encode(project, intake, self.limits.max_record_bytes)
        pending = self.pending.setdefault(project, Pending())
        pending.prune(self.spool.loaded)
        entry = pending.begin()
        end = None
        try:
            self._check(intake, bodies, self.rules.get(project) or Rules(), now_ms, pending, entry)
            intake.refusals.sort(key=lambda r: r.index)
            receipt = Receipt(len(decoded.messages), len(bodies), intake.refusals, request_id, decoded.dry_run)
            if not decoded.dry_run and (bodies or intake.refusals):
                end = await self.spool.write(spool_lines(project, wire.source, request_id, bodies, intake.refusals))
        finally:
            pending.spooled(entry, end)
        return receipt

    @staticmethod
    def _check(
        intake: Intake,
        bodies: list[bytes],
        rules: Rules,
        now_ms: int,
        pending: Pending,
        entry: Admission,
    ) -> None:
        """Refuse the records that break a rule; ``bodies`` (their spool encoding) keeps only the others.

        The new property names of kept records are admitted in ``entry``: they count against the project's
        caps and spellings until the loader has committed past this request.
        """
        kept: list[dict[str, Any]] = []
        positions: list[int] = []
        kept_bodies: list[bytes] = []
        for record, index, body in zip(intake.records, intake.positions, bodies, strict=True):
            found = problem(record, rules, now_ms, pending, entry)
            if found is None:
                kept.append(record)
                positions.append(index)
                kept_bodies.append(body)
            else:
                intake.refuse(index, found[0], found[1], record)
        intake.records, intake.positions = kept, positions
        bodies[:] = kept_bodies

    async def _undecodable(self, wire: WireFormat, raw: RawRequest, exc: PayloadError, request_id: str) -> Answer:
        """Keep an unreadable payload in the dead letter when the request still proves whose it is."""
        hint = raw.query.get("token") or raw.basic_user or raw.bearer or raw.query.get("api_key")
        key = self.keys.write_key(hint)
        if key is None:  # nothing proves whose payload this is: keep nothing, say why
            return Answer(401, wire.error_reply(401, f"{exc.reason}; and no valid write key outside the payload"))
        refusals = [Refusal(-1, exc.field, exc.reason, exc.raw)]
        await self.spool.write(spool_lines(key.project, wire.source, request_id, [], refusals))
        return Answer(400, wire.error_reply(400, exc.reason))
