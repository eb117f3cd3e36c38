"""Delivery: the outbox's pending effects carried out once, under the project's delivery rules.

A :class:`Deliverer` claims due rows (``pending`` and due, or ``sending`` whose lease ran out because a worker
died), marks them ``sending`` with a lease and commits *before* it calls any provider, then records each result.
So a crash can leave a row ``sending``; it is claimed again after its lease and sent again **with the same key**
(the e-mail ``Message-ID``, a push ``request_id``, an SMS ``OutId``), which lets the receiving side recognise the
second copy: large mailbox providers drop a second message with the same ``Message-ID``, JPush and Getui return the
first result for a repeated id. A row ``sent`` is never claimed again. On PostgreSQL several processes claim with
``FOR UPDATE SKIP LOCKED``.

For each marketing send, in this order (transactional messages skip all but reachability):
1. the **global control group** (a stable hash share of everyone, :func:`userloop.engage.rules.in_global_control`)
   receives nothing: ``suppressed``;
2. **reachability and subscriptions**: the first of the node's channels (then its fallbacks) with an address, the
   person reachable (push enabled, app installed) and not opted out of that channel's topic; none:
   ``unreachable`` / ``unsubscribed``;
3. **quiet hours** in the person's zone: held to the next allowed time (``defer``) or ``quiet_dropped``;
4. **frequency caps** per person per channel per local day and week: ``capped``, and the person has moved on;
5. the channel's **rate limit**: over it, the row waits for its slot (never dropped).
Then the benefit is granted (idempotently, by the same key), the material is rendered in the sandbox with the
person's profile, the benefit and signed links, and the channel sends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, and_, bindparam, or_, select, update

from userloop import benefits
from userloop.core.errors import NotFoundError, UserloopError
from userloop.engage import rules, tracking
from userloop.engage.channels.base import Channel, ChannelError, Delivery, Message
from userloop.engage.interpreter import effect_key
from userloop.engage.journey import Journey, Points, Webhook
from userloop.engage.settings import EngageSettings
from userloop.engage.settings import load as load_settings
from userloop.engage.tables import (
    JourneyVersion,
    MaterialRow,
    OutboxRow,
    SubscriptionRow,
)
from userloop.engage.templates import Material, RenderScope, add_pixel, render, track_links
from userloop.membership.accounts import ledger_of
from userloop.membership.ledger_types import Earn
from userloop.membership.members import Programmes, SavedProgramme, get_member, join
from userloop.store.meta import MetaStore, Project

log = logging.getLogger(__name__)
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_PK = ("journey_id", "version", "node", "person", "occurrence")
#: Marketing sends counted against the caps: a week and a day back covers any local week.
_CAP_LOOKBACK = timedelta(days=8)
#: The note on a row held back to its slot under a channel's rate limit.
RATE_LIMITED = "rate_limited"
#: Statuses that end a row; ``reported`` then waits for the delivery event to be written.
FINAL = ("sent", "failed", "capped", "quiet_dropped", "suppressed", "unreachable", "unsubscribed", "done")


class ChannelSource(Protocol):
    """The project's opened channels by name (:class:`userloop.engage.channels.registry.ChannelBook`); a ``lane``
    above 0 is another adapter of the channel, with its own connection."""

    def get(self, name: str, lane: int = 0) -> Channel: ...


@dataclass
class Tally:
    """What a delivery pass did, by final status; ``deferred`` rows wait for quiet hours or the rate limit."""

    by_status: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    retried: int = 0

    def add(self, status: str, n: int = 1) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + n

    @property
    def handled(self) -> int:
        return sum(self.by_status.values()) + self.deferred + self.retried


@dataclass
class _Row:
    pk: tuple[int, int, str, int, int]
    kind: str
    channel: str | None
    category: str
    payload: dict[str, Any]
    attempts: int
    path: str
    status: str = ""
    due_at: datetime | None = None
    error: str | None = None
    provider_id: str | None = None
    #: the row waited for its slot under the channel's rate limit already: it goes now, without a new slot
    slotted: bool = False

    @property
    def key(self) -> str:
        return effect_key(*self.pk)

    @property
    def person(self) -> int:
        return self.pk[3]


class Deliverer:
    """Carries out one project's outbox. ``link_secret`` signs the public links (open, click, unsubscribe)."""

    def __init__(
        self,
        meta: MetaStore,
        project: Project,
        channels: ChannelSource,
        *,
        link_secret: bytes,
        worker: str = "main",
        lease: timedelta = timedelta(seconds=60),
        batch: int = 200,
        max_attempts: int = 5,
        lanes: int = 4,
    ) -> None:
        self.meta = meta
        self.project = project
        self.channels = channels
        self.link_secret = link_secret
        self.worker = worker
        self.lease = lease
        self.batch = batch
        self.max_attempts = max_attempts
        self.lanes = lanes
        self._postgres = meta.engine.dialect.name == "postgresql"
        self._limiters: dict[str, rules.RateLimiter] = {}
        self._materials: dict[str, Material] = {}
        self._definitions: dict[tuple[int, int], Journey] = {}

    # the pass ----------------------------------------------------------------------------------------------
    def run_once(self, now: datetime) -> Tally:
        """Claim up to ``batch`` due rows, carry them out, record the results; returns what happened."""
        tally = Tally()
        rows = self._claim(now)
        if not rows:
            return tally
        settings = load_settings(self.meta, self.project.id)
        self._materials.clear()
        sends = [r for r in rows if r.kind == "send"]
        self._apply_rules(sends, settings, now)
        for r in rows:
            if r.kind == "grant":
                try:
                    self._grant_for(r, now)
                except UserloopError as exc:  # an unknown or used-up benefit fails this row, not the pass
                    r.status, r.error = "failed", f"{exc.code}: {exc}"[:200]
                r.status = r.status or "done"
            elif r.kind == "points":
                self._points_for(r, now)
            elif r.kind == "webhook":
                self._webhook_message(r)
        ready = [r for r in rows if not r.status]
        self._rate_limit(ready, now)
        messages: dict[str, list[tuple[_Row, Message]]] = {}
        for r in ready:
            if r.status:
                continue
            try:
                msg = self._message(r, settings, now) if r.kind == "send" else self._webhook(r)
            except UserloopError as exc:
                r.status, r.error = "failed", f"{exc.code}: {exc}"[:200]
                continue
            if msg is not None:
                messages.setdefault(r.payload["_channel"], []).append((r, msg))
        for name, pairs in messages.items():
            self._send(name, pairs, now)
        self._record(rows, now, tally)
        return tally

    # claiming ----------------------------------------------------------------------------------------------
    def _claim(self, now: datetime) -> list[_Row]:
        t = _OUTBOX.c
        due = or_(
            and_(t.status == "pending", t.due_at <= now),
            and_(t.status == "sending", t.claimed_until < now),
        )
        stmt = (
            select(*(t[c] for c in _PK), t.kind, t.channel, t.category, t.payload, t.attempts, t.path, t.error)
            .where(t.project_id == self.project.id, t.kind.in_(("send", "grant", "points", "webhook")), due)
            .order_by(t.due_at)
            .limit(self.batch)
        )
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        until = now + self.lease
        with self.meta.engine.begin() as conn:
            found = conn.execute(stmt).all()
            if not found:
                return []
            conn.execute(
                update(_OUTBOX)
                .where(*(t[c] == bindparam(f"k_{c}") for c in _PK))
                .values(status="sending", claimed_by=self.worker, claimed_until=until, attempts=t.attempts + 1),
                [{f"k_{c}": v for c, v in zip(_PK, row[:5], strict=True)} for row in found],
            )
        return [
            _Row(
                pk=(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4])),
                kind=r[5],
                channel=r[6],
                category=r[7],
                payload=json.loads(r[8] or "{}"),
                attempts=int(r[9]) + 1,
                path=r[10] or "",
                slotted=r[11] == RATE_LIMITED,
            )
            for r in found
        ]

    # rules -------------------------------------------------------------------------------------------------
    def _apply_rules(self, sends: list[_Row], settings: EngageSettings, now: datetime) -> None:
        persons = sorted({r.person for r in sends})
        opted_out = self._opted_out(persons)
        history = self._history(persons, now) if settings.caps else {}
        for r in sends:
            marketing = r.category == "marketing"
            share = settings.control_share
            if marketing and share > 0 and rules.in_global_control(settings.control_salt, r.person, share):
                r.status, r.error = "suppressed", "global_control"
                continue
            chosen, reasons = self._choose(r, opted_out.get(r.person, set()), marketing)
            if chosen is None:
                unsub = reasons and all(x.startswith("unsubscribed") for x in reasons)
                r.status, r.error = ("unsubscribed" if unsub else "unreachable"), ";".join(reasons)[:200]
                continue
            r.payload["_channel"], r.payload["_to"] = chosen
            zone = str(r.payload.get("zone") or self.project.timezone)
            if marketing and settings.quiet_hours is not None and rules.quiet(now, zone, settings.quiet_hours):
                if settings.quiet_hours.policy == "drop":
                    r.status, r.error = "quiet_dropped", "quiet_hours"
                else:
                    r.status, r.due_at = "pending", rules.next_allowed(now, zone, settings.quiet_hours)
                continue
            if marketing:
                sent = history.setdefault(r.person, [])
                channel = chosen[0]
                for rule in settings.caps:
                    if not rule.applies(channel):
                        continue
                    counted = [at for ch, at in sent if rule.applies(ch)]
                    if rules.capped(counted, now, zone, rule):
                        r.status, r.error = "capped", f"cap:{rule.channel}"
                        break
                else:
                    sent.append((channel, now))  # later rows of this batch count this send

    def _choose(self, r: _Row, opted_out: set[str], marketing: bool) -> tuple[tuple[str, str] | None, list[str]]:
        reasons: list[str] = []
        for c in r.payload.get("candidates", []):
            name, to, why = c.get("channel"), c.get("to"), c.get("why")
            if why or not to:
                reasons.append(f"{why or 'no_address'}@{name}")
                continue
            topic = str(c.get("topic") or name)
            if marketing and (topic in opted_out or name in opted_out or "*" in opted_out):
                reasons.append(f"unsubscribed@{name}")
                continue
            return (str(name), str(to)), reasons
        return None, reasons

    def _opted_out(self, persons: Sequence[int]) -> dict[int, set[str]]:
        return opted_out(self.meta, self.project.id, persons)

    def _history(self, persons: Sequence[int], now: datetime) -> dict[int, list[tuple[str, datetime]]]:
        return sent_history(self.meta, self.project.id, persons, now)

    def _rate_limit(self, rows: list[_Row], now: datetime) -> None:
        """Hold rows beyond their channel's rate to the slot the limiter gives them."""
        by_channel: dict[str, list[_Row]] = {}
        for r in rows:
            name = r.payload.get("_channel")
            if r.status or not name or r.slotted:
                continue
            limiter = self._limiter(str(name))
            if limiter is not None:
                by_channel.setdefault(str(name), []).append(r)
        for name, group in by_channel.items():
            limiter = self._limiter(name)
            assert limiter is not None
            for r, slot in zip(group, limiter.reserve_many(now, len(group)), strict=True):
                if slot > now + timedelta(milliseconds=5):
                    r.status, r.due_at, r.error = "pending", slot, RATE_LIMITED

    def _limiter(self, name: str) -> rules.RateLimiter | None:
        if name not in self._limiters:
            from userloop.engage.tables import ChannelRow

            with self.meta.session() as s:
                rate = s.scalar(
                    select(ChannelRow.rate_per_second).where(
                        ChannelRow.project_id == self.project.id, ChannelRow.name == name
                    )
                )
            self._limiters[name] = rules.RateLimiter(rate, burst=max(1, int(rate))) if rate else None  # type: ignore[assignment]
        return self._limiters.get(name)

    # building messages ---------------------------------------------------------------------------------------
    def _message(self, r: _Row, settings: EngageSettings, now: datetime) -> Message:
        channel_name, to = str(r.payload["_channel"]), str(r.payload["_to"])
        channel = self.channels.get(channel_name)
        material = self._material(str(r.payload.get("material")))
        benefit = self._grant_for(r, now) if r.payload.get("benefit") else {}
        zone = str(r.payload.get("zone") or self.project.timezone)
        base = settings.public_url.rstrip("/")
        claims: dict[str, str | int] = {"p": self.project.id, "k": r.key, "u": r.person, "c": channel_name}
        unsubscribe = f"{base}/t/u/{tracking.sign(self.link_secret, 'unsubscribe', claims, None)}"
        person = {"id": r.person, **r.payload.get("scope", {})}
        if r.payload.get("locale") is not None:
            person[material.locale_property] = r.payload["locale"]
        scope = RenderScope(
            person=person,
            benefit=benefit,
            links={"unsubscribe": unsubscribe},
            journey={"name": r.payload.get("journey", "")},
            timezone=zone,
        )
        result = render(material, scope, settings.default_locale)
        body = result.text
        if material.html:
            body = track_links(
                body,
                lambda url: f"{base}/t/c/{tracking.sign(self.link_secret, 'click', {**claims, 'url': url}, None)}",
                keep=[unsubscribe],
            )
            body = add_pixel(body, f"{base}/t/o/{tracking.sign(self.link_secret, 'open', claims, None)}")
        return Message(
            key=r.key,
            channel=channel.kind,
            person=r.person,
            to=to,
            body=body,
            subject=result.subject,
            html=material.html,
            params=result.params,
            category="marketing" if r.category == "marketing" else "transactional",
            unsubscribe_url=unsubscribe if r.category == "marketing" else None,
        )

    def _material(self, name: str) -> Material:
        found = self._materials.get(name)
        if found is None:
            with self.meta.session() as s:
                text = s.scalar(
                    select(MaterialRow.definition).where(
                        MaterialRow.project_id == self.project.id, MaterialRow.name == name
                    )
                )
            if text is None:
                raise UserloopError(f"no material {name!r} in this project", code="template_invalid")
            found = self._materials[name] = Material.model_validate_json(text)
        return found

    def _webhook_message(self, r: _Row) -> None:
        """A webhook node goes through the project's first webhook channel, to the node's URL."""
        from userloop.engage.tables import ChannelRow

        with self.meta.session() as s:
            name = s.scalar(
                select(ChannelRow.name)
                .where(ChannelRow.project_id == self.project.id, ChannelRow.kind == "webhook")
                .order_by(ChannelRow.id)
            )
        if name is None:
            r.status, r.error = "failed", "no_webhook_channel"
            return
        r.payload["_channel"] = name

    def _webhook(self, r: _Row) -> Message:
        journey = self._definition(r.pk[0], r.pk[1])
        node = journey.node(r.pk[2])
        assert isinstance(node, Webhook)
        body = json.dumps({"journey": journey.name, "node": node.id, "person": r.person, "path": r.path})
        return Message(key=r.key, channel="webhook", person=r.person, to=node.url, body=body, category="transactional")

    def _definition(self, journey_id: int, version: int) -> Journey:
        key = (journey_id, version)
        if key not in self._definitions:
            with self.meta.session() as s:
                row = s.get(JourneyVersion, key)
                assert row is not None
                self._definitions[key] = Journey.model_validate_json(row.definition)
        return self._definitions[key]

    # member points -----------------------------------------------------------------------------------------
    def _points_for(self, r: _Row, now: datetime) -> None:
        """Book the row's points once: the ledger's request id is the row's key, so a retry after a crash returns
        the first booking. A person who is not a member is ``not_member`` unless the node joins them first; a
        programme or wallet that is gone fails the row with its code."""
        node = self._definition(r.pk[0], r.pk[1]).node(r.pk[2])
        assert isinstance(node, Points)
        try:
            saved = Programmes(self.meta, self.project).get(node.programme)
            if node.join:
                join(self.meta, saved, r.person, now)
            elif not _is_member(self.meta, saved, r.person):
                r.status, r.error = "failed", "not_member"
                return
            ledger_of(self.meta, saved).post(
                Earn(
                    person=r.person,
                    wallet=node.wallet,
                    amount=node.amount,
                    request_id=f"journey:{r.key}",
                    reason=node.reason or f"journey {r.pk[0]} node {node.id}",
                ),
                now,
            )
        except UserloopError as exc:
            r.status, r.error = "failed", f"{exc.code}: {exc}"[:200]
            return
        r.status = "done"

    # benefits ----------------------------------------------------------------------------------------------
    def _grant_for(self, r: _Row, now: datetime) -> dict[str, Any]:
        """Grant the row's benefit once (the grant is keyed like the row) and return what the template shows.
        A benefit whose stock is used up fails the row with ``benefit_exhausted``."""
        name = r.payload.get("benefit") or r.payload.get("_benefit")
        if not name and r.kind == "grant":
            name = self._definition(r.pk[0], r.pk[1]).node(r.pk[2]).model_dump().get("benefit")
        if not name:
            return {}
        try:
            with self.meta.engine.begin() as conn:
                given = benefits.grant(conn, project_id=self.project.id, name=name, key=r.key, person=r.person,
                                       now=now, secret=self.link_secret)  # fmt: skip
        except UserloopError as exc:
            if exc.code == "benefit_exhausted":
                r.status, r.error = "failed", "benefit_exhausted"
            raise
        return given.as_template()

    # sending and recording -----------------------------------------------------------------------------------
    def _send(self, name: str, pairs: list[tuple[_Row, Message]], now: datetime) -> None:
        """Send on ``lanes`` connections of the channel at once (a provider's round trip, not our CPU, is what
        bounds one connection), each lane a contiguous share of the batch."""
        lanes = max(1, min(self.lanes, len(pairs) // 20 or 1))
        if lanes == 1:
            self._send_lane(name, 0, pairs, now)
            return
        share = -(-len(pairs) // lanes)
        parts = [pairs[i : i + share] for i in range(0, len(pairs), share)]
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            for f in [pool.submit(self._send_lane, name, lane, part, now) for lane, part in enumerate(parts)]:
                f.result()

    def _send_lane(self, name: str, lane: int, pairs: list[tuple[_Row, Message]], now: datetime) -> None:
        try:
            channel = self.channels.get(name, lane)
            deliveries = channel.send([m for _, m in pairs])
        except ChannelError as exc:
            log.warning("channel %s cannot send now: %s", name, exc)
            for r, _ in pairs:
                self._retry(r, now, f"channel_unavailable: {exc}")
            return
        except UserloopError as exc:
            for r, _ in pairs:
                r.status, r.error = "failed", f"{exc.code}: {exc}"[:200]
            return
        for (r, _), d in zip(pairs, deliveries, strict=True):
            self._result(r, d, now)

    def _result(self, r: _Row, d: Delivery, now: datetime) -> None:
        if d.status == "sent":
            r.status, r.provider_id = "sent", d.provider_id
        elif d.retryable:
            self._retry(r, now, d.error or "retryable")
        else:
            r.status, r.error = "failed", (d.error or "failed")[:200]

    def _retry(self, r: _Row, now: datetime, error: str) -> None:
        if r.attempts >= self.max_attempts:
            r.status, r.error = "failed", f"gave up after {r.attempts} attempts: {error}"[:200]
            return
        r.status, r.error = "pending", error[:200]
        r.due_at = now + timedelta(seconds=min(3600, 30 * 2 ** (r.attempts - 1)))

    def _record(self, rows: list[_Row], now: datetime, tally: Tally) -> None:
        t = _OUTBOX.c
        final: list[dict[str, Any]] = []
        again: list[dict[str, Any]] = []
        for r in rows:
            keys = {f"k_{c}": v for c, v in zip(_PK, r.pk, strict=True)}
            channel = r.payload.get("_channel") or r.channel
            if r.status == "pending":
                again.append({**keys, "v_due": r.due_at or now, "v_error": r.error})
                if r.error and r.error != RATE_LIMITED:
                    tally.retried += 1
                else:
                    tally.deferred += 1
                continue
            status = r.status or "failed"
            tally.add(status)
            final.append({**keys, "v_status": status, "v_error": r.error, "v_provider": r.provider_id,
                          "v_done": now, "v_channel": channel})  # fmt: skip
        where = [t[c] == bindparam(f"k_{c}") for c in _PK]
        with self.meta.engine.begin() as conn:
            if final:
                conn.execute(
                    update(_OUTBOX)
                    .where(*where, t.claimed_by == self.worker)
                    .values(
                        status=bindparam("v_status"),
                        error=bindparam("v_error"),
                        provider_id=bindparam("v_provider"),
                        done_at=bindparam("v_done"),
                        channel=bindparam("v_channel"),
                        claimed_by=None,
                        claimed_until=None,
                    ),
                    final,
                )
            if again:
                conn.execute(
                    update(_OUTBOX)
                    .where(*where, t.claimed_by == self.worker)
                    .values(
                        status="pending",
                        due_at=bindparam("v_due"),
                        error=bindparam("v_error"),
                        claimed_by=None,
                        claimed_until=None,
                    ),
                    again,
                )


def opted_out(meta: MetaStore, project_id: int, persons: Sequence[int]) -> dict[int, set[str]]:
    """The topics (channel kinds, names or ``*``) each of ``persons`` opted out of."""
    out: dict[int, set[str]] = {}
    if not persons:
        return out
    with meta.session() as s:
        rows = s.execute(
            select(SubscriptionRow.person, SubscriptionRow.topic).where(
                SubscriptionRow.project_id == project_id,
                SubscriptionRow.person.in_(persons),
                SubscriptionRow.subscribed.is_(False),
            )
        ).all()
    for person, topic in rows:
        out.setdefault(int(person), set()).add(str(topic))
    return out


def sent_history(
    meta: MetaStore, project_id: int, persons: Sequence[int], now: datetime
) -> dict[int, list[tuple[str, datetime]]]:
    """Each person's marketing messages sent in the eight days before ``now`` (channel, when): what the frequency
    caps count."""
    t = _OUTBOX.c
    out: dict[int, list[tuple[str, datetime]]] = {}
    with meta.engine.connect() as conn:
        rows = conn.execute(
            select(t.person, t.channel, t.done_at).where(
                t.project_id == project_id,
                t.person.in_(persons),
                t.status == "sent",
                t.category == "marketing",
                t.done_at >= now - _CAP_LOOKBACK,
            )
        ).all()
    for person, channel, at in rows:
        out.setdefault(int(person), []).append((str(channel), at))
    return out


def _is_member(meta: MetaStore, programme: SavedProgramme, person: int) -> bool:
    try:
        return get_member(meta, programme, person).status == "active"
    except NotFoundError:
        return False


def link_secret(key_material: bytes) -> bytes:
    """The secret that signs public links, derived from the workspace's key."""
    return hashlib.sha256(b"userloop-links\x00" + key_material).digest()
