"""Growth value (成长值) from a project's events, by a programme's rules (DOMAIN §9; research §4.4).

:func:`apply` reads the events loaded since the programme's mark, in (load time, event id) order as the journeys'
triggers do (:mod:`userloop.engage.engine`), in pages. One statement per page computes each rule's amount per
event in DuckDB (a sqlglot tree: event names, property names and filter values enter as quoted identifiers and
literals, never as text): the rule's event and filters match, and the amount is the fixed one or
``floor(property × multiplier)`` for a finite positive property. Python then walks the page in time order, for
events of active members at or after they joined:

1. the amount is multiplied by the programme's ``vip_multiplier`` (rounded down) when the event happened inside
   the member's VIP period ``[vip_since, vip_until)``;
2. it is capped by what the member already has that local day from the rule (``daily_cap``), from the rule ever
   (``total_cap``), and that local day from every rule (the programme's ``daily_cap``); days are in the
   programme's zone, and a capped amount of 0 writes nothing;
3. an entry is written keyed by a hash of (rule, event id), unique within the programme: an event read twice
   (a restart, a mark moved back) is never counted twice.

Entries and the moved mark are written in one transaction per page, so a crash loses or doubles nothing.
Caps count in processing order: an event loaded late is capped by what was already credited that day.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select
from sqlglot import exp

from userloop.core.clock import utcnow
from userloop.membership.members import (
    GrowthEntry,
    MemberRow,
    ProgrammeRow,
    SavedProgramme,
)
from userloop.membership.policy import MAX_POINTS
from userloop.membership.programme import Filter, Fixed, GrowthRule, Programme
from userloop.schema.types import PropertyType
from userloop.store import sqlbuild as sb
from userloop.store.bulk import bulk_execute, driver_value
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore

#: Events per page: one DuckDB statement and one metadata transaction each.
PAGE = 50_000
#: Keys or member ids per ``IN`` list (SQLite's bound-parameter limit is 32,766).
_CHUNK = 5_000


@dataclass
class Applied:
    """What one :func:`apply` did: events read, entries written, growth credited, the members who earned."""

    events: int = 0
    entries: int = 0
    growth: int = 0
    members: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Member:
    id: int
    joined_at: datetime
    vip_since: datetime | None
    vip_until: datetime | None

    def vip_at(self, at: datetime) -> bool:
        return self.vip_since is not None and self.vip_until is not None and self.vip_since <= at < self.vip_until


def entry_key(rule: str, event_id: str) -> str:
    """The idempotency key of the growth one event earns by one rule (32 hex digits)."""
    return hashlib.blake2b(f"{rule}\x00{event_id}".encode(), digest_size=16).hexdigest()


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The local date of a naive UTC instant."""
    return at.replace(tzinfo=UTC).astimezone(zone).date()


def apply(
    meta: MetaStore, store: ProjectStore, programme: SavedProgramme, now: datetime, *, page: int = PAGE
) -> Applied:
    """Credit the growth of every event loaded up to ``now`` since the programme's mark; the mark moves past
    every event read, counted or not."""
    definition = programme.definition
    done = Applied()
    rules = definition.growth.rules
    with meta.session() as s:
        row = s.get(ProgrammeRow, programme.id)
        assert row is not None
        since_ms, after_id = row.growth_mark_ms, row.growth_mark_id
    top = store.scalar(
        sb.sql("SELECT epoch_ms(max(received_at)) FROM $e WHERE received_at <= make_timestamp(? * 1000)",
               e=store.ref("events")),
        [_ms(now)],
    )  # fmt: skip
    top_ms = int(top) if top is not None else since_ms
    if not rules:
        _mark(meta, programme.id, max(top_ms, since_ms), "")
        return done
    stmt = _statement(store, rules)
    names = sorted({r.event for r in rules})
    while True:
        rows = store.fetchall(stmt, [since_ms, since_ms, after_id, top_ms, names, page])
        if not rows:
            break
        since_ms, after_id = int(rows[-1][3]), str(rows[-1][0])
        members = _members(meta, programme.id, sorted({int(r[1]) for r in rows}))
        _credit(meta, programme.id, definition, members, rows, (since_ms, after_id), done)
        done.events += len(rows)
        if len(rows) < page:
            break
    if top_ms > since_ms:
        _mark(meta, programme.id, top_ms, "")
    return done


def _statement(store: ProjectStore, rules: Sequence[GrowthRule]) -> exp.Select:
    known = store.properties("events")
    stmt = sb.sql(
        "SELECT event_id, user_id, time, epoch_ms(received_at) AS r FROM $e "
        "WHERE (received_at > make_timestamp(? * 1000) OR (received_at = make_timestamp(? * 1000) "
        "AND event_id > ?)) AND received_at <= make_timestamp(? * 1000) AND event IN (SELECT unnest(?)) "
        "ORDER BY received_at, event_id LIMIT ?",
        e=store.ref("events"),
    )
    assert isinstance(stmt, exp.Select)
    return stmt.select(*(exp.alias_(_amount(rule, known), f"g{i}") for i, rule in enumerate(rules)))


def _amount(rule: GrowthRule, known: dict[str, PropertyType]) -> exp.Expr:
    """``CASE WHEN <event and filters> THEN <amount> END``: the rule's growth for an event, NULL if it does not
    apply (or applies with no positive amount)."""
    match = exp.and_(sb.sql("event = $name", name=rule.event), *(_condition(f, known) for f in rule.where))
    if isinstance(rule.amount, Fixed):
        value: exp.Expr = sb.literal(rule.amount.amount)
    elif rule.amount.property not in known:
        return exp.Null()
    else:
        number = sb.sql("TRY_CAST($p AS DOUBLE)", p=sb.col(rule.amount.property))
        match = exp.and_(match, sb.sql("isfinite($x) AND $x > 0", x=number))
        value = sb.sql("CAST(floor(least($x * $m, $cap)) AS BIGINT)", x=number, m=rule.amount.multiplier,
                       cap=float(MAX_POINTS))  # fmt: skip
    return sb.sql("CASE WHEN coalesce($match, false) THEN $value END", match=match, value=value)


def _condition(f: Filter, known: dict[str, PropertyType]) -> exp.Expr:
    """One filter as a condition that is never NULL: false when the property is missing."""
    if f.property not in known:
        return exp.false()
    values = f.value if isinstance(f.value, list) else [f.value]
    ops = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE, "in": exp.EQ}
    node = ops[f.op]
    parts = [node(this=_typed(f.property, v), expression=sb.literal(v)) for v in values]
    return exp.func("coalesce", exp.or_(*parts), exp.false())


def _typed(prop: str, value: str | float | bool) -> exp.Expr:
    """The property read as the filter value's type (text, number or boolean)."""
    target = "BOOLEAN" if isinstance(value, bool) else "VARCHAR" if isinstance(value, str) else "DOUBLE"
    return exp.TryCast(this=sb.col(prop), to=sb.type_(target))


def _members(meta: MetaStore, programme_id: int, persons: list[int]) -> dict[int, _Member]:
    """The active members among ``persons`` (the people of one page), by person key."""
    stmt = select(MemberRow.person, MemberRow.id, MemberRow.joined_at, MemberRow.vip_since, MemberRow.vip_until).where(
        MemberRow.programme_id == programme_id, MemberRow.status == "active"
    )
    found: dict[int, _Member] = {}
    with meta.engine.connect() as conn:
        for chunk in _chunks(persons):
            rows = conn.execute(stmt.where(MemberRow.person.in_(chunk)))
            found.update((int(p), _Member(int(i), j, vs, vu)) for p, i, j, vs, vu in rows)
    return found


def _credit(
    meta: MetaStore,
    programme_id: int,
    definition: Programme,
    members: dict[int, _Member],
    rows: list[tuple[Any, ...]],
    mark: tuple[int, str],
    done: Applied,
) -> None:
    """Cap and write one page's growth, and move the mark, in one transaction."""
    zone = ZoneInfo(definition.timezone)
    rules = definition.growth.rules
    candidates: list[tuple[datetime, str, int, int, date, int]] = []  # at, event id, rule index, member, day, amount
    for r in rows:
        member = members.get(int(r[1]))
        at: datetime = r[2]
        if member is None or at < member.joined_at:
            continue
        for i in range(len(rules)):
            amount = r[4 + i]
            if amount is None or amount <= 0:
                continue
            if member.vip_at(at):
                amount = min(math.floor(amount * definition.growth.vip_multiplier), MAX_POINTS)
            candidates.append((at, str(r[0]), i, member.id, local_day(at, zone), int(amount)))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    with meta.session.begin() as s:
        if candidates:
            keys = {entry_key(rules[c[2]].name, c[1]): c for c in candidates}
            seen = _existing(s, programme_id, list(keys))
            fresh = [(k, c) for k, c in keys.items() if k not in seen]
            fresh.sort(key=lambda kc: (kc[1][0], kc[1][1], kc[1][2]))
            used = _Used.load(s, programme_id, definition, [c for _, c in fresh])
            entries = []
            for key, (at, _eid, i, member_id, day, amount) in fresh:
                credited = used.take(rules[i], member_id, day, amount, definition.growth.daily_cap)
                if credited > 0:
                    entries.append({"programme_id": programme_id, "member_id": member_id, "key": key,
                                    "source": rules[i].name, "amount": credited, "at": at, "day": day})  # fmt: skip
                    done.growth += credited
                    done.members.add(member_id)
            if entries:
                conn = s.connection()
                at_value, day_value = driver_value(conn, GrowthEntry.at), driver_value(conn, GrowthEntry.day)
                written = at_value(utcnow())
                for e in entries:
                    e["at"], e["day"], e["created_at"] = at_value(e["at"]), day_value(e["day"]), written
                bulk_execute(conn, insert(GrowthEntry).values({k: bindparam(k) for k in entries[0]}), entries)
            done.entries += len(entries)
        row = s.get(ProgrammeRow, programme_id)
        assert row is not None
        row.growth_mark_ms, row.growth_mark_id = mark


class _Used:
    """What members already have toward each cap: by (member, rule, day), (member, rule) and (member, day)."""

    def __init__(self) -> None:
        self.rule_day: dict[tuple[int, str, date], int] = defaultdict(int)
        self.rule_total: dict[tuple[int, str], int] = defaultdict(int)
        self.day: dict[tuple[int, date], int] = defaultdict(int)

    @classmethod
    def load(
        cls, s: Any, programme_id: int, definition: Programme, fresh: list[tuple[Any, str, int, int, date, int]]
    ) -> _Used:
        used = cls()
        capped = definition.growth.daily_cap is not None or any(
            r.daily_cap is not None or r.total_cap is not None for r in definition.growth.rules
        )
        if not capped or not fresh:
            return used
        ids = sorted({c[3] for c in fresh})
        days = sorted({c[4] for c in fresh})
        for chunk in _chunks(ids):
            stmt = (
                select(GrowthEntry.member_id, GrowthEntry.source, GrowthEntry.day, func.sum(GrowthEntry.amount))
                .where(GrowthEntry.programme_id == programme_id, GrowthEntry.member_id.in_(chunk))
                .group_by(GrowthEntry.member_id, GrowthEntry.source, GrowthEntry.day)
            )
            for member_id, source, day, total in s.execute(stmt):
                used.rule_total[(member_id, source)] += int(total)
                if days[0] <= day <= days[-1]:
                    used.rule_day[(member_id, source, day)] += int(total)
                    used.day[(member_id, day)] += int(total)
        return used

    def take(self, rule: GrowthRule, member: int, day: date, amount: int, daily_cap: int | None) -> int:
        """How much of ``amount`` the caps let through (and count it as used)."""
        room = amount
        if rule.daily_cap is not None:
            room = min(room, rule.daily_cap - self.rule_day[(member, rule.name, day)])
        if rule.total_cap is not None:
            room = min(room, rule.total_cap - self.rule_total[(member, rule.name)])
        if daily_cap is not None:
            room = min(room, daily_cap - self.day[(member, day)])
        room = max(room, 0)
        self.rule_day[(member, rule.name, day)] += room
        self.rule_total[(member, rule.name)] += room
        self.day[(member, day)] += room
        return room


def _existing(s: Any, programme_id: int, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(keys):
        stmt = select(GrowthEntry.key).where(GrowthEntry.programme_id == programme_id, GrowthEntry.key.in_(chunk))
        found.update(s.scalars(stmt))
    return found


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _mark(meta: MetaStore, programme_id: int, ms: int, after_id: str) -> None:
    with meta.session.begin() as s:
        row = s.get(ProgrammeRow, programme_id)
        assert row is not None
        row.growth_mark_ms, row.growth_mark_id = ms, after_id


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)
