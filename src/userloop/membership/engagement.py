"""Daily check-ins with streaks, and tasks: the stickiness tools of a member programme (DOMAIN §6, §9).

**Check-in (签到)**: once per member per local day in the programme's zone. Checking in again that day returns
the day's check-in and writes nothing; two racing check-ins meet on the table's unique key. The streak counts
consecutive local days: the day after a check-in continues it, a missed day starts again at 1. Rewards follow the
programme's :class:`~userloop.membership.programme.CheckIn`: its daily points and growth, and a streak reward on
the day the streak reaches a rewarded length (7 days in a row → a gift pack, the DOMAIN's example); with
``cycle="repeat"`` the count starts over after the longest rewarded streak (days 7, 14, 21… of a streak are
rewarded again), with ``once`` only the first time.

**Tasks**: do an event (passing the task's filters) ``times`` times within a period (a local day, an ISO week
from Monday, a month, or ever) → the task's reward, once per period and at most ``limit`` times in all.
:func:`count_tasks` reads the project's events loaded since the programme's task mark, in load order as the
growth rules do (:mod:`userloop.membership.growth`); each event counts once per task by its event id (a re-read
never counts twice), and only for active members, from the moment they joined.

**Rewards** are rows of ``member_rewards`` written in the transaction of their cause (the check-in, the task's
progress), keyed by a deterministic request id (``checkin-<programme>-<person>-<day>``,
``streak-…-<days>``, ``task-<programme>-<task>-<person>-<period>``), then settled by :func:`settle`: points
through the ledger's earn under that request id, growth as a growth entry keyed by it, benefits through
:func:`userloop.benefits.grant` keyed by it. Each step is idempotent by the key, so a crash between the cause and
the settle, or a retry, books every reward exactly once; :func:`settle` with no keys finishes whatever a crash
left. A reward whose benefit is unknown or used up keeps its ``error`` and is tried again by later settles.
Growth from check-ins and tasks is written beside the growth rules' entries (source ``check_in`` or ``task``) and
is not capped by the rules' caps, which bound what events earn.

:func:`run_pass` is the periodic duty (tasks, open rewards, then the membership events of
:mod:`userloop.membership.report`) for the process that owns the event store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlglot import exp

from userloop import benefits
from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError, UserloopError
from userloop.membership import report
from userloop.membership.accounts import ledger_of
from userloop.membership.engagement_tables import (
    CheckInRow,
    RewardRow,
    TaskEventRow,
    TaskMarkRow,
    TaskProgressRow,
)
from userloop.membership.engagement_types import CheckedIn, CheckInDay, CheckIns, RewardView, TaskProgress
from userloop.membership.growth import _condition, entry_key, local_day
from userloop.membership.ledger_types import Earn
from userloop.membership.members import GrowthEntry, MemberRow, Programmes, SavedProgramme
from userloop.membership.programme import CheckIn, Reward, Task
from userloop.store import sqlbuild as sb
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

#: The period key of a task without periods.
EVER = date(1, 1, 1)
#: Events per page of :func:`count_tasks`: one DuckDB statement and one metadata transaction each.
PAGE = 20_000
#: Counted event ids older than this are pruned (a re-read never goes this far back).
KEEP_COUNTED = timedelta(days=3)


@dataclass
class Counted:
    """What one :func:`count_tasks` did: events read, counted (new for a task), tasks completed."""

    events: int = 0
    counted: int = 0
    completed: int = 0
    rewards: list[str] = field(default_factory=list)


# pure rules ----------------------------------------------------------------------------------------------------
def next_streak(previous: tuple[date, int] | None, day: date) -> int:
    """The streak a check-in on ``day`` reaches after the member's previous one (its day and streak)."""
    if previous is not None and previous[0] == day - timedelta(days=1):
        return previous[1] + 1
    return 1


def streak_rewards(rule: CheckIn, streak: int) -> list[Reward]:
    """The streak rewards a check-in reaching ``streak`` earns (``repeat``: counted within cycles as long as the
    longest rewarded streak; ``once``: only the first time)."""
    if not rule.streaks:
        return []
    longest = max(s.days for s in rule.streaks)
    position = (streak - 1) % longest + 1 if rule.cycle == "repeat" else streak
    return [s.reward for s in rule.streaks if s.days == position]


def period_start(period: str, day: date) -> date:
    """The first local day of the task period that holds ``day`` (weeks start on Monday, ISO 8601)."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return EVER


# check-ins -----------------------------------------------------------------------------------------------------
def check_in(meta: MetaStore, saved: SavedProgramme, person: int, at: datetime, *, secret: bytes) -> CheckedIn:
    """Check ``person`` in at the naive UTC instant ``at`` (once per local day; a repeat returns the day's
    check-in with ``new`` false), then book the rewards. ``check_in_disabled`` when the programme has no check-in;
    ``check_in_late`` for a day before the member's latest check-in (a clock behind another server's)."""
    rule = saved.definition.check_in
    if rule is None:
        raise UserloopError(f"programme {saved.name!r} has no daily check-in", code="check_in_disabled")
    _active_member(meta, saved, person)
    day = local_day(at, ZoneInfo(saved.definition.timezone))
    try:
        row, new = _record_check_in(meta, saved, person, day, at, rule)
    except IntegrityError:  # a racing check-in of the same day took the key first
        row, new = _record_check_in(meta, saved, person, day, at, rule)
    keys = _check_in_keys(saved.id, person, row.day, rule, row.streak)
    settle(meta, saved, secret=secret, keys=keys)
    return CheckedIn(day=row.day, at=row.at, streak=row.streak, new=new, rewards=rewards_of(meta, keys))


def _record_check_in(
    meta: MetaStore, saved: SavedProgramme, person: int, day: date, at: datetime, rule: CheckIn
) -> tuple[CheckInRow, bool]:
    """The day's check-in row, written with its rewards in one transaction unless it exists."""
    mine = (CheckInRow.programme_id == saved.id, CheckInRow.person == person)
    with meta.session.begin() as s:
        found = s.scalar(select(CheckInRow).where(*mine, CheckInRow.day == day))
        if found is not None:
            return found, False
        latest = s.execute(select(CheckInRow.day, CheckInRow.streak).where(*mine).order_by(CheckInRow.day.desc())
                           .limit(1)).first()  # fmt: skip
        if latest is not None and latest.day > day:
            raise UserloopError(f"person {person} checked in on {latest.day} already; {day} is over",
                                code="check_in_late")  # fmt: skip
        streak = next_streak(None if latest is None else (latest.day, latest.streak), day)
        row = CheckInRow(project_id=saved.project_id, programme_id=saved.id, person=person, day=day, at=at,
                         streak=streak)  # fmt: skip
        s.add(row)
        daily = Reward(points=rule.points, wallet=rule.wallet, growth=rule.growth)
        planned = [(_daily_key(saved.id, person, day), daily, "每日签到 / daily check-in")]
        planned += [
            (_streak_key(saved.id, person, day, streak), reward, f"连续签到{streak}天 / {streak}-day check-in streak")
            for reward in streak_rewards(rule, streak)
        ]
        for key, reward, reason in planned:
            if reward.points or reward.growth or reward.benefits:
                s.add(_reward_row(saved, person, key, "check_in", reward, reason, at))
        s.flush()
        return row, True


def _check_in_keys(programme_id: int, person: int, day: date, rule: CheckIn, streak: int) -> list[str]:
    keys = [_daily_key(programme_id, person, day)]
    if streak_rewards(rule, streak):
        keys.append(_streak_key(programme_id, person, day, streak))
    return keys


def _daily_key(programme_id: int, person: int, day: date) -> str:
    return f"checkin-{programme_id}-{person}-{day.isoformat()}"


def _streak_key(programme_id: int, person: int, day: date, streak: int) -> str:
    return f"streak-{programme_id}-{person}-{day.isoformat()}-{streak}"


def check_ins(meta: MetaStore, saved: SavedProgramme, person: int, now: datetime, *, limit: int = 31) -> CheckIns:
    """A member's latest ``limit`` check-ins and the streak that still counts at ``now``."""
    today = local_day(now, ZoneInfo(saved.definition.timezone))
    with meta.session() as s:
        rows = s.scalars(
            select(CheckInRow)
            .where(CheckInRow.programme_id == saved.id, CheckInRow.person == person)
            .order_by(CheckInRow.day.desc())
            .limit(limit)
        ).all()
    days = [CheckInDay(day=r.day, at=r.at, streak=r.streak) for r in rows]
    alive = bool(days) and days[0].day >= today - timedelta(days=1)
    return CheckIns(person=person, today=today, checked_in_today=bool(days) and days[0].day == today,
                    streak=days[0].streak if alive else 0, days=days)  # fmt: skip


# tasks ----------------------------------------------------------------------------------------------------------
def count_tasks(meta: MetaStore, store: ProjectStore, saved: SavedProgramme, now: datetime, *, page: int = PAGE,
                secret: bytes) -> Counted:  # fmt: skip
    """Count the events loaded up to ``now`` since the programme's task mark toward its tasks, complete the tasks
    whose count is reached, and book their rewards; the mark moves past every event read."""
    done = Counted()
    tasks = saved.definition.tasks
    since_ms, after_id = _task_mark(meta, saved)
    top = store.scalar(
        sb.sql("SELECT epoch_ms(max(received_at)) FROM $e WHERE received_at <= make_timestamp(? * 1000)",
               e=store.ref("events")),
        [_ms(now)],
    )  # fmt: skip
    top_ms = int(top) if top is not None else since_ms
    if tasks:
        stmt = _task_statement(store, tasks)
        members = _members(meta, saved.id)
        names = sorted({t.event for t in tasks})
        while True:
            rows = store.fetchall(stmt, [since_ms, since_ms, after_id, top_ms, names, page])
            if not rows:
                break
            since_ms, after_id = int(rows[-1][3]), str(rows[-1][0])
            _count_page(meta, saved, members, rows, (since_ms, after_id), now, done)
            done.events += len(rows)
            if len(rows) < page:
                break
    if top_ms > since_ms:
        _set_task_mark(meta, saved, top_ms, "")
    if done.rewards:
        settle(meta, saved, secret=secret, keys=done.rewards)
    return done


def _task_statement(store: ProjectStore, tasks: Sequence[Task]) -> exp.Select:
    """Events of the tasks' names in load order after the mark, with ``t<i>`` true when task ``i`` matches."""
    known = store.properties("events")
    stmt = sb.sql(
        "SELECT event_id, user_id, time, epoch_ms(received_at) AS r FROM $e "
        "WHERE (received_at > make_timestamp(? * 1000) OR (received_at = make_timestamp(? * 1000) "
        "AND event_id > ?)) AND received_at <= make_timestamp(? * 1000) AND event IN (SELECT unnest(?)) "
        "AND user_id IS NOT NULL ORDER BY received_at, event_id LIMIT ?",
        e=store.ref("events"),
    )
    assert isinstance(stmt, exp.Select)
    matches = [
        exp.func("coalesce", exp.and_(sb.sql("event = $name", name=t.event), *(_condition(f, known) for f in t.where)),
                 exp.false())
        for t in tasks
    ]  # fmt: skip
    return stmt.select(*(exp.alias_(m, f"t{i}") for i, m in enumerate(matches)))


def _members(meta: MetaStore, programme_id: int) -> dict[int, datetime]:
    """Active members' join instants by person."""
    stmt = select(MemberRow.person, MemberRow.joined_at).where(
        MemberRow.programme_id == programme_id, MemberRow.status == "active"
    )
    with meta.engine.connect() as conn:
        return {int(p): j for p, j in conn.execute(stmt)}


def _count_page(
    meta: MetaStore,
    saved: SavedProgramme,
    members: dict[int, datetime],
    rows: list[tuple[Any, ...]],
    mark: tuple[int, str],
    now: datetime,
    done: Counted,
) -> None:
    """Count one page toward the tasks and move the mark, in one transaction."""
    zone = ZoneInfo(saved.definition.timezone)
    tasks = saved.definition.tasks
    with meta.engine.begin() as conn:
        for event_id, person, at, _r, *hits in rows:
            joined = members.get(int(person))
            if joined is None or at < joined:
                continue
            for i, hit in enumerate(hits):
                if hit and _count_once(conn, saved.id, tasks[i].name, str(event_id), now):
                    done.counted += 1
                    key = _progress(conn, saved, tasks[i], int(person), local_day(at, zone), at)
                    if key is not None:
                        done.completed += 1
                        done.rewards.append(key)
        conn.execute(
            update(TaskMarkRow)
            .where(TaskMarkRow.project_id == saved.project_id, TaskMarkRow.programme_id == saved.id)
            .values(received_ms=mark[0], after_id=mark[1])
        )
        conn.execute(delete(TaskEventRow).where(TaskEventRow.counted_at < now - KEEP_COUNTED))


def _count_once(conn: Connection, programme_id: int, task: str, event_id: str, now: datetime) -> bool:
    """Record that the event counted for the task; False when it had already."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(TaskEventRow.__table__).on_conflict_do_nothing(
        index_elements=["programme_id", "task", "event_id"]
    )
    # RETURNING, not rowcount: psycopg reports -1 rows for an INSERT … ON CONFLICT DO NOTHING through SQLAlchemy
    inserted = conn.execute(
        stmt.returning(TaskEventRow.event_id),
        {"programme_id": programme_id, "task": task, "event_id": event_id, "counted_at": now},
    )
    return inserted.first() is not None


def _progress(conn: Connection, saved: SavedProgramme, task: Task, person: int, day: date, at: datetime) -> str | None:
    """Add one to the member's count in the event's period; the reward's key when this completes the task."""
    period = period_start(task.period, day)
    t = TaskProgressRow.__table__.c
    where = (t.programme_id == saved.id, t.task == task.name, t.person == person, t.period == period)
    row = conn.execute(select(t.count.label("n"), t.completed).where(*where)).first()
    if row is None:
        conn.execute(insert(TaskProgressRow).values(programme_id=saved.id, task=task.name, person=person,
                                                               period=period, project_id=saved.project_id, count=0,
                                                               completed=0, updated_at=at))  # fmt: skip
        count, completed = 0, 0
    else:
        count, completed = int(row.n), int(row.completed)
    count += 1
    completes = count >= task.times and not completed and _below_limit(conn, saved.id, task, person)
    conn.execute(update(TaskProgressRow).where(*where).values(count=count, completed=int(completes) or
                                                                          completed, updated_at=at))  # fmt: skip
    if not completes:
        return None
    key = f"task-{saved.id}-{task.name}-{person}-{period.isoformat()}"
    reason = f"任务「{task.title.zh}」/ task '{task.title.en}'"
    conn.execute(insert(RewardRow).values(**_reward_values(saved, person, key, "task", task.reward,
                                                                      reason, at)))  # fmt: skip
    return key


def _below_limit(conn: Connection, programme_id: int, task: Task, person: int) -> bool:
    if task.limit is None:
        return True
    t = TaskProgressRow.__table__.c
    done = conn.execute(
        select(func.coalesce(func.sum(t.completed), 0)).where(
            t.programme_id == programme_id, t.task == task.name, t.person == person
        )
    ).scalar()
    return int(done or 0) < task.limit


def _task_mark(meta: MetaStore, saved: SavedProgramme) -> tuple[int, str]:
    with meta.session.begin() as s:
        mark = s.get(TaskMarkRow, (saved.project_id, saved.id))
        if mark is None:
            mark = TaskMarkRow(project_id=saved.project_id, programme_id=saved.id, received_ms=0, after_id="")
            s.add(mark)
        return mark.received_ms, mark.after_id


def _set_task_mark(meta: MetaStore, saved: SavedProgramme, ms: int, after_id: str) -> None:
    with meta.session.begin() as s:
        mark = s.get(TaskMarkRow, (saved.project_id, saved.id))
        assert mark is not None
        mark.received_ms, mark.after_id = ms, after_id


def task_progress(meta: MetaStore, saved: SavedProgramme, person: int, now: datetime) -> list[TaskProgress]:
    """A member's progress on every task of the programme, in the periods that hold ``now``."""
    today = local_day(now, ZoneInfo(saved.definition.timezone))
    t = TaskProgressRow.__table__.c
    with meta.engine.connect() as conn:
        rows = conn.execute(
            select(t.task, t.period, t.count.label("n"), t.completed).where(
                t.programme_id == saved.id, t.person == person
            )
        ).all()
    current = {(r.task, r.period): (int(r.n), bool(r.completed)) for r in rows}
    totals: dict[str, int] = {}
    for r in rows:
        totals[r.task] = totals.get(r.task, 0) + int(r.completed)
    out = []
    for task in saved.definition.tasks:
        period = period_start(task.period, today)
        count, completed = current.get((task.name, period), (0, False))
        out.append(TaskProgress(task=task.name, title=task.title, event=task.event, times=task.times,
                                period=task.period, period_start=None if period == EVER else period, count=count,
                                completed=completed, completions=totals.get(task.name, 0), limit=task.limit,
                                reward=task.reward))  # fmt: skip
    return out


# rewards --------------------------------------------------------------------------------------------------------
def _reward_values(
    saved: SavedProgramme, person: int, key: str, source: str, reward: Reward, reason: str, at: datetime
) -> dict[str, Any]:
    return {"key": key, "project_id": saved.project_id, "programme_id": saved.id, "person": person, "source": source,
            "wallet": reward.wallet, "points": reward.points, "growth": reward.growth,
            "benefits": json.dumps(reward.benefits, ensure_ascii=False), "reason": reason, "earned_at": at,
            "created_at": utcnow()}  # fmt: skip


def _reward_row(
    saved: SavedProgramme, person: int, key: str, source: str, reward: Reward, reason: str, at: datetime
) -> RewardRow:
    return RewardRow(**_reward_values(saved, person, key, source, reward, reason, at))


def settle(meta: MetaStore, saved: SavedProgramme, *, secret: bytes, keys: Sequence[str] | None = None,
           limit: int = 1000) -> int:  # fmt: skip
    """Book unsettled rewards of the programme (those of ``keys``, else the oldest ``limit``): points by the
    ledger's earn, growth, benefits, each idempotent by the reward's key. Returns how many were settled."""
    stmt = select(RewardRow).where(RewardRow.programme_id == saved.id, RewardRow.settled_at.is_(None))
    stmt = stmt.where(RewardRow.key.in_(keys)) if keys is not None else stmt.order_by(RewardRow.created_at)
    with meta.session() as s:
        rows = s.scalars(stmt.limit(limit)).all()
    settled = 0
    for row in rows:
        try:
            _settle_one(meta, saved, row, secret)
            settled += 1
        except UserloopError as exc:  # an unknown or used-up benefit, a wallet the programme lost: kept, retried
            with meta.session.begin() as s:
                s.execute(update(RewardRow).where(RewardRow.key == row.key).values(error=str(exc)[:200]))
    return settled


def _settle_one(meta: MetaStore, saved: SavedProgramme, row: RewardRow, secret: bytes) -> None:
    if row.points:
        earn = Earn(person=row.person, request_id=row.key, wallet=row.wallet, amount=row.points, reason=row.reason)
        ledger_of(meta, saved).post(earn, row.earned_at)
    with meta.engine.begin() as conn:
        if row.growth:
            _credit_growth(conn, saved, row)
        for i, name in enumerate(json.loads(row.benefits)):
            benefits.grant(conn, project_id=row.project_id, name=name, key=benefits.grant_key(row.key, i),
                           person=row.person, now=row.earned_at, secret=secret)  # fmt: skip
        conn.execute(update(RewardRow).where(RewardRow.key == row.key).values(settled_at=utcnow(), error=None))


def _credit_growth(conn: Connection, saved: SavedProgramme, row: RewardRow) -> None:
    """The reward's growth value as a growth entry keyed by the reward (written once)."""
    member = conn.execute(
        select(MemberRow.id).where(MemberRow.programme_id == saved.id, MemberRow.person == row.person)
    ).scalar()
    if member is None:
        raise NotFoundError(f"person {row.person} is not a member of programme {saved.name!r}", code="unknown_member")
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    day = local_day(row.earned_at, ZoneInfo(saved.definition.timezone))
    conn.execute(
        dialect.insert(GrowthEntry.__table__).on_conflict_do_nothing(index_elements=["programme_id", "key"]),
        {"programme_id": saved.id, "member_id": member, "key": entry_key(row.source, row.key), "source": row.source,
         "amount": row.growth, "at": row.earned_at, "day": day, "created_at": utcnow()},
    )  # fmt: skip


def rewards_of(meta: MetaStore, keys: Sequence[str]) -> list[RewardView]:
    """The rewards of these keys, as stored (in the keys' order)."""
    with meta.session() as s:
        rows = {r.key: r for r in s.scalars(select(RewardRow).where(RewardRow.key.in_(list(keys))))}
    return [_view(rows[k]) for k in keys if k in rows]


def _view(r: RewardRow) -> RewardView:
    return RewardView(key=r.key, source=r.source, reason=r.reason, wallet=r.wallet, points=r.points,
                      growth=r.growth, benefits=json.loads(r.benefits), earned_at=r.earned_at,
                      settled=r.settled_at is not None, error=r.error)  # fmt: skip


def _active_member(meta: MetaStore, saved: SavedProgramme, person: int) -> int:
    """The member id of ``person`` in the programme; ``unknown_member`` unless they are an active member."""
    with meta.session() as s:
        row = s.execute(
            select(MemberRow.id, MemberRow.status).where(MemberRow.programme_id == saved.id, MemberRow.person == person)
        ).first()
    if row is None or row.status != "active":
        why = "is not a member" if row is None else "has left"
        raise NotFoundError(f"person {person} {why} of programme {saved.name!r}", code="unknown_member")
    return int(row.id)


@dataclass(frozen=True)
class Pass:
    """What one :func:`run_pass` did."""

    events_read: int
    tasks_completed: int
    rewards_settled: int
    events_written: int


def run_pass(meta: MetaStore, project: Project, store: ProjectStore, now: datetime, *, secret: bytes,
             expiring_days: int = report.EXPIRING_DAYS) -> Pass:  # fmt: skip
    """The member system's periodic duty for one project, for the process that owns the event store: count every
    active programme's tasks, book rewards left open (a crash, a used-up benefit), then write one batch of
    membership events (:func:`userloop.membership.report.report`). Safe to repeat and to interrupt."""
    read = completed = settled = 0
    for saved in Programmes(meta, project).all():
        if saved.status != "active":
            continue
        counted = count_tasks(meta, store, saved, now, secret=secret)
        read, completed = read + counted.events, completed + counted.completed
        settled += settle(meta, saved, secret=secret)
    written = report.report(meta, project, store, now=now, expiring_days=expiring_days).written
    return Pass(events_read=read, tasks_completed=completed, rewards_settled=settled, events_written=written)


def _ms(at: datetime) -> int:
    return int((at - datetime(1970, 1, 1)).total_seconds() * 1000)
