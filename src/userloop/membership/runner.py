"""The membership pass: everything a project's member programmes do on their own, run by the service.

:func:`run_pass` is what the service's membership loop (:mod:`userloop.service.membership`) runs every few
seconds and after each load of events, and what ``userloop members run-once`` runs in process (the embedded mode
without a server). For each active programme of the project, in this order:

1. growth from the events loaded since the programme's mark, and the levels of the members who earned it
   (:func:`userloop.membership.levels.credit`: upgrades at once);
2. once per local day of the programme's zone, the full level evaluation of every member
   (:func:`userloop.membership.levels.evaluate`: downgrades at period ends, grace periods, by the policy) and the
   periodic level coupons (:func:`userloop.membership.benefit_grants.periodic_coupons`);
3. the ledger's expiry job (:meth:`userloop.membership.ledger.Ledger.expire`);
4. the coupons of the levels reached, and once per quarter hour of UTC the birthday packs due
   (:mod:`userloop.membership.benefit_grants`): every zone's local day starts on a UTC quarter hour, so the first
   pass of each quarter finds the birthdays that began in it, and the members' birthdays are not scanned every
   few seconds;

then, for the project, the engagement pass (:func:`userloop.membership.engagement.run_pass`: tasks counted from
events, open rewards settled, the membership events written), the level multiplier on the rewards it settled,
and, when that booked points, one more batch of membership events (:func:`userloop.membership.report.report`)
so the extra points reach the events table in the same pass.

Every step is idempotent by its own keys and marks (growth entries by event and rule, the daily evaluation by
its day, expiries by lot, grants by cause, events by their source rows), so a pass may be repeated, run
concurrently with the API's writes, or killed at any point and run again: nothing is lost or doubled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from userloop.membership import benefit_grants, engagement, levels, report
from userloop.membership.accounts import ledger_of
from userloop.membership.benefit_grants import Given
from userloop.membership.members import Programmes, SavedProgramme
from userloop.membership.runner_tables import PassDoneRow, PassStateRow
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

#: The ``member_pass_done`` kind that notes the quarter hour whose birthdays were looked for.
_SCAN = "birthday_scan"


@dataclass(frozen=True)
class ProgrammePass:
    """What the pass did for one programme."""

    programme: str
    evaluated: int = 0  # members evaluated (those who earned; everyone on the day's full evaluation)
    full: bool = False  # the day's full evaluation ran
    up: int = 0
    down: int = 0
    lots_expired: int = 0
    points_expired: int = 0
    levels_granted: int = 0  # level changes whose coupons were granted
    birthdays: int = 0
    coupons: int = 0
    multiplied: int = 0  # rewards whose level multiplier was booked
    bonus_points: int = 0
    failed: int = 0  # causes left for a later pass (an unknown or used-up benefit)


@dataclass(frozen=True)
class Pass:
    """What one pass did for a project."""

    programmes: tuple[ProgrammePass, ...]
    tasks_completed: int
    rewards_settled: int
    events_written: int


def run_pass(meta: MetaStore, project: Project, store: ProjectStore, now: datetime, *, secret: bytes) -> Pass:
    """One membership pass over the project's active programmes at ``now`` (naive UTC); ``secret`` derives the
    coupon codes (the workspace's link secret, as the journeys' grants use)."""
    active = [p for p in Programmes(meta, project).all() if p.status == "active"]
    if not active:
        return Pass((), 0, 0, 0)
    done = {p.id: _programme(meta, store, p, now, secret) for p in active}
    engaged = engagement.run_pass(meta, project, store, now, secret=secret)
    written = engaged.events_written
    extra = {p.id: benefit_grants.multiplied(meta, p, now) for p in active}
    if any(g.points for g in extra.values()):
        written += report.report(meta, project, store, now=now).written
    shown = tuple(_with_multiplier(done[p.id], extra[p.id]) for p in active)
    return Pass(shown, engaged.tasks_completed, engaged.rewards_settled, written)


def _programme(
    meta: MetaStore, store: ProjectStore, saved: SavedProgramme, now: datetime, secret: bytes
) -> ProgrammePass:
    credited = levels.credit(meta, store, saved, now)
    evaluated, up, down = credited.members, credited.up, credited.down
    day = now.replace(tzinfo=UTC).astimezone(ZoneInfo(saved.definition.timezone)).date()
    full = _evaluated_day(meta, saved.id) != day
    periodic = Given()
    if full:
        whole = levels.evaluate(meta, saved, now)
        evaluated, up, down = whole.members, up + whole.up, down + whole.down
        periodic = benefit_grants.periodic_coupons(meta, saved, now, secret=secret)
        _save_state(meta, saved.id, evaluated_day=day)
    expired = ledger_of(meta, saved).expire(now)
    reached = benefit_grants.level_coupons(meta, saved, now, secret=secret)
    born = Given()
    if _birthdays_due(meta, saved.id, now):
        born = benefit_grants.birthday_packs(meta, saved, now, secret=secret)
        _birthdays_done(meta, saved.id, now)
    return ProgrammePass(
        programme=saved.name, evaluated=evaluated, full=full, up=up, down=down, lots_expired=expired.lots,
        points_expired=expired.points, levels_granted=reached.causes, birthdays=born.causes,
        coupons=periodic.coupons + reached.coupons + born.coupons,
        failed=periodic.failed + reached.failed + born.failed,
    )  # fmt: skip


def _with_multiplier(done: ProgrammePass, extra: Given) -> ProgrammePass:
    return ProgrammePass(**{**done.__dict__, "multiplied": extra.causes, "bonus_points": extra.points,
                            "failed": done.failed + extra.failed})  # fmt: skip


def _evaluated_day(meta: MetaStore, programme_id: int) -> date | None:
    with meta.session() as s:
        row = s.get(PassStateRow, programme_id)
        return row.evaluated_day if row is not None else None


def _save_state(meta: MetaStore, programme_id: int, **values: object) -> None:
    with meta.engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(PassStateRow).values(programme_id=programme_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["programme_id"], set_=values))


def _quarter(now: datetime) -> str:
    """The UTC quarter hour of ``now``, as the ``ref`` of its birthday scan."""
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0).isoformat()


def _birthdays_due(meta: MetaStore, programme_id: int, now: datetime) -> bool:
    """Whether this quarter hour's birthdays are still to be looked for."""
    d = PassDoneRow
    stmt = select(d.ref).where(d.programme_id == programme_id, d.kind == _SCAN, d.ref == _quarter(now))
    with meta.engine.connect() as conn:
        return conn.execute(stmt).first() is None


def _birthdays_done(meta: MetaStore, programme_id: int, now: datetime) -> None:
    """Note this quarter hour's scan, in place of the one before."""
    d = PassDoneRow
    with meta.engine.begin() as conn:
        conn.execute(delete(d).where(d.programme_id == programme_id, d.kind == _SCAN))
        conn.execute(insert(d).values(programme_id=programme_id, kind=_SCAN, ref=_quarter(now), done_at=now))
