"""The journeys runtime: people enter, wait and move on; their journeys' side effects go to the outbox.

One :class:`Stepper` per project runs the interpreter over the runs stored in the metadata database:
- :meth:`Stepper.enroll` puts people into a journey (a broadcast, a segment's new members, a schedule, an event
  trigger), applying the journey's "who may enter" filter and re-entry rules;
- :meth:`Stepper.tick` resumes the runs whose timer is due;
- :meth:`Stepper.on_events` hands people's new events to the runs waiting for them, to event-entry journeys and
  to the journeys' goals.

Each batch is one transaction: the runs' new positions, their outbox rows and the node counters commit together,
or not at all. Outbox rows are keyed by the deterministic :func:`userloop.engage.interpreter.effect_key`, and an
insert of a key already there is ignored, so redoing a batch after a crash writes no effect twice. On PostgreSQL
several worker processes share the work: each claims due runs with ``FOR UPDATE SKIP LOCKED``, the pattern of
PostHog's Cyclotron and Laudspeaker (``research/act-and-measure.md`` §1.9).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, DateTime, Table, and_, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage import interpreter as interp
from userloop.engage import rules
from userloop.engage.journey import EventEntry, Journey, RandomSplit, Send, Wait, WaitEvent, parse, successors
from userloop.engage.tables import (
    ChannelRow,
    JourneyRow,
    JourneyVersion,
    MaterialRow,
    NodeCount,
    OutboxRow,
    RunRow,
)
from userloop.store.meta import MetaStore, Project

#: How many runs one transaction handles.
BATCH = 2000
#: How many people one transaction takes in: larger, since an entry batch is mostly one bulk insert.
ENROLL_BATCH = 10_000
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
_COUNTS: Table = NodeCount.__table__  # type: ignore[assignment]
#: A template's reads of the person's profile: ``person.city`` or ``person["$os"]``.
_PERSON_REF = re.compile(r"person\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]{1,100})['\"]\s*\])")
#: Open runs: the second term is the partial indexes' own condition, written out so the planner uses them.
_OPEN = (RunRow.status.in_(("waiting", "held", "door")), RunRow.status != "exited")
#: The profile property that holds a channel kind's address, unless the channel's settings name another.
ADDRESS_PROPERTY = {"email": "email", "sms": "phone", "push": "push_token"}


class FactsSource(Protocol):
    """Where the runtime learns about people (:mod:`userloop.engage.facts` reads the project's profiles)."""

    def load(
        self, persons: Sequence[int], props: frozenset[str], journey: Journey, at: datetime
    ) -> Mapping[int, interp.Facts]:
        """The facts of ``persons`` that ``journey`` (and ``props``) read, as of ``at`` (naive UTC)."""
        ...


@dataclass
class Entered:
    """What an enrolment did: people who came in, and those refused with why."""

    entered: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def add(self, other: Entered) -> None:
        self.entered += other.entered
        self.refused.update(other.refused)


_Candidate = tuple[str, str, str | None, tuple[tuple[str, Any], ...], str, str | None, str | None]


@dataclass(frozen=True)
class _SendPlan:
    """A send node's candidates (name, kind, address property, reachability, topic, fixed address, why not),
    the profile properties its material reads, and where the locale is read from."""

    candidates: tuple[_Candidate, ...]
    scope: tuple[str, ...]
    locale: str


_PLAIN = (str, int, float, bool)


@dataclass(frozen=True)
class _Config:
    """What steps read about the project's set-up, once per batch: channels (kind, public settings), the profile
    properties each material reads, and where the locale is read from."""

    channels: dict[str, tuple[str, dict[str, Any]]]
    material_props: dict[str, set[str]]
    locale_property: str
    plans: dict[str, _SendPlan] = field(default_factory=dict)


class _EventBatch:
    """The state of one :meth:`Stepper.on_events` pass: runs changed or made in memory, their effects and counters
    per journey version, facts loaded once per journey for everyone in the batch; written in one go."""

    def __init__(self, stepper: Stepper, persons: list[int], now: datetime) -> None:
        self.st, self.persons, self.now = stepper, persons, now
        self.facts: dict[tuple[int, int], Mapping[int, interp.Facts]] = {}
        self.loaded: dict[tuple[int, int], _Loaded] = {}
        self.effects: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.counts: dict[tuple[int, int], Counter[tuple[str, str]]] = {}
        self.changed: dict[int, tuple[tuple[int, int], dict[str, Any]]] = {}  # run id → its state to write
        self.new: dict[tuple[int, int], list[dict[str, Any]]] = {}

    def _of(self, jid: int, version: int) -> tuple[_Loaded, Mapping[int, interp.Facts]]:
        key = (jid, version)
        if key not in self.loaded:
            journey = self.st.definition(jid, version)
            self.loaded[key] = _Loaded(self.st._row(jid), journey, version)
            self.facts[key] = self.st.facts.load(self.persons, self.st._props(journey), journey, self.now)
            self.effects[key], self.counts[key], self.new[key] = [], Counter(), []
        return self.loaded[key], self.facts[key]

    def handle(self, run: dict[str, Any], ev: interp.Happened) -> None:
        """Offer ``ev`` to one of its person's open runs, at the event's own time: a timer due at or before it fires
        first (the run may then be waiting for this event), then the event moves the run if it waits for it."""
        if run["status"] in ("exited", "held"):
            return
        key = (int(run["journey_id"]), int(run["version"]))
        if run["status"] in ("waiting", "door") and run["wake_at"] is not None and run["wake_at"] <= ev.at:
            self._move(run, key, ev.at, None)
        if run["status"] in ("exited", "held") or run.get("wait_event") != ev.event:
            return
        self._move(run, key, ev.at, ev)

    def _move(self, run: dict[str, Any], key: tuple[int, int], at: datetime, ev: interp.Happened | None) -> None:
        loaded, facts = self._of(*key)
        person = int(run["person"])
        pos = interp.Position(run["node"], run["since"], run["entered_at"], _path(run["path"]))
        change: dict[str, Any] | None
        if run["status"] == "door":
            change = self.st._door(loaded, run, pos, facts[person], at, ev, self.effects[key], self.counts[key])
        else:
            outcome = interp.resume(loaded.journey, self.st._seed(key[0]), pos, facts[person], at, ev)
            if outcome.position == pos and not outcome.effects:
                return
            _count(self.counts[key], outcome.trail)
            self.effects[key].extend(self.st._effects(loaded, person, run["occurrence"], outcome, facts[person]))
            change = self.st._change(run.get("id") or 0, outcome, loaded.journey)
        if change is None:
            return
        change.pop("id", None)
        run.update(change)
        if run.get("id"):
            previous = self.changed.get(run["id"], (key, {}))[1]
            self.changed[run["id"]] = (key, {**previous, **change})

    def enter(
        self,
        loaded: _Loaded,
        person: int,
        at: datetime,
        history: dict[int, tuple[int, datetime, bool]],
        entered: Entered,
    ) -> dict[str, Any] | None:
        key = (loaded.row.id, loaded.version)
        loaded, facts = self._of(*key)
        f = facts[person]
        past = history.get(person)
        why = self.st._refusal(loaded.journey, past, f, at)
        if why is not None:
            entered.refused[why] += 1
            return None
        occurrence = past[0] + 1 if past is not None else 1
        entry = loaded.journey.entry
        jid = loaded.row.id
        if isinstance(entry, EventEntry) and entry.unless is not None:
            deadline = at + timedelta(seconds=entry.unless.within_seconds)
            run = self.st._door_row(jid, loaded.version, person, occurrence, at, deadline, entry.unless.event)
            self.counts[key][("$entry", "held_at_door")] += 1
        else:
            outcome = interp.enter(loaded.journey, self.st._seed(jid), f, at)
            run = self.st._run_row(jid, loaded.version, person, occurrence, at, outcome, loaded.journey)
            self.effects[key].extend(self.st._effects(loaded, person, occurrence, outcome, f))
            _count(self.counts[key], outcome.trail)
            entered.entered += 1
        history[person] = (occurrence, at, run["status"] != "exited")
        self.new[key].append(run)
        return run

    def write(self, conn: Connection) -> None:
        for key, loaded in self.loaded.items():
            changes = [{"id": rid, **ch} for rid, (k, ch) in self.changed.items() if k == key]
            self.st._write(conn, loaded, runs=self.new[key], effects=self.effects[key], counts=self.counts[key],
                           changes=changes)  # fmt: skip


@dataclass
class _Group:
    """People of one signature in an entry batch: their shared first step, run row and outbox rows."""

    outcome: interp.Outcome
    run: dict[str, Any]
    effects: list[tuple[dict[str, Any], Send | None]]
    n: int = 0


def _stamper(postgres: bool) -> Callable[[Any], Any]:
    """Times as the driver takes them: datetimes for PostgreSQL, SQLAlchemy's SQLite text otherwise."""
    if postgres:
        return lambda v: v
    return lambda v: v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v


@dataclass(frozen=True)
class _Loaded:
    row: JourneyRow
    journey: Journey
    version: int


class Stepper:
    """Runs one project's journeys. ``worker`` names this process in claims."""

    def __init__(self, meta: MetaStore, project: Project, facts: FactsSource, *, worker: str = "main") -> None:
        self.meta = meta
        self.project = project
        self.facts = facts
        self.worker = worker
        self._versions: dict[tuple[int, int], Journey] = {}
        self._postgres = meta.engine.dialect.name == "postgresql"
        self._config: _Config | None = None

    def refresh(self) -> None:
        """Read channels, materials and settings again on the next batch (after an operator changed them)."""
        self._config = None

    def _cfg(self) -> _Config:
        if self._config is None:
            from userloop.engage.settings import load

            with self.meta.session() as s:
                channels = s.execute(
                    select(ChannelRow.name, ChannelRow.kind, ChannelRow.config).where(
                        ChannelRow.project_id == self.project.id
                    )
                ).all()
                materials = s.execute(
                    select(MaterialRow.name, MaterialRow.definition).where(MaterialRow.project_id == self.project.id)
                ).all()
            self._config = _Config(
                channels={name: (kind, _public_config(config)) for name, kind, config in channels},
                material_props={name: {a or b for a, b in _PERSON_REF.findall(text)} for name, text in materials},
                locale_property=load(self.meta, self.project.id).locale_property,
            )
        return self._config

    # definitions -------------------------------------------------------------------------------------------
    def definition(self, journey_id: int, version: int) -> Journey:
        key = (journey_id, version)
        found = self._versions.get(key)
        if found is None:
            with self.meta.session() as s:
                row = s.get(JourneyVersion, key)
                if row is None:
                    raise NotFoundError(f"journey {journey_id} has no version {version}", code="unknown_journey")
                found = self._versions[key] = parse(json.loads(row.definition))
        return found

    def _journey(self, journey_id: int) -> _Loaded:
        with self.meta.session() as s:
            row = s.get(JourneyRow, journey_id)
        if row is None or row.project_id != self.project.id:
            raise NotFoundError(f"no journey {journey_id} in project {self.project.name!r}", code="unknown_journey")
        return _Loaded(row, self.definition(row.id, row.version), row.version)

    # entering ----------------------------------------------------------------------------------------------
    def enroll(self, journey_id: int, persons: Iterable[int], at: datetime) -> Entered:
        """Put ``persons`` into a running journey at ``at`` (naive UTC), in batches; returns who came in."""
        self.refresh()
        loaded = self._journey(journey_id)
        if loaded.row.status != "running":
            raise ValidationError(
                f"journey {loaded.row.name!r} is {loaded.row.status}; start it before people can enter",
                code="journey_state",
            )
        total = Entered()
        batch: list[int] = []
        for person in persons:
            batch.append(int(person))
            if len(batch) >= ENROLL_BATCH:
                total.add(self._enroll_batch(loaded, batch, at))
                batch = []
        if batch:
            total.add(self._enroll_batch(loaded, batch, at))
        return total

    def _enroll_batch(self, loaded: _Loaded, persons: list[int], at: datetime) -> Entered:
        """One batch of entries in one transaction.

        The interpreter is pure, and a person's first step depends only on what the journey can read about them
        (:func:`userloop.engage.facts.needs_of`), their zone, and the branch each random split draws for them, so
        people with the same such *signature* take the same first step: it is computed once per signature and
        only the keys and addresses are made per person. A broadcast to 100,000 people has a handful of
        signatures."""
        journey, jid = loaded.journey, loaded.row.id
        result = Entered()
        persons = list(dict.fromkeys(persons))
        facts = self.facts.load(persons, self._props(journey), journey, at)
        signature = _signature_of(journey, self._seed(jid))
        unless = journey.entry.unless if isinstance(journey.entry, EventEntry) else None
        steps: dict[tuple[Any, ...], _Group] = {}
        with self.meta.engine.begin() as conn:
            history = self._history(conn, jid, persons)
            runs: list[dict[str, Any]] = []
            effects: list[dict[str, Any]] = []
            counts: Counter[tuple[str, str]] = Counter()
            stamp = _stamper(self._postgres)
            plain = not journey.who.all and journey.ends_at is None
            for person in persons:
                f = facts[person]
                past = history.get(person)
                if past is not None or not plain:
                    why = self._refusal(journey, past, f, at)
                    if why is not None:
                        result.refused[why] += 1
                        continue
                occurrence = past[0] + 1 if past is not None else 1
                if unless is not None:
                    deadline = at + timedelta(seconds=unless.within_seconds)
                    door = self._door_row(jid, loaded.version, person, occurrence, at, deadline, unless.event)
                    runs.append({k: stamp(v) for k, v in door.items()})
                    counts[("$entry", "held_at_door")] += 1
                    continue
                sig = signature(f, person)
                group = steps.get(sig)
                if group is None:
                    outcome = interp.enter(journey, self._seed(jid), f, at)
                    run = {
                        k: stamp(v) for k, v in self._run_row(jid, loaded.version, 0, 0, at, outcome, journey).items()
                    }
                    group = steps[sig] = _Group(outcome, run, self._effect_templates(loaded, outcome, stamp))
                group.n += 1
                runs.append({**group.run, "person": person, "occurrence": occurrence})
                for template, send in group.effects:
                    row = {**template, "person": person, "occurrence": occurrence}
                    if send is not None:
                        payload = {**row["payload"], **self._send_payload(send, f)}
                        row["payload"] = orjson.dumps(payload, default=str).decode()
                    else:
                        row["payload"] = orjson.dumps(row["payload"], default=str).decode()
                    effects.append(row)
                result.entered += 1
            for group in steps.values():
                for step, n in Counter(t for t in group.outcome.trail if t[1] != "waiting").items():
                    counts[step] += n * group.n
            self._write(conn, loaded, runs=runs, effects=effects, counts=counts, stamped=True)
        return result

    def _refusal(
        self, journey: Journey, past: tuple[int, datetime, bool] | None, facts: interp.Facts, at: datetime
    ) -> str | None:
        """Why ``facts.person`` may not enter now (None: they may): the "who" filter, the journey's end, re-entry."""
        if journey.ends_at is not None and at.date() > journey.ends_at:
            return "journey_ended"
        if not interp.holds(journey.who, facts):
            return "not_eligible"
        if past is None:
            return None
        entries, last_entry, inside = past
        rule = journey.reentry
        if rule.max_entries is not None and entries >= rule.max_entries:
            return "max_entries"
        if rule.mode == "never":
            return "already_entered"
        if inside:
            return "still_inside"
        if rule.mode == "cooldown" and at < last_entry + timedelta(seconds=rule.cooldown_seconds):
            return "cooling_down"
        return None

    def _history(self, conn: Connection, journey_id: int, persons: list[int]) -> dict[int, tuple[int, datetime, bool]]:
        """Per person already in the journey: entries so far, the last entry's time, whether a run is unfinished."""
        out: dict[int, tuple[int, datetime, bool]] = {}
        for chunk in _chunks(persons, 5000):
            rows = conn.execute(
                select(
                    RunRow.person,
                    func.max(RunRow.occurrence),
                    func.max(RunRow.entered_at),
                    func.sum(case((RunRow.status != "exited", 1), else_=0)),
                )
                .where(RunRow.journey_id == journey_id, RunRow.person.in_(chunk))
                .group_by(RunRow.person)
            )
            for person, occurrence, last, open_runs in rows:
                out[int(person)] = (int(occurrence), last, bool(open_runs))
        return out

    def exit_people(self, journey_id: int, persons: Sequence[int], at: datetime, reason: str) -> int:
        """Take ``persons`` out of the journey (a segment they left, an operator's removal): their unfinished runs
        end with ``reason``; nothing they were owed is sent."""
        if not persons:
            return 0
        loaded = self._journey(journey_id)
        n = 0
        with self.meta.engine.begin() as conn:
            for chunk in _chunks(list(persons), 5000):
                rows = conn.execute(
                    select(RunRow.id, RunRow.node).where(
                        RunRow.journey_id == journey_id, RunRow.person.in_(chunk), RunRow.status != "exited"
                    )
                ).all()
                counts = Counter((node, "exited") for _, node in rows)
                self._write(conn, loaded, counts=counts, changes=[_exit(run_id, at, reason) for run_id, _ in rows])
                n += len(rows)
        return n

    # resuming ----------------------------------------------------------------------------------------------
    def tick(self, now: datetime, limit: int = BATCH) -> int:
        """Resume up to ``limit`` runs whose timer is due at ``now``; returns how many were handled."""
        self.refresh()
        with self.meta.engine.begin() as conn:
            stmt = (
                select(_RUNS)
                .where(*_OPEN, RunRow.wake_at <= now)
                .where(RunRow.journey_id.in_(self._live_journeys()))
                .order_by(RunRow.wake_at)
                .limit(limit)
            )
            if self._postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = conn.execute(stmt).mappings().all()
            if not rows:
                return 0
            self._resume_rows(conn, rows, now, None)
        return len(rows)

    def on_events(self, events: Sequence[tuple[int, interp.Happened]], now: datetime) -> Entered:
        """People's new events, in time order, in one pass and one transaction: each event moves on the runs
        waiting for it, closes the doors it is the "unless" of, and takes its person into the event-entry journeys
        it triggers — in that order and event by event, so a run that an event creates sees the person's next
        event of the same batch (an order paid half a second after the cart). Goals convert afterwards."""
        if not events:
            return Entered()
        self.refresh()
        events = sorted(events, key=lambda pe: pe[1].at)
        by_name: dict[str, list[tuple[int, interp.Happened]]] = {}
        for person, ev in events:
            by_name.setdefault(ev.event, []).append((person, ev))
        persons = sorted({p for p, _ in events})
        entries = self._event_journeys(sorted(by_name))
        entered = Entered()
        with self.meta.engine.begin() as conn:
            open_runs: dict[int, list[dict[str, Any]]] = {}
            live = self._live_journeys()
            for chunk in _chunks(persons, 5000):
                stmt = select(_RUNS).where(RunRow.person.in_(chunk), *_OPEN, RunRow.journey_id.in_(live))
                if self._postgres:
                    stmt = stmt.with_for_update()
                for r in conn.execute(stmt).mappings():
                    open_runs.setdefault(int(r["person"]), []).append(dict(r))
            histories = {loaded.row.id: self._history(conn, loaded.row.id, persons) for loaded in entries}
            batch = _EventBatch(self, persons, now)
            for person, ev in events:
                for run in open_runs.get(person, []):
                    batch.handle(run, ev)
                for loaded in entries:
                    entry = loaded.journey.entry
                    assert isinstance(entry, EventEntry)
                    started = loaded.row.started_at
                    # an event from before the journey started (an import of history, a late upload) enters nobody
                    if entry.event != ev.event or (started is not None and ev.at < started):
                        continue
                    if not interp.matches(ev, entry.event, entry.filters):
                        continue
                    made = batch.enter(loaded, person, ev.at, histories[loaded.row.id], entered)
                    if made is not None:
                        open_runs.setdefault(person, []).append(made)
            batch.write(conn)
        self._goals(by_name)
        return entered

    def _goals(self, by_name: Mapping[str, list[tuple[int, interp.Happened]]]) -> None:
        """Mark conversions: a goal event within the window after an entry converts that run, whether the person
        is still inside or left already (Braze counts conversions after exit too); a journey whose goal has
        ``exit`` takes the converted people out. A control-branch run converts and stays held."""
        with self.meta.session() as s:
            rows = s.scalars(
                select(JourneyRow).where(JourneyRow.project_id == self.project.id, JourneyRow.status == "running")
            ).all()
        for row in rows:
            journey = self.definition(row.id, row.version)
            goal = journey.goal
            if goal is None or goal.event not in by_name:
                continue
            window = timedelta(seconds=goal.within_seconds)
            with self.meta.engine.begin() as conn:
                for person, ev in by_name[goal.event]:
                    if not interp.matches(ev, goal.event, goal.filters):
                        continue
                    open_run = and_(
                        RunRow.journey_id == row.id,
                        RunRow.person == person,
                        RunRow.converted_at.is_(None),
                        RunRow.status != "door",
                        RunRow.entered_at <= ev.at,
                        RunRow.entered_at > ev.at - window,
                    )
                    hit = conn.execute(
                        select(RunRow.id, RunRow.status, RunRow.node, RunRow.version).where(open_run)
                    ).all()
                    for run_id, status, node, version in hit:
                        change: dict[str, Any] = {"converted_at": ev.at}
                        if goal.exit and status == "waiting":
                            change = _exit(run_id, ev.at, "goal", converted=ev.at)
                            del change["id"]
                            self._add_counts(conn, row.id, version, Counter({(node, "exited"): 1}))
                        conn.execute(update(_RUNS).where(RunRow.id == run_id).values(change))
                        self._add_counts(conn, row.id, version, Counter({("$goal", "converted"): 1}))

    def _resume_rows(
        self, conn: Connection, rows: Sequence[Mapping[Any, Any]], now: datetime, event: interp.Happened | None
    ) -> None:
        by_journey: dict[tuple[int, int], list[Mapping[Any, Any]]] = {}
        for r in rows:
            by_journey.setdefault((r["journey_id"], r["version"]), []).append(r)
        for (jid, version), group in by_journey.items():
            journey = self.definition(jid, version)
            loaded = _Loaded(self._row(jid), journey, version)
            facts = self.facts.load([r["person"] for r in group], self._props(journey), journey, now)
            effects: list[dict[str, Any]] = []
            counts: Counter[tuple[str, str]] = Counter()
            changes: list[dict[str, Any]] = []
            for r in group:
                person = int(r["person"])
                pos = interp.Position(r["node"], r["since"], r["entered_at"], _path(r["path"]))
                change: dict[str, Any] | None
                status = r["status"]
                if status == "held":
                    if event is None and r["wake_at"] is not None and r["wake_at"] <= now:
                        changes.append(_exit(r["id"], r["wake_at"], "control"))
                        counts[(r["node"], "exited")] += 1
                    continue
                if status == "door":
                    change = self._door(loaded, r, pos, facts[person], now, event, effects, counts)
                    if change is not None:
                        changes.append(change)
                    continue
                if event is not None and r["wait_event"] != event.event:
                    continue
                outcome = interp.resume(journey, self._seed(jid), pos, facts[person], now, event)
                if outcome.position == pos and not outcome.effects:
                    continue  # not yet: an event that does not match, a timer read early
                _count(counts, outcome.trail)
                effects.extend(self._effects(loaded, person, r["occurrence"], outcome, facts[person]))
                changes.append(self._change(r["id"], outcome, journey))
            self._write(conn, loaded, effects=effects, counts=counts, changes=changes)

    def _door(
        self,
        loaded: _Loaded,
        r: Mapping[Any, Any],
        pos: interp.Position,
        facts: interp.Facts,
        now: datetime,
        event: interp.Happened | None,
        effects: list[dict[str, Any]],
        counts: Counter[tuple[str, str]],
    ) -> dict[str, Any] | None:
        """A person held at the door of an "A and not B within a window" entry: B closes it, the window's end
        lets them in."""
        entry = loaded.journey.entry
        assert isinstance(entry, EventEntry) and entry.unless is not None
        deadline = r["wake_at"]
        if event is not None:
            if pos.since <= event.at < deadline and interp.matches(event, entry.unless.event, entry.unless.filters):
                counts[("$entry", "refused_unless")] += 1
                return _exit(r["id"], event.at, "entry_condition")
            return None
        if now < deadline:
            return None
        outcome = interp.enter(loaded.journey, self._seed(loaded.row.id), facts, deadline)
        _count(counts, outcome.trail)
        counts[("$entry", "entered")] += 1
        effects.extend(self._effects(loaded, int(r["person"]), r["occurrence"], outcome, facts))
        change = self._change(r["id"], outcome, loaded.journey)
        change["entered_at"] = deadline
        return change

    # writing -----------------------------------------------------------------------------------------------
    def _run_row(
        self, jid: int, version: int, person: int, occurrence: int, at: datetime, o: interp.Outcome, j: Journey
    ) -> dict[str, Any]:
        row = {
            "journey_id": jid,
            "version": version,
            "person": person,
            "occurrence": occurrence,
            "entered_at": at,
            "converted_at": None,
            "claimed_by": None,
            "claimed_until": None,
        }
        row.update(_state(o, j))
        return row

    def _door_row(
        self, jid: int, version: int, person: int, occurrence: int, at: datetime, deadline: datetime, event: str
    ) -> dict[str, Any]:
        return {
            "journey_id": jid,
            "version": version,
            "person": person,
            "occurrence": occurrence,
            "node": "$door",
            "since": at,
            "entered_at": at,
            "path": "",
            "status": "door",
            "wake_at": deadline,
            "wait_event": event,
            "exited_at": None,
            "exit_reason": None,
            "converted_at": None,
            "claimed_by": None,
            "claimed_until": None,
        }

    def _change(self, run_id: int, o: interp.Outcome, j: Journey) -> dict[str, Any]:
        return {"id": run_id, **_state(o, j)}

    def _effect_templates(
        self, loaded: _Loaded, o: interp.Outcome, stamp: Callable[[Any], Any]
    ) -> list[tuple[dict[str, Any], Send | None]]:
        """The outbox rows of an outcome without the person: each with its payload as a dict still to complete,
        and the send node whose per-person part (addresses, profile values) is to be added."""
        path = "|".join(o.path)
        out: list[tuple[dict[str, Any], Send | None]] = []
        for e in o.effects:
            spec = e.spec
            send = spec if isinstance(spec, Send) else None
            out.append(
                (
                    {
                        "project_id": self.project.id,
                        "journey_id": loaded.row.id,
                        "version": loaded.version,
                        "node": e.node,
                        "path": path,
                        "kind": e.kind,
                        "channel": send.channel if send else None,
                        "category": send.category if send else "transactional",
                        "payload": {"journey": loaded.journey.name},
                        "status": "pending",
                        "due_at": stamp(e.at),
                        "attempts": 0,
                        "reported": False,
                    },
                    send,
                )
            )
        return out

    def _effects(
        self, loaded: _Loaded, person: int, occurrence: int, o: interp.Outcome, facts: interp.Facts
    ) -> list[dict[str, Any]]:
        out = []
        path = "|".join(o.path)
        for e in o.effects:
            spec = e.spec
            payload: dict[str, Any] = {"journey": loaded.journey.name}
            channel = None
            category = "transactional"
            if isinstance(spec, Send):
                channel = spec.channel
                category = spec.category
                payload.update(self._send_payload(spec, facts))
            out.append(
                {
                    "project_id": self.project.id,
                    "journey_id": loaded.row.id,
                    "version": loaded.version,
                    "node": e.node,
                    "person": person,
                    "occurrence": occurrence,
                    "path": path,
                    "kind": e.kind,
                    "channel": channel,
                    "category": category,
                    "payload": orjson.dumps(payload, default=str).decode(),
                    "status": "pending",
                    "due_at": e.at,
                    "attempts": 0,
                    "reported": False,
                }
            )
        return out

    def _send_payload(self, spec: Send, facts: interp.Facts) -> dict[str, Any]:
        """What delivery needs and only the owner of the profiles knows: each candidate channel's address, the
        profile values the material reads, the person's zone and locale."""
        plan = self._send_plan(spec)
        prop = facts.prop
        candidates = []
        for name, kind, address, reach, topic, static_to, why_static in plan.candidates:
            if why_static is not None:
                candidates.append({"channel": name, "to": None, "why": why_static})
                continue
            to, why = reach_of(kind, address, reach, static_to, facts.person, prop)
            candidates.append({"channel": name, "to": to, "why": why, "topic": topic})
        scope = {}
        for p in plan.scope:
            value = prop(p)
            if value is not None:
                scope[p] = value if type(value) in _PLAIN else str(value)
        locale = prop(plan.locale)
        return {
            "candidates": candidates,
            "material": spec.material,
            "benefit": spec.benefit,
            "scope": scope,
            "zone": facts.zone,
            "locale": locale if locale is None or type(locale) in _PLAIN else str(locale),
        }

    def _send_plan(self, spec: Send) -> _SendPlan:
        """The parts of a send node's payload that are the same for everyone, worked out once per batch."""
        cfg = self._cfg()
        found = cfg.plans.get(spec.id)
        if found is None:
            candidates: list[_Candidate] = []
            for name in [spec.channel, *spec.fallback]:
                ch = cfg.channels.get(name)
                if ch is None:
                    candidates.append((name, "", None, (), "", None, "unknown_channel"))
                    continue
                kind, config = ch
                address, reach = channel_plan(kind, config)
                url = config.get("url") if kind == "webhook" else None
                candidates.append((name, kind, address, reach, config.get("topic") or kind, url, None))
            found = cfg.plans[spec.id] = _SendPlan(
                tuple(candidates), tuple(sorted(cfg.material_props.get(spec.material, set()))), cfg.locale_property
            )
        return found

    def _write(
        self,
        conn: Connection,
        loaded: _Loaded,
        *,
        runs: Sequence[dict[str, Any]] = (),
        effects: Sequence[dict[str, Any]] = (),
        counts: Counter[tuple[str, str]] | None = None,
        changes: Sequence[dict[str, Any]] = (),
        stamped: bool = False,
    ) -> None:
        if runs:
            self._bulk(conn, _RUNS, runs, ignore=None, stamped=stamped)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for ch in changes:
            groups.setdefault(tuple(sorted(ch)), []).append({f"v_{k}": v for k, v in ch.items()})
        for keys, rows in groups.items():
            values: dict[str, Any] = {k: bindparam(f"v_{k}") for k in keys if k != "id"}
            conn.execute(update(_RUNS).where(_RUNS.c.id == bindparam("v_id")).values(values), rows)
        if effects:
            pk = ["journey_id", "version", "node", "person", "occurrence"]
            self._bulk(conn, _OUTBOX, effects, ignore=pk, stamped=stamped)
        if counts:
            self._add_counts(conn, loaded.row.id, loaded.version, counts)

    def _add_counts(self, conn: Connection, journey_id: int, version: int, counts: Counter[tuple[str, str]]) -> None:
        rows = [
            {"journey_id": journey_id, "version": version, "node": n, "outcome": o, "count": c}
            for (n, o), c in counts.items()
        ]
        conn.execute(self._upsert_add(), rows)

    def _bulk(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        ignore: list[str] | None,
        *,
        stamped: bool = False,
    ) -> None:
        """Insert many rows through the driver's ``executemany`` with a statement compiled once (SQLAlchemy's
        per-row parameter processing cost more than the insert itself); ``ignore``: skip rows whose key exists."""
        columns = list(rows[0])
        key = (table.name, tuple(columns), tuple(ignore or ()), conn.dialect.name)
        compiled = _COMPILED.get(key)
        if compiled is None:
            dialect = postgresql if self._postgres else sqlite
            stmt = dialect.insert(table).values({c: bindparam(c) for c in columns})
            if ignore:
                stmt = stmt.on_conflict_do_nothing(index_elements=ignore)
            c = stmt.compile(dialect=conn.dialect)
            order = list(c.positiontup or ()) if c.positional else []
            compiled = _COMPILED[key] = (c.string, order or list(c.params))
        text, names = compiled
        order = names if conn.dialect.paramstyle == "qmark" else []
        defaults = {c: _default(table, c) for c in names if c not in rows[0]}
        if defaults:  # Python-side defaults (created_at …) that the compiled statement expects as parameters
            rows = [{**r, **defaults} for r in rows]
        if order:  # SQLite's qmark style: tuples, datetimes as SQLAlchemy stores them
            get = itemgetter(*order)
            # ``stamped``: the rows' times are SQLite text already (made once per batch by :func:`_stamper`)
            stamps = [] if stamped else [i for i, c in enumerate(order) if isinstance(table.c[c].type, DateTime)]
            params: list[Any] = [get(r) for r in rows]
            if stamps:
                text_of: dict[datetime, str] = {}
                for n, row in enumerate(params):
                    values = list(row)
                    for i in stamps:
                        v = values[i]
                        if v is not None:
                            t = text_of.get(v)
                            if t is None:
                                t = text_of[v] = v.strftime("%Y-%m-%d %H:%M:%S.%f")
                            values[i] = t
                    params[n] = tuple(values)
        else:
            params = list(rows)
        conn.exec_driver_sql(text, params)

    def _upsert_add(self) -> Any:
        dialect = postgresql if self._postgres else sqlite
        stmt = dialect.insert(_COUNTS)
        return stmt.on_conflict_do_update(
            index_elements=["journey_id", "version", "node", "outcome"],
            set_={"count": _COUNTS.c.count + stmt.excluded.count},
        )

    # lookups -----------------------------------------------------------------------------------------------
    def _row(self, journey_id: int) -> JourneyRow:
        with self.meta.session() as s:
            row = s.get(JourneyRow, journey_id)
        assert row is not None
        return row

    def _live_journeys(self) -> Any:
        return select(JourneyRow.id).where(
            JourneyRow.project_id == self.project.id, JourneyRow.status.in_(("running", "paused_entries"))
        )

    def _event_journeys(self, names: list[str]) -> list[_Loaded]:
        with self.meta.session() as s:
            rows = s.scalars(
                select(JourneyRow).where(JourneyRow.project_id == self.project.id, JourneyRow.status == "running")
            ).all()
        out = []
        for row in rows:
            journey = self.definition(row.id, row.version)
            if isinstance(journey.entry, EventEntry) and journey.entry.event in names:
                out.append(_Loaded(row, journey, row.version))
        return out

    def _channels(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return self._cfg().channels

    def _material_props(self, name: str) -> set[str]:
        return self._cfg().material_props.get(name, set())

    def _locale_property(self) -> str:
        return self._cfg().locale_property

    def _props(self, journey: Journey) -> frozenset[str]:
        """The profile properties a step of ``journey`` may read: addresses, reachability, locale, materials."""
        props: set[str] = {self._locale_property()}
        channels = self._channels()
        for node in journey.nodes:
            if isinstance(node, Send):
                props |= self._material_props(node.material)
                for name in [node.channel, *node.fallback]:
                    kind, config = channels.get(name, ("", {}))
                    prop = config.get("address_property") or ADDRESS_PROPERTY.get(kind)
                    if prop:
                        props.add(prop)
                    props |= set(config.get("reach") or DEFAULT_REACH.get(kind, {}))
        return frozenset(props)

    @staticmethod
    def _seed(journey_id: int) -> str:
        return rules.journey_seed(journey_id)


#: Reachability by default (DOMAIN §6): push needs notifications enabled and the app installed.
DEFAULT_REACH: dict[str, dict[str, Any]] = {"push": {"push_enabled": True, "app_uninstalled": False}}


def channel_plan(kind: str, config: Mapping[str, Any]) -> tuple[str | None, tuple[tuple[str, Any], ...]]:
    """A channel's address property (None for the inbox and webhooks, which need none) and its reachability
    conditions (``property → wanted value``; :data:`DEFAULT_REACH` unless the channel's settings name others)."""
    address = None if kind in ("inbox", "webhook") else config.get("address_property") or ADDRESS_PROPERTY.get(kind)
    return address, tuple((config.get("reach") or DEFAULT_REACH.get(kind, {})).items())


def reach_of(
    kind: str,
    address: str | None,
    reach: Sequence[tuple[str, Any]],
    static_to: str | None,
    person: int,
    prop: Callable[[str], Any],
) -> tuple[str | None, str | None]:
    """Where a person is reached on a channel and, if not, why: the inbox by their id, a fixed address, or their
    ``address`` property (empty: ``no_address``); a reachability property set to another value than wanted
    (push disabled, app uninstalled) makes them ``unreachable:<property>``. ``prop`` reads their profile."""
    to: str | None = static_to
    if kind == "inbox":
        to = str(person)
    elif address is not None:
        value = prop(address)
        to = str(value) if value is not None and value != "" else None
    why = None if to else "no_address"
    for reach_prop, wanted in reach:
        value = prop(reach_prop)
        if value is not None and value != wanted:
            why = f"unreachable:{reach_prop}"
    return to, why


def _signature_of(journey: Journey, seed: str) -> Callable[[interp.Facts, int], tuple[Any, ...]]:
    """A function giving the part of a person that decides their first step through ``journey`` (see
    :meth:`Stepper._enroll_batch`): the values read by the conditions the first step can reach, the zones when a
    wall-clock wait is reachable, and the draws of the reachable random splits."""
    from userloop.engage.facts import needs_of

    reach = _first_step(journey)
    part = journey.model_copy(update={"nodes": [n for n in journey.nodes if n.id in reach]})
    needs = needs_of(part)
    props, tags = sorted(needs.props), sorted(needs.tags)
    segs, models, members = sorted(needs.segments), sorted(needs.models), sorted(needs.members)
    nodes = journey.by_id()
    splits = [
        (rules.split_seed(seed, n.id), [b.percent for b in n.branches])
        for i in sorted(reach)
        if isinstance(n := nodes[i], RandomSplit)
    ]
    zoned = any(isinstance(nodes[i], Wait) and nodes[i].seconds is None for i in reach)  # type: ignore[union-attr]

    def signature(f: interp.Facts, person: int) -> tuple[Any, ...]:
        return (
            (f.zone, f.project_zone) if zoned else (),
            *(_hashable(f.prop(p)) for p in props),
            *(_hashable(f.tag(t)) for t in tags),
            *(f.in_segment(s) for s in segs),
            *(_hashable(f.model(m)) for m in models),
            *(_hashable(f.member(*m)) for m in members),
            *(interp.pick(s, person, percents) for s, percents in splits),
        )

    return signature


def _first_step(journey: Journey) -> set[str]:
    """The nodes an entry can pass before it must wait: everything reachable from the start without crossing a
    ``wait_event`` or a fixed wait (a wall-clock or date wait may be over already, so what follows it counts)."""
    nodes = journey.by_id()
    seen: set[str] = set()
    todo = [journey.start]
    while todo:
        node = nodes[todo.pop()]
        if node.id in seen:
            continue
        seen.add(node.id)
        if isinstance(node, WaitEvent) or (isinstance(node, Wait) and node.seconds):
            continue
        todo.extend(t for _, t in successors(node) if t is not None)
    return seen


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


#: Compiled bulk inserts by (table, columns, conflict keys, dialect).
_COMPILED: dict[tuple[Any, ...], tuple[str, list[str]]] = {}


def _default(table: Table, column: str) -> Any:
    """A column's Python-side default (evaluated once for a whole bulk insert)."""
    default = table.c[column].default
    arg = getattr(default, "arg", None)
    return arg(None) if callable(arg) else arg


def _count(counts: Counter[tuple[str, str]], trail: Iterable[tuple[str, str]]) -> None:
    """Add a step's trail to the node counters; waiting is a state (read from the runs), not a counter."""
    counts.update(t for t in trail if t[1] != "waiting")


def _public_config(text: str) -> dict[str, Any]:
    doc = json.loads(text or "{}")
    return {k: v for k, v in doc.items() if k in ("address_property", "reach", "url", "topic")}


def _state(o: interp.Outcome, j: Journey) -> dict[str, Any]:
    """A run's stored state after an outcome."""
    if o.position is None:
        return {
            "node": "$exit",
            "since": o.at,
            "path": "|".join(o.path),
            "status": "exited",
            "wake_at": None,
            "wait_event": None,
            "exited_at": o.at,
            "exit_reason": o.exit_reason,
        }
    pos = o.position
    state: dict[str, Any] = {
        "node": pos.node,
        "since": pos.since,
        "path": "|".join(pos.path),
        "exited_at": None,
        "exit_reason": None,
    }
    if o.held:
        end = pos.entered_at + timedelta(seconds=j.goal.within_seconds) if j.goal is not None else pos.since
        state.update(status="held", wake_at=end, wait_event=j.goal.event if j.goal is not None else None)
    else:
        state.update(status="waiting", wake_at=o.wake_at, wait_event=o.waits_for.event if o.waits_for else None)
    return state


def _exit(run_id: int, at: datetime, reason: str, *, converted: datetime | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {
        "id": run_id,
        "node": "$exit",
        "status": "exited",
        "wake_at": None,
        "wait_event": None,
        "exited_at": at,
        "exit_reason": reason,
    }
    if converted is not None:
        change["converted_at"] = converted
    return change


def _path(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split("|") if p)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _chunks(items: Sequence[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])
