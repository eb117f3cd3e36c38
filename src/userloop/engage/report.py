"""Delivery results back into the events table, where every analysis can use them.

The process that owns the event store (``userloop serve``) turns finished outbox rows and the feedback on messages
into passive events — ``$message_sent``, ``$message_failed``, ``$message_capped``, ``$message_skipped`` (with the
reason: global control, unreachable, unsubscribed, quiet hours), ``$benefit_granted``, ``$message_delivered``,
``$message_opened``, ``$message_clicked``, ``$unsubscribed`` — through the one loader, and applies the journeys'
profile updates as ``profile_set`` records. Each event's id is derived from its outbox key and status (or its
feedback row), so writing a batch again after a crash is recognised by the loader's de-duplication: exactly once
in the events table. Rows are marked ``reported`` after the load commits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import Table, bindparam, insert, select, update

from userloop.benefits import BenefitRow, GrantRow
from userloop.core.clock import utcnow
from userloop.engage.channels.base import Receipt
from userloop.engage.delivery import FINAL
from userloop.engage.interpreter import effect_key, parse_key
from userloop.engage.journey import Journey, Update
from userloop.engage.tables import FeedbackRow, JourneyVersion, OutboxRow
from userloop.ingest.api import distinct_ids, load_table
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_FEEDBACK: Table = FeedbackRow.__table__  # type: ignore[assignment]
_PK = ("journey_id", "version", "node", "person", "occurrence")
#: outbox status → the event written for it
EVENT_OF = {
    "sent": "$message_sent",
    "failed": "$message_failed",
    "capped": "$message_capped",
    "suppressed": "$message_skipped",
    "unreachable": "$message_skipped",
    "unsubscribed": "$message_skipped",
    "quiet_dropped": "$message_skipped",
}
SOURCE = "engage"


@dataclass
class Reported:
    events: int = 0
    updates: int = 0
    feedback: int = 0
    unknown_people: int = 0


def report(meta: MetaStore, project: Project, store: ProjectStore, *, limit: int = 20_000) -> Reported:
    """Write one batch of finished outbox rows and feedback as events; apply pending profile updates."""
    out = Reported()
    t = _OUTBOX.c
    with meta.engine.connect() as conn:
        rows = conn.execute(
            select(*(t[c] for c in _PK), t.kind, t.status, t.channel, t.done_at, t.error, t.provider_id, t.path)
            .where(t.reported.is_(False), t.status != "pending", t.status != "sending")  # the partial index
            .where(t.project_id == project.id, t.status.in_(FINAL))
            .limit(limit)
        ).all()
        updates = conn.execute(
            select(*(t[c] for c in _PK), t.due_at)
            .where(t.project_id == project.id, t.kind == "update", t.status == "pending")
            .limit(limit)
        ).all()
        feedback = conn.execute(
            select(_FEEDBACK)
            .where(_FEEDBACK.c.project_id == project.id, _FEEDBACK.c.reported.is_(False))
            .order_by(_FEEDBACK.c.id)
            .limit(limit)
        ).all()
    persons = {int(r[3]) for r in rows} | {int(r[3]) for r in updates} | {int(f.person) for f in feedback}
    ids = distinct_ids(store, sorted(persons))
    records: list[dict[str, Any]] = []
    for r in rows:
        jid, version, node, person, occurrence, kind, status, channel, done_at, error, provider_id, path = r
        key = effect_key(jid, version, node, person, occurrence)
        # a journey's points are recorded by the member system's own events ($points_earned), not here
        event = None if kind == "points" else "$benefit_granted" if kind == "grant" else EVENT_OF.get(status)
        if event is None or person not in ids:
            out.unknown_people += person not in ids
            continue
        records.append(
            {
                "event": event,
                "event_id": f"{key}:{status}",
                "distinct_id": ids[person],
                "time": done_at,
                "journey_id": jid,
                "journey_version": version,
                "node": node,
                "channel": channel,
                "message_key": key,
                "branch": path or None,
                "reason": error if status != "sent" else None,
                "provider_id": provider_id,
            }
        )
    sends = [effect_key(*r[:5]) for r in rows if r[5] == "send" and int(r[3]) in ids]
    for key, benefit, person, code, granted_at in _grants(meta, sends):
        records.append(
            {
                "event": "$benefit_granted",
                "event_id": f"{key}:granted",
                "distinct_id": ids[person],
                "time": granted_at,
                "message_key": key,
                "benefit": benefit,
                "coupon_code": code,
            }
        )
    for f in feedback:
        if f.person not in ids:
            out.unknown_people += 1
            continue
        props = json.loads(f.props or "{}")
        records.append(
            {
                "event": f.event,
                "event_id": f"feedback:{f.id}",
                "distinct_id": ids[f.person],
                "time": f.at,
                "message_key": f.key,
                "channel": props.get("channel"),
                "url": props.get("url"),
                "reason": props.get("reason"),
            }
        )
    if records:
        load_table(store, _events_table(records), source=SOURCE)
        out.events = len(records)
    out.updates = _apply_updates(meta, store, updates, ids)
    with meta.engine.begin() as conn:
        if rows:
            conn.execute(
                update(_OUTBOX).where(*(t[c] == bindparam(f"k_{c}") for c in _PK)).values(reported=True),
                [{f"k_{c}": v for c, v in zip(_PK, r[:5], strict=True)} for r in rows],
            )
        if feedback:
            conn.execute(update(_FEEDBACK).where(_FEEDBACK.c.id.in_([f.id for f in feedback])).values(reported=True))
    out.feedback = len(feedback)
    return out


def _apply_updates(meta: MetaStore, store: ProjectStore, updates: Sequence[Any], ids: dict[int, str]) -> int:
    """The journeys' ``update`` nodes as ``profile_set`` records, then the rows marked done."""
    if not updates:
        return 0
    definitions: dict[tuple[int, int], Journey] = {}
    records: list[dict[str, Any]] = []
    for jid, version, node, person, occurrence, due_at in updates:
        if (jid, version) not in definitions:
            with meta.session() as s:
                row = s.get(JourneyVersion, (jid, version))
                assert row is not None
                definitions[(jid, version)] = Journey.model_validate_json(row.definition)
        spec = definitions[(jid, version)].node(node)
        if not isinstance(spec, Update) or person not in ids:
            continue
        key = effect_key(jid, version, node, person, occurrence)
        records.append({"type": "profile_set", "distinct_id": ids[person], "time": due_at, "event_id": key, **spec.set})
    if records:
        load_table(store, _profile_table(records), source=SOURCE)
    t = _OUTBOX.c
    with meta.engine.begin() as conn:
        conn.execute(
            update(_OUTBOX)
            .where(*(t[c] == bindparam(f"k_{c}") for c in _PK))
            .values(status="done", done_at=bindparam("v_done")),
            [{**{f"k_{c}": v for c, v in zip(_PK, u[:5], strict=True)}, "v_done": u[5]} for u in updates],
        )
    return len(records)


def _grants(meta: MetaStore, keys: list[str]) -> list[tuple[str, str, int, str, datetime]]:
    """The benefits granted with these messages: key, benefit name, person, coupon code, when."""
    out: list[tuple[str, str, int, str, datetime]] = []
    with meta.session() as s:
        for i in range(0, len(keys), 5000):
            out.extend(
                (str(k), str(n), int(p), str(c), at)
                for k, n, p, c, at in s.execute(
                    select(GrantRow.key, BenefitRow.name, GrantRow.person, GrantRow.code, GrantRow.granted_at)
                    .join(BenefitRow, BenefitRow.id == GrantRow.benefit_id)
                    .where(GrantRow.key.in_(keys[i : i + 5000]))
                ).all()
            )
    return out


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _events_table(records: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {"type": [], "event": [], "distinct_id": [], "time": [], "event_id": []}
    props = sorted({k for r in records for k in r} - set(columns))
    for name in props:
        columns[name] = []
    for r in records:
        columns["type"].append("track")
        columns["event"].append(r["event"])
        columns["distinct_id"].append(r["distinct_id"])
        columns["time"].append(_ms(r["time"]))
        columns["event_id"].append(r["event_id"])
        for name in props:
            value = r.get(name)
            columns[name].append(None if value is None else value)
    return pa.table({k: _array(k, v) for k, v in columns.items()})


def _profile_table(records: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {"type": [], "distinct_id": [], "time": []}
    props = sorted({k for r in records for k in r} - {"type", "distinct_id", "time", "event_id"})
    for r in records:
        columns["type"].append("profile_set")
        columns["distinct_id"].append(r["distinct_id"])
        columns["time"].append(_ms(r["time"]))
    for name in props:
        columns[name] = [r.get(name) for r in records]
    return pa.table({k: _array(k, v) for k, v in columns.items()})


def _array(name: str, values: list[Any]) -> pa.Array:
    if name == "time":
        return pa.array(values, type=pa.int64())
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def record_receipts(meta: MetaStore, project_id: int, channel: str, receipts: Sequence[Receipt]) -> int:
    """A provider's delivery reports as feedback (``$message_delivered``, ``$message_failed`` …), each matched to
    its message by the key the provider echoed, else by the provider's id; unmatched reports are ignored (a
    report for a message of another system, or one already deleted). Returns how many were recorded."""
    t = _OUTBOX.c
    rows: list[dict[str, Any]] = []
    by_provider: dict[str, tuple[str, int]] = {}
    ids = [r.provider_id for r in receipts if r.key is None and r.provider_id]
    if ids:
        with meta.engine.connect() as conn:
            for row in conn.execute(
                select(*(t[c] for c in _PK), t.provider_id).where(
                    t.project_id == project_id, t.provider_id.is_not(None), t.provider_id.in_(ids)
                )
            ):
                by_provider[str(row[5])] = (effect_key(*row[:5]), int(row[3]))
    for r in receipts:
        parts = parse_key(r.key) if r.key else None
        if parts is not None:
            key, person = str(r.key), parts[3]
        elif r.provider_id in by_provider:
            key, person = by_provider[str(r.provider_id)]
        else:
            continue
        at = datetime.fromtimestamp(r.at_ms / 1000, UTC).replace(tzinfo=None) if r.at_ms else utcnow()
        props = {"channel": channel, "reason": r.error, "provider_id": r.provider_id}
        rows.append({"project_id": project_id, "key": key, "person": person, "event": RECEIPT_EVENT[r.status],
                     "at": at, "props": json.dumps(props, ensure_ascii=False), "reported": False})  # fmt: skip
    if rows:
        with meta.engine.begin() as conn:
            conn.execute(insert(_FEEDBACK), rows)
    return len(rows)


RECEIPT_EVENT = {
    "delivered": "$message_delivered",
    "failed": "$message_failed",
    "opened": "$message_opened",
    "clicked": "$message_clicked",
    "unsubscribed": "$unsubscribed",
}
