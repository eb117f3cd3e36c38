"""Benefits at runtime (DOMAIN §9): level coupons, the birthday pack and the level's points multiplier.

What the programme's levels promise (:mod:`userloop.membership.programme`) is given here, by the membership pass
(:mod:`userloop.membership.runner`), exactly once per cause through retries and crashes:

- **Level coupons** (:class:`~userloop.membership.programme.Coupon`): each level change that raises a member's
  level (a row of ``level_history`` with ``to_level > from_level``) grants the coupons of the level reached (not of
  the levels skipped on the way), ``count`` units each, through :func:`userloop.benefits.grant` keyed by
  ``grant_key("level", programme, member, level, reach, benefit index, unit)``. ``reach`` is the level change's id
  for ``every="once"`` coupons, so falling and climbing back is a new reach and grants again; for ``month``/
  ``year`` coupons it is the local month/year (programme's zone) of the change, and :func:`periodic_coupons`
  grants the current month's/year's units to every member holding the level once per local day: a member
  reaching a level gets one unit set per period, never two. The grants of one change and its ``done`` row are
  one transaction; an unknown or used-up benefit rolls that change back, is logged, and is tried again next pass.
- **Birthday pack** (:class:`~userloop.membership.programme.BirthdayPack` of the member's current level): on the
  member's birthday as a local day in the member's zone (``members.zone``, else the programme's), once per member
  per local year; 29 February is kept on 28 February in common years
  (:func:`~userloop.membership.programme.birthday_window`). Its points are a ledger earn with request id
  ``birthday-<programme>-<person>-<year>``; its coupons grants keyed ``grant_key("birthday", programme, member,
  year, index)``. A day the pass never runs (the service down all day) is not caught up.
- **Points multiplier** (:class:`~userloop.membership.programme.PointsMultiplier`): applies to the points the
  programme itself awards for a member's activity — the settled rewards of check-ins and tasks
  (``member_rewards``). The multiplier is the one of the level the member held at the reward's ``earned_at``
  (from ``level_history``); the extra ``floor(points × m) − points`` is a separate ledger earn into the reward's
  wallet at ``earned_at``, request id ``multiplier-<hash of the reward key>``, reason ``level multiplier ×m``, so
  the reward itself stays as booked. Explicit earns through the API or a journey, birthday points and operator
  adjustments are never multiplied: the ledger's semantics do not change.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, and_, delete, exists, extract, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from userloop import benefits
from userloop.core.errors import UserloopError
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement_tables import RewardRow
from userloop.membership.ledger_types import Earn
from userloop.membership.members import LevelChange, MemberRow, SavedProgramme
from userloop.membership.policy import MAX_POINTS
from userloop.membership.programme import BirthdayPack, Coupon, Level, PointsMultiplier, birthday_window
from userloop.membership.runner_tables import LevelGrantRow, PassDoneRow, PassStateRow
from userloop.store.meta import MetaStore

log = logging.getLogger(__name__)
#: Causes handled per kind per pass (a backlog drains over the next passes).
BATCH = 5_000
#: How long after an upgrade's coupons were granted the cursor may pass it (see :func:`_advance`).
SETTLE = timedelta(minutes=10)


@dataclass(frozen=True)
class Given:
    """What one step gave: causes finished, coupons granted, points booked, causes left for a later pass."""

    causes: int = 0
    coupons: int = 0
    points: int = 0
    failed: int = 0

    def __add__(self, other: Given) -> Given:
        return Given(self.causes + other.causes, self.coupons + other.coupons, self.points + other.points,
                     self.failed + other.failed)  # fmt: skip


# level coupons ----------------------------------------------------------------------------------------------
def _coupons(level: Level) -> list[tuple[int, Coupon]]:
    return [(j, b) for j, b in enumerate(level.benefits) if isinstance(b, Coupon)]


def _period(coupon: Coupon, at: datetime, zone: str) -> str:
    local = at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    return f"{local.year:04d}-{local.month:02d}" if coupon.every == "month" else f"{local.year:04d}"


def _reach(coupon: Coupon, change_id: int, at: datetime, zone: str) -> str:
    return f"c{change_id}" if coupon.every == "once" else _period(coupon, at, zone)


def _not_done(programme_id: int, kind: str, ref: Any) -> Any:
    d = PassDoneRow
    return ~exists().where(d.programme_id == programme_id, d.kind == kind, d.ref == ref)


def _done(conn: Connection, programme_id: int, kind: str, ref: str, now: datetime) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(PassDoneRow).on_conflict_do_nothing(index_elements=["programme_id", "kind", "ref"]),
        {"programme_id": programme_id, "kind": kind, "ref": ref, "done_at": now},
    )


def _grant_units(
    conn: Connection, saved: SavedProgramme, person: int, coupon: Coupon, key: tuple[object, ...], now: datetime,
    secret: bytes,
) -> int:  # fmt: skip
    for unit in range(coupon.count):
        benefits.grant(conn, project_id=saved.project_id, name=coupon.benefit, key=benefits.grant_key(*key, unit),
                       person=person, now=now, secret=secret)  # fmt: skip
    return coupon.count


def level_coupons(meta: MetaStore, saved: SavedProgramme, now: datetime, *, secret: bytes) -> Given:
    """Grant the coupons of the levels reached by upgrades not yet handled (oldest first, :data:`BATCH`), then move
    the programme's cursor over those handled (:func:`_advance`)."""
    levels = saved.definition.levels
    h, g = LevelChange, LevelGrantRow
    low = _levels_low(meta, saved.id)
    granted_already = exists().where(g.programme_id == saved.id, g.change_id == h.id)
    stmt = (
        select(h.id, h.member_id, h.person, h.to_level, h.at)
        .where(h.programme_id == saved.id, h.id > low, h.to_level > h.from_level, ~granted_already)
        .order_by(h.id)
        .limit(BATCH)
    )
    with meta.engine.connect() as conn:
        changes = conn.execute(stmt).all()
    given = Given()
    for change in changes:
        coupons = _coupons(levels[change.to_level]) if change.to_level < len(levels) else []
        try:
            with meta.engine.begin() as conn:
                granted = sum(
                    _grant_units(conn, saved, change.person, c,
                                 ("level", saved.id, change.member_id, change.to_level,
                                  _reach(c, change.id, change.at, saved.definition.timezone), j), now, secret)
                    for j, c in coupons
                )  # fmt: skip
                conn.execute(insert(g).values(programme_id=saved.id, change_id=change.id, done_at=now))
        except UserloopError as exc:  # an unknown or used-up benefit: nothing of this change stays; retried
            log.warning("level coupons of change %s (programme %s) not granted: %s", change.id, saved.id, exc)
            given += Given(failed=1)
            continue
        given += Given(causes=1, coupons=granted)
    _advance(meta, saved.id, low, now)
    return given


def _levels_low(meta: MetaStore, programme_id: int) -> int:
    with meta.engine.connect() as conn:
        found = conn.execute(select(PassStateRow.levels_low).where(PassStateRow.programme_id == programme_id))
        return int(found.scalar() or 0)


def _advance(meta: MetaStore, programme_id: int, low: int, now: datetime) -> None:
    """Move ``levels_low`` up to the last upgrade granted at least :data:`SETTLE` ago below the first one not
    granted, and drop the grant rows it passes. On PostgreSQL a smaller id may commit after a larger one; an
    upgrade below the cursor still invisible would belong to a transaction open that long, which no evaluation
    holds (the argument of :mod:`userloop.membership.report`)."""
    h, g = LevelChange, LevelGrantRow
    with meta.engine.begin() as conn:
        granted = exists().where(g.programme_id == programme_id, g.change_id == h.id)
        gap = conn.execute(select(func.min(h.id)).where(h.programme_id == programme_id, h.id > low,
                                                        h.to_level > h.from_level, ~granted)).scalar()  # fmt: skip
        settled = [g.programme_id == programme_id, g.done_at <= now - SETTLE]
        if gap is not None:
            settled.append(g.change_id < gap)
        bound = conn.execute(select(func.max(g.change_id)).where(*settled)).scalar()
        if bound is None or bound <= low:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(PassStateRow).values(programme_id=programme_id, levels_low=bound)
        conn.execute(stmt.on_conflict_do_update(index_elements=["programme_id"], set_={"levels_low": bound}))
        conn.execute(delete(g).where(g.programme_id == programme_id, g.change_id <= bound))


def periodic_coupons(meta: MetaStore, saved: SavedProgramme, now: datetime, *, secret: bytes) -> Given:
    """The current month's/year's units of ``every="month"``/``"year"`` coupons for every active member holding
    their level (run once per local day; the keys make a repeat give nothing)."""
    given = Given()
    for index, level in enumerate(saved.definition.levels):
        periodic = [(j, c) for j, c in _coupons(level) if c.every != "once"]
        if not periodic:
            continue
        stmt = select(MemberRow.id, MemberRow.person).where(
            MemberRow.programme_id == saved.id, MemberRow.status == "active", MemberRow.level == index
        )
        with meta.engine.connect() as conn:
            holders = conn.execute(stmt.order_by(MemberRow.id)).all()
        for member_id, person in holders:
            try:
                with meta.engine.begin() as conn:
                    granted = sum(
                        _grant_units(conn, saved, person, c,
                                     ("level", saved.id, member_id, index,
                                      _period(c, now, saved.definition.timezone), j), now, secret)
                        for j, c in periodic
                    )  # fmt: skip
            except UserloopError as exc:
                log.warning("periodic coupons of member %s (programme %s) not granted: %s", member_id, saved.id, exc)
                given += Given(failed=1)
                continue
            given += Given(causes=1, coupons=granted)
    return given


# birthdays --------------------------------------------------------------------------------------------------
def _candidate_days(now: datetime) -> list[tuple[int, int]]:
    """(month, day) pairs a birthday kept today may have somewhere: every zone's local date is within a day of
    the UTC date; a 29 February birthday is kept on 28 February of a common year."""
    days: set[tuple[int, int]] = set()
    for shift in (-1, 0, 1):
        d = (now + timedelta(days=shift)).date()
        days.add((d.month, d.day))
        if (d.month, d.day) == (2, 28) and not _leap(d.year):
            days.add((2, 29))
    return sorted(days)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _zone(member_zone: str | None, programme_zone: str) -> str:
    if member_zone:
        try:
            ZoneInfo(member_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return programme_zone
        return member_zone
    return programme_zone


def _pack(levels: Sequence[Level], level: int) -> BirthdayPack | None:
    found = [b for b in levels[min(level, len(levels) - 1)].benefits if isinstance(b, BirthdayPack)]
    return found[0] if found else None


def birthday_packs(meta: MetaStore, saved: SavedProgramme, now: datetime, *, secret: bytes) -> Given:
    """The birthday packs due at ``now``: active members whose birthday, as a local day of their zone, holds
    ``now``, whose level has a pack, and who have not had this year's."""
    definition = saved.definition
    if not any(isinstance(b, BirthdayPack) for level in definition.levels for b in level.benefits):
        return Given()
    m = MemberRow
    days = _candidate_days(now)
    stmt = select(m.id, m.person, m.level, m.birthday, m.zone).where(
        m.programme_id == saved.id,
        m.status == "active",
        m.birthday.is_not(None),
        or_(*(and_(extract("month", m.birthday) == mo, extract("day", m.birthday) == da) for mo, da in days)),
    )
    with meta.engine.connect() as conn:
        rows = conn.execute(stmt.order_by(m.id)).all()
    given = Given()
    for member_id, person, level, birthday, zone in rows:
        pack = _pack(definition.levels, level)
        local_zone = _zone(zone, definition.timezone)
        if pack is None or birthday is None or birthday_window(birthday, now, local_zone) is None:
            continue
        year = now.replace(tzinfo=UTC).astimezone(ZoneInfo(local_zone)).year
        given += _birthday(meta, saved, member_id, person, pack, year, now, secret)
    return given


def _birthday(
    meta: MetaStore, saved: SavedProgramme, member_id: int, person: int, pack: BirthdayPack, year: int,
    now: datetime, secret: bytes,
) -> Given:  # fmt: skip
    ref = f"{member_id}:{year}"
    with meta.engine.connect() as conn:
        if conn.execute(select(_not_done(saved.id, "birthday", ref))).scalar() is False:
            return Given()
    try:
        if pack.points:
            earn = Earn(person=person, request_id=f"birthday-{saved.id}-{person}-{year}", wallet=pack.wallet,
                        amount=pack.points, reason=f"birthday pack {year}")  # fmt: skip
            ledger_of(meta, saved).post(earn, now)
        with meta.engine.begin() as conn:
            for index, name in enumerate(pack.benefits):
                benefits.grant(conn, project_id=saved.project_id, name=name, person=person, now=now, secret=secret,
                               key=benefits.grant_key("birthday", saved.id, member_id, year, index))  # fmt: skip
            _done(conn, saved.id, "birthday", ref, now)
    except UserloopError as exc:  # the ledger earn is idempotent by its request id: a retry books it once
        log.warning("birthday pack of member %s (programme %s) not granted: %s", member_id, saved.id, exc)
        return Given(failed=1)
    return Given(causes=1, coupons=len(pack.benefits), points=pack.points)


# points multiplier ------------------------------------------------------------------------------------------
def multiplier_of(level: Level) -> float:
    """The level's points multiplier (1 without one)."""
    found = [b.multiplier for b in level.benefits if isinstance(b, PointsMultiplier)]
    return found[0] if found else 1.0


def level_at(conn: Connection, programme_id: int, person: int, at: datetime, current: int) -> int:
    """The level ``person`` held at ``at``: the last change at or before it, else the level before the first
    change after it, else their level now."""
    h = LevelChange
    mine = (h.programme_id == programme_id, h.person == person)
    before = conn.execute(select(h.to_level).where(*mine, h.at <= at).order_by(h.at.desc(), h.id.desc()).limit(1))
    found = before.scalar()
    if found is not None:
        return int(found)
    after = conn.execute(select(h.from_level).where(*mine, h.at > at).order_by(h.at, h.id).limit(1)).scalar()
    return int(after) if after is not None else current


def multiplied(meta: MetaStore, saved: SavedProgramme, now: datetime) -> Given:
    """Book the level multiplier's extra points of the settled check-in and task rewards not yet handled."""
    r = RewardRow
    stmt = (
        select(r.key, r.person, r.wallet, r.points, r.earned_at, MemberRow.level)
        .join(MemberRow, and_(MemberRow.programme_id == r.programme_id, MemberRow.person == r.person))
        .where(r.programme_id == saved.id, r.settled_at.is_not(None), r.points > 0)
        .where(_not_done(saved.id, "multiplier", r.key))
        .order_by(r.created_at, r.key)
        .limit(BATCH)
    )  # fmt: skip
    levels = saved.definition.levels
    given = Given()
    with meta.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    for key, person, wallet, points, earned_at, current in rows:
        with meta.engine.connect() as conn:
            level = min(level_at(conn, saved.id, person, earned_at, current), len(levels) - 1)
        factor = multiplier_of(levels[level])
        extra = min(math.floor(points * factor), MAX_POINTS) - points
        try:
            if extra > 0:
                earn = Earn(person=person, request_id=f"multiplier-{_digest(key)}", wallet=wallet, amount=extra,
                            reason=f"level multiplier x{factor:g}", ref=key)  # fmt: skip
                ledger_of(meta, saved).post(earn, earned_at)
            with meta.engine.begin() as conn:
                _done(conn, saved.id, "multiplier", key, now)
        except UserloopError as exc:  # a wallet the programme lost: retried next pass
            log.warning("level multiplier of reward %s (programme %s) not booked: %s", key, saved.id, exc)
            given += Given(failed=1)
            continue
        given += Given(causes=1, points=max(extra, 0))
    return given


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
