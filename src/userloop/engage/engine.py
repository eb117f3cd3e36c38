"""The journeys engine of one project inside the process that owns its event store (``userloop serve``).

:meth:`JourneyEngine.step` does one pass of every duty, in order:
1. **event triggers**: the events loaded since the last pass (read by load time, ``received_at``, from a mark kept
   in the metadata DB) that a running journey listens to — entry events, "unless" events, waited-for events,
   goals — go to :meth:`Stepper.on_events`; imports and the collector arrive the same way;
2. **scheduled entries**: one-off and recurring broadcasts (in the project's zone, or per person zone), date
   properties (birthdays ± offset) and holidays, each fired once (``journey_fires``);
3. **segment entries** (every ``segment_every``): new members of a segment enter, and with ``exit_on_leave``
   people who left it leave the journey;
4. **timers**: every due run resumes;
5. **delivery**: the outbox is carried out (:class:`Deliverer`);
6. **reporting**: results become ``$message_*`` events and profile updates (:func:`report`).

Worker processes on PostgreSQL run only :class:`Deliverer` (``userloop journeys worker``); the steps that read
profiles stay with the owner of the event store.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlglot import exp

from userloop.engage import interpreter as interp
from userloop.engage.delivery import ChannelSource, Deliverer, Tally
from userloop.engage.facts import Needs, load_facts, needs_of
from userloop.engage.journey import (
    DateEntry,
    EventEntry,
    HolidayEntry,
    Journey,
    ScheduleEntry,
    SegmentEntry,
    WaitEvent,
)
from userloop.engage.report import Reported, report
from userloop.engage.rules import resolve_local
from userloop.engage.runtime import Entered, Stepper
from userloop.engage.tables import FireRow, JourneyRow, RunRow, TriggerMark
from userloop.query.compile import sql
from userloop.store import sqlbuild as sb
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project

log = logging.getLogger(__name__)
#: Fixed-date shopping festivals (month, day) an operator can name as a holiday calendar.
FESTIVALS: dict[str, tuple[int, int]] = {"520": (5, 20), "618": (6, 18), "double11": (11, 11), "double12": (12, 12)}
EVENT_BATCH = 20_000


class DuckFacts:
    """Facts from the project's profiles (:func:`userloop.engage.facts.load_facts`)."""

    def __init__(self, store: ProjectStore, meta: MetaStore, project: Project, zone_property: str) -> None:
        self.store, self.meta, self.project, self.zone_property = store, meta, project, zone_property

    def load(
        self, persons: Sequence[int], props: frozenset[str], journey: Journey, at: datetime
    ) -> Mapping[int, interp.Facts]:
        needs = needs_of(journey) | Needs(props=props)
        return load_facts(self.store, self.meta, self.project, persons, needs, zone_property=self.zone_property,
                          at=at)  # fmt: skip


@dataclass
class Pass:
    """What one pass did."""

    events: int = 0
    entered: Entered = field(default_factory=Entered)
    resumed: int = 0
    delivered: Tally = field(default_factory=Tally)
    reported: Reported = field(default_factory=Reported)


class JourneyEngine:
    def __init__(
        self,
        meta: MetaStore,
        project: Project,
        store: ProjectStore,
        channels: ChannelSource,
        *,
        link_secret: bytes,
        zone_property: str = "$timezone",
        segment_every: timedelta = timedelta(minutes=1),
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.meta, self.project, self.store = meta, project, store
        self.stepper = Stepper(meta, project, DuckFacts(store, meta, project, zone_property))
        self.deliverer = Deliverer(meta, project, channels, link_secret=link_secret)
        self.segment_every = segment_every
        self.stopping = stopping  # checked between pages and batches, so a service stops within one of them
        self._segments_at: datetime | None = None

    def step(self, now: datetime, *, deliver: bool = True) -> Pass:
        """One pass of every duty; ``deliver=False`` leaves the outbox to a delivery thread of its own
        (:class:`userloop.service.journeys.JourneysLoop`), so a backlog of sends never delays the next events."""
        done = Pass()
        self.store.forget_cache()  # properties registered by loads since the last pass (an address just imported)
        journeys = self._running()
        if journeys:
            done.events = self._events(journeys, now, done.entered)
            self._schedules(journeys, now, done.entered)
            if self._segments_at is None or now - self._segments_at >= self.segment_every:
                self._segments(journeys, now, done.entered)
                self._segments_at = now
        while not self.stopping() and (n := self.stepper.tick(now)) > 0:
            done.resumed += n
        while deliver and not self.stopping():
            tally = self.deliverer.run_once(now)
            if not tally.handled:
                break
            for k, v in tally.by_status.items():
                done.delivered.add(k, v)
            if tally.deferred + tally.retried == tally.handled:
                break  # only rows that wait for later
        done.reported = report(self.meta, self.project, self.store)
        return done

    def _running(self) -> list[tuple[JourneyRow, Journey]]:
        with self.meta.session() as s:
            rows = s.scalars(
                select(JourneyRow).where(JourneyRow.project_id == self.project.id, JourneyRow.status == "running")
            ).all()
        return [(r, self.stepper.definition(r.id, r.version)) for r in rows]

    # 1. events ---------------------------------------------------------------------------------------------
    def _events(self, journeys: list[tuple[JourneyRow, Journey]], now: datetime, entered: Entered) -> int:
        """Hand the events loaded since the mark to the runs and entries that listen to them, in pages of
        :data:`EVENT_BATCH` by (load time, event id), so a load of any size is read through; the mark moves past
        every event loaded so far, listened to or not, so a journey started later never sees older loads."""
        names, props = _listened(journeys, self._waited_events())
        with self.meta.session.begin() as s:
            mark = s.get(TriggerMark, self.project.id)
            if mark is None:
                # a journey listens from the moment the engine first runs, not over the whole history
                mark = TriggerMark(project_id=self.project.id, received_ms=_ms(now), seen="")
                s.add(mark)
            since_ms, after_id = mark.received_ms, mark.seen
        top = self.store.fetchall(
            sql(
                "SELECT epoch_ms(max(received_at)) FROM $e WHERE received_at <= make_timestamp(? * 1000)",
                e=self.store.ref("events"),
            ),
            [_ms(now)],
        )
        top_ms = int(top[0][0]) if top and top[0][0] is not None else since_ms
        handled = 0
        known = set(self.store.properties("events"))
        cols = [p for p in sorted(props) if p in known]
        stmt = sql(
            "SELECT event_id, event, user_id, time, epoch_ms(received_at) AS r FROM $e "
            "WHERE (received_at > make_timestamp(? * 1000) OR (received_at = make_timestamp(? * 1000) "
            "AND event_id > ?)) AND received_at <= make_timestamp(? * 1000) AND event IN (SELECT unnest(?)) "
            "ORDER BY received_at, event_id LIMIT ?",
            e=self.store.ref("events"),
        )
        assert isinstance(stmt, exp.Select)
        stmt = stmt.select(*(sb.col(c) for c in cols))
        complete = True
        while names:
            if self.stopping():
                complete = False
                break
            rows = self.store.fetchall(stmt, [since_ms, since_ms, after_id, top_ms, sorted(names), EVENT_BATCH])
            if not rows:
                break
            events = [(int(r[2]), interp.Happened(r[1], r[3], {c: r[5 + i] for i, c in enumerate(cols)})) for r in rows]
            events.sort(key=lambda pe: pe[1].at)
            # timers due before the first of these events go first: a wait that ended before an event was over
            while self.stepper.tick(min(now, events[0][1].at)) > 0:
                pass
            entered.add(self.stepper.on_events(events, now))
            handled += len(rows)
            since_ms, after_id = int(rows[-1][4]), str(rows[-1][0])
            self._mark(since_ms, after_id)
            if len(rows) < EVENT_BATCH:
                break
        if complete and top_ms > since_ms:
            self._mark(top_ms, "")  # nothing listened to was loaded after: move past everything read
        return handled

    def _mark(self, received_ms: int, after_id: str) -> None:
        with self.meta.session.begin() as s:
            mark = s.get(TriggerMark, self.project.id)
            assert mark is not None
            mark.received_ms, mark.seen = received_ms, after_id

    def _waited_events(self) -> set[str]:
        with self.meta.session() as s:
            return {
                str(e)
                for e in s.scalars(
                    select(RunRow.wait_event)
                    .where(RunRow.status != "exited", RunRow.wait_event.is_not(None))
                    .distinct()
                ).all()
            }

    # 2. schedules ------------------------------------------------------------------------------------------
    def _schedules(self, journeys: list[tuple[JourneyRow, Journey]], now: datetime, entered: Entered) -> None:
        zone = self.project.timezone
        for row, journey in journeys:
            entry = journey.entry
            if isinstance(entry, ScheduleEntry):
                self._schedule(row, journey, entry, now, entered)
            elif isinstance(entry, DateEntry):
                self._dates(row, entry, now, entered)
            elif isinstance(entry, HolidayEntry):
                local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
                for day in (local - timedelta(days=1), local):
                    holiday = day - timedelta(days=entry.offset_days)
                    if not is_holiday(entry.calendar, holiday):
                        continue
                    at = resolve_local(datetime.combine(day, entry.time_of_day), zone)
                    if at <= now and self._fire(row.id, f"holiday:{day}", now):
                        entered.add(self._enter(row.id, f"holiday:{day}", self._audience(entry.segment), at, now))

    def _schedule(
        self, row: JourneyRow, journey: Journey, entry: ScheduleEntry, now: datetime, entered: Entered
    ) -> None:
        zone = self.project.timezone
        if entry.once_at is not None:
            at = resolve_local(entry.once_at, zone)
            if at <= now and self._fire(row.id, f"once:{entry.once_at.isoformat()}", now):
                entered.add(
                    self._enter(row.id, f"once:{entry.once_at.isoformat()}", self._audience(entry.segment), at, now)
                )
            return
        days = {("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(d) for d in entry.weekdays} or None
        if entry.zone == "project":
            local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()
            for day in (local - timedelta(days=1), local):
                if days is not None and day.weekday() not in days:
                    continue
                at = resolve_local(datetime.combine(day, entry.time_of_day), zone)
                fresh = row.started_at is None or at >= row.started_at
                if at <= now and fresh and self._fire(row.id, f"day:{day}", now):
                    entered.add(self._enter(row.id, f"day:{day}", self._audience(entry.segment), at, now))
            return
        # each person's own zone: people grouped by zone, each group fired once per local day
        people = self._audience(entry.segment)
        facts = self.stepper.facts.load(people, frozenset(), journey, now)
        by_zone: dict[str, list[int]] = {}
        for p in people:
            by_zone.setdefault(facts[p].zone, []).append(p)
        for z, group in sorted(by_zone.items()):
            local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(z)).date()
            for day in (local - timedelta(days=1), local):
                if days is not None and day.weekday() not in days:
                    continue
                at = resolve_local(datetime.combine(day, entry.time_of_day), z)
                fresh = row.started_at is None or at >= row.started_at
                if at <= now and fresh and self._fire(row.id, f"day:{day}:{z}", now):
                    entered.add(self._enter(row.id, f"day:{day}:{z}", group, at, now))

    def _dates(self, row: JourneyRow, entry: DateEntry, now: datetime, entered: Entered) -> None:
        """People whose date property (± offset) is today in their zone, once the local time has come."""
        if entry.property not in set(self.store.properties("users")):
            return
        stmt = sql(
            "SELECT user_id, $p FROM $u WHERE $p IS NOT NULL", u=self.store.ref("users"), p=sb.name(entry.property)
        )
        dated = {int(p): interp.as_date(v) for p, v in self.store.fetchall(stmt)}
        allowed = set(self._audience(entry.segment)) if entry.segment is not None else None
        people = [p for p, d in dated.items() if d is not None and (allowed is None or p in allowed)]
        journey = self.stepper.definition(row.id, row.version)
        facts = self.stepper.facts.load(people, frozenset(), journey, now)
        due: dict[tuple[str, date], list[int]] = {}
        for p in people:
            z = facts[p].zone
            local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(z)).date()
            d = dated[p]
            assert d is not None
            for day in (local - timedelta(days=1), local):
                target = day - timedelta(days=entry.offset_days)
                same = _same_day(target, d) if entry.annual else target == d
                if same:
                    due.setdefault((z, day), []).append(p)
        for (z, day), group in sorted(due.items()):
            at = resolve_local(datetime.combine(day, entry.time_of_day), z)
            if at <= now and self._fire(row.id, f"date:{day}:{z}", now):
                entered.add(self._enter(row.id, f"date:{day}:{z}", group, at, now))

    def _fire(self, journey_id: int, fire: str, now: datetime) -> bool:
        """Whether a scheduled entry is still to happen; it is recorded as done by :meth:`_fired` once its people
        are in, so a crash in between repeats the entry (whose re-entry rules refuse the people already in)."""
        with self.meta.session() as s:
            return s.get(FireRow, (journey_id, fire[:120])) is None

    def _fired(self, journey_id: int, fire: str, now: datetime) -> None:
        try:
            with self.meta.session.begin() as s:
                s.add(FireRow(journey_id=journey_id, fire=fire[:120], at=now))
        except IntegrityError:  # another pass recorded it first
            pass

    def _enter(self, journey_id: int, fire: str, people: Sequence[int], at: datetime, now: datetime) -> Entered:
        entered = self.stepper.enroll(journey_id, people, at)
        self._fired(journey_id, fire, now)
        return entered

    # 3. segments -------------------------------------------------------------------------------------------
    def _segments(self, journeys: list[tuple[JourneyRow, Journey]], now: datetime, entered: Entered) -> None:
        for row, journey in journeys:
            entry = journey.entry
            if not isinstance(entry, SegmentEntry):
                continue
            members = set(self._audience(entry.segment))
            with self.meta.session() as s:
                inside = {
                    int(p)
                    for p in s.scalars(
                        select(RunRow.person).where(RunRow.journey_id == row.id, RunRow.status != "exited")
                    ).all()
                }
            new = sorted(members - inside)
            if new:
                entered.add(self.stepper.enroll(row.id, new, now))
            if entry.exit_on_leave:
                self.stepper.exit_people(row.id, sorted(inside - members), now, "left_segment")

    def _audience(self, segment: int | None) -> list[int]:
        """The people of ``segment`` as of its last refresh, or everyone with a profile."""
        if segment is None:
            stmt = sql("SELECT user_id FROM $u ORDER BY user_id", u=self.store.ref("users"))
            return [int(r[0]) for r in self.store.fetchall(stmt)]
        from userloop.profile import segments

        seg = segments.get(self.meta, self.project.id, segment)
        tree = segments.members(self.store.schema, seg)
        return sorted(int(r[0]) for r in self.store.fetchall(tree))


def _listened(journeys: Iterable[tuple[JourneyRow, Journey]], waited: set[str]) -> tuple[set[str], set[str]]:
    """The event names the running journeys listen to, and the event properties their filters read."""
    names, props = set(waited), set()
    for _, j in journeys:
        filters = []
        if isinstance(j.entry, EventEntry):
            names.add(j.entry.event)
            filters += j.entry.filters
            if j.entry.unless is not None:
                names.add(j.entry.unless.event)
                filters += j.entry.unless.filters
        if j.goal is not None:
            names.add(j.goal.event)
            filters += j.goal.filters
        for n in j.nodes:
            if isinstance(n, WaitEvent):
                names.add(n.event)
                filters += n.filters
        props |= {f.property for f in filters if f.source == "event"}
    return names, props


def is_holiday(calendars: Sequence[str], day: date) -> bool:
    """Whether ``day`` starts a holiday of one of ``calendars``: ``cn_public`` (the first day of each Chinese
    public holiday period, from ``chinese_calendar``) or a festival of :data:`FESTIVALS`."""
    for name in calendars:
        if name in FESTIVALS and (day.month, day.day) == FESTIVALS[name]:
            return True
        if name == "cn_public":
            import chinese_calendar

            try:
                today, name_today = chinese_calendar.get_holiday_detail(day)
                _, name_before = chinese_calendar.get_holiday_detail(day - timedelta(days=1))
            except NotImplementedError:  # a year the package does not cover yet
                return False
            if today and name_today is not None and name_before != name_today:
                return True
    return False


def _same_day(day: date, anniversary: date) -> bool:
    """Whether ``day`` is the yearly return of ``anniversary``; 29 February falls on 28 February in common years
    (the last day of the month it was in)."""
    if (anniversary.month, anniversary.day) == (2, 29) and not calendar.isleap(day.year):
        return (day.month, day.day) == (2, 28)
    return (day.month, day.day) == (anniversary.month, anniversary.day)


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)
