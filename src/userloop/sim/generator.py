"""The simulator's entry point: chunks of days in, canonical record tables out.

For each chunk of ``chunk_days`` local days the latent process advances day by day (cheap, person-level
vectors), the day's sessions are drawn, and the chunk's sessions are expanded into events in one go. The
tables of a chunk come out in the order the loader needs: profile records and identity bindings first, then
the events. Item records come once, before everything.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from userloop.sim.behaviour import Sessions, Visits
from userloop.sim.config import SimConfig
from userloop.sim.layout import lay_out
from userloop.sim.membership import MemberDay, member_table
from userloop.sim.profiles import ProfileChanges, item_tables, profile_tables
from userloop.sim.records import Vocabularies, event_table, signup_table
from userloop.sim.timeline import DayPlan, Timeline
from userloop.sim.world import World, stream

#: Largest events table handed to the loader.
MAX_EVENT_ROWS = 2_000_000


@dataclass(frozen=True)
class _Chunk:
    """Everything the expansion of one chunk needs; nothing in it changes after the latent process moves on."""

    index: int
    sessions: Sessions
    changes: ProfileChanges
    logins: tuple[np.ndarray, np.ndarray]
    signup_ms: np.ndarray
    members: MemberDay | None = None


def simulate(config: SimConfig, *, workers: int = 1) -> Iterator[pa.Table]:
    """Generate the business of ``config`` as canonical record tables.

    Parameters
    ----------
    config
        What to simulate; ``end_date`` must be set.
    workers
        ``1`` (the default) makes the tables in one background thread, ahead of the caller: while the caller
        loads a table (DuckDB releases the GIL), the next ones are being made. More workers expand several
        chunks at once (worth it only with cores to spare); ``0`` does everything in the caller's thread. The
        output does not depend on it.

    Yields
    ------
    pyarrow.Table
        Item records first, then for each chunk of days: ``profile_set``, ``profile_set_once``,
        ``profile_increment``, ``profile_append``, ``track_signup`` and ``track`` tables (each homogeneous in
        record type; empty ones are skipped; events split into tables of at most two million rows). With a
        membership programme (``config.membership``) its events come at the end of each chunk's ``track``
        table, which then has the columns ``programme`` and ``level`` too. The same configuration always yields
        equal tables.

    Examples
    --------
    >>> from datetime import date
    >>> tables = list(simulate(SimConfig(users=200, days=14, end_date=date(2024, 6, 30))))
    >>> tables[0].column("type")[0].as_py()
    'item_set'
    """
    world = World.build(config)
    vocab = Vocabularies.of(world)
    yield from item_tables(world)
    if workers <= 0:
        for chunk in _chunks(world):
            yield from _chunk_tables(world, vocab, chunk)
    else:
        yield from _ahead(world, vocab, workers)


_DONE = object()


def _ahead(world: World, vocab: Vocabularies, workers: int) -> Iterator[pa.Table]:
    """Make the tables in the background and yield them in order.

    One background thread runs the latent process; with ``workers == 1`` it also expands each chunk itself
    (no hand-offs between Python threads, which only contend for the GIL), with more workers the expansion
    goes to a pool. At most ``workers + 1`` chunks wait for the caller, which bounds memory. Closing the
    generator early stops the background work; an error in it is raised here.
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="userloop-sim") if workers > 1 else None
    ready: queue.Queue[object] = queue.Queue(maxsize=workers + 1)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in _chunks(world):
                job = pool.submit(_chunk_tables, world, vocab, chunk) if pool else _chunk_tables(world, vocab, chunk)
                if not offer(job):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            offer(exc)

    producer = threading.Thread(target=produce, name="userloop-sim", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            tables = item.result() if isinstance(item, Future) else item
            assert isinstance(tables, list)
            yield from tables
    finally:
        stop.set()
        producer.join()
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


def _chunks(world: World) -> Iterator[_Chunk]:
    """The latent process and the visits, chunk by chunk (sequential: each day depends on the one before)."""
    timeline = Timeline(world)
    visits = Visits(world, timeline)
    days, step = world.calendar.days, world.config.chunk_days
    for index, first in enumerate(range(0, days, step)):
        plans = [timeline.advance() for _ in range(first, min(first + step, days))]
        yield _chunk(world, timeline, visits, index, plans)


def _chunk(world: World, timeline: Timeline, visits: Visits, index: int, plans: list[DayPlan]) -> _Chunk:
    """One chunk of days from the latent process's plans of those days."""
    # Sessions in time order (kind breaks ties), so the events come out roughly sorted by time. No session
    # crosses midnight, so sorting day by day (small sorts) sorts the chunk.
    sessions = Sessions.concat([_by_time(visits.day(plan)) for plan in plans])
    first_new = int(np.searchsorted(world.people.install_day, plans[0].day, side="left"))
    changes = ProfileChanges(
        install_person=np.arange(first_new, plans[-1].installed, dtype=np.int32),
        reg_person=np.concatenate([p.reg_person for p in plans]),
        reg_ms=np.concatenate([p.reg_ms for p in plans]),
        gone_person=np.concatenate([p.gone_person for p in plans]),
        gone_ms=np.concatenate([p.gone_ms for p in plans]),
    )
    logins = (np.concatenate([p.login_person for p in plans]), np.concatenate([p.login_ms for p in plans]))
    member_days = [p.members for p in plans if p.members is not None]
    members = MemberDay.concat(member_days) if member_days else None
    return _Chunk(index, sessions, changes, logins, timeline.signup_ms.copy(), members)


def simulate_days(world: World, timeline: Timeline) -> Iterator[tuple[DayPlan, list[pa.Table]]]:
    """The business of ``world`` one local day at a time, on a ``timeline`` the caller holds: each day's latent
    plan and its record tables, item records before the first day's. Between two days the caller may act on the
    timeline (:meth:`~userloop.sim.timeline.Timeline.treat`, the rehearsal's sends). Without such acts the tables
    are those of :func:`simulate` with ``chunk_days=1``, in the same order."""
    vocab = Vocabularies.of(world)
    visits = Visits(world, timeline)
    items = list(item_tables(world))
    for day in range(world.calendar.days):
        plan = timeline.advance()
        tables = _chunk_tables(world, vocab, _chunk(world, timeline, visits, day, [plan]))
        yield plan, (items + tables if day == 0 else tables)


def _by_time(sessions: Sessions) -> Sessions:
    """One day's sessions in time order. Keys are made unique (time, then position), so any sort algorithm,
    including the vectorised ones numpy picks per CPU, gives the same order on every machine."""
    if not len(sessions):
        return sessions
    if len(sessions) >= 1 << 24:
        return sessions.take(np.argsort(sessions.start_ms, kind="stable"))
    since = sessions.start_ms - sessions.start_ms.min()  # well under 2**39 ms within a day's sessions
    key = (since << 24) | np.arange(len(sessions), dtype=np.int64)
    return sessions.take(np.argsort(key))


def _chunk_tables(world: World, vocab: Vocabularies, chunk: _Chunk) -> list[pa.Table]:
    frame = lay_out(world, chunk.sessions, stream(world.config.seed, "layout", chunk.index))
    changes, signup_ms = chunk.changes, chunk.signup_ms
    tables = profile_tables(world, vocab, changes, frame, signup_ms)
    person = np.concatenate([changes.reg_person, chunk.logins[0]])
    device = np.repeat(np.array([0, 1], dtype=np.int8), [len(changes.reg_person), len(chunk.logins[0])])
    time_ms = np.concatenate([changes.reg_ms, chunk.logins[1]])
    if len(person):
        order = np.argsort(time_ms, kind="stable")
        tables.append(signup_table(world, vocab, person[order], device[order], time_ms[order], chunk.index))
    events = event_table(world, vocab, frame, signup_ms, chunk.index)
    if chunk.members is not None:
        # The membership programme's events follow the chunk's other events, in one table; every chunk's table has
        # the programme's columns, even a chunk without its events.
        extra = member_table(world, chunk.members, chunk.index)
        events = pa.concat_tables([events, extra], promote_options="permissive").unify_dictionaries().combine_chunks()
    tables += [events.slice(start, MAX_EVENT_ROWS) for start in range(0, events.num_rows, MAX_EVENT_ROWS)]
    return tables


def estimate_event_count(config: SimConfig) -> int:
    """A cheap estimate of the events (``track`` and ``track_signup`` records) :func:`simulate` yields.

    Events per person and day fall with the window's length (people arrive through the window, and more of
    them have dropped out by its end); the curve below was fitted on the default business knobs for windows
    of 7 to 730 days and is within about 5% there. Meant for progress bars.

    Examples
    --------
    >>> estimate_event_count(SimConfig(users=100_000, days=180))
    25602028
    """
    per_person_day = max(0.3, 2.89 - 0.452 * math.log(config.days / 7))
    return int(config.users * config.days * per_person_day)
