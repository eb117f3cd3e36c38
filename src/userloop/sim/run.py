"""Run the simulator into a workspace: every table goes through the ingest layer, like real data."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pyarrow as pa

from userloop.core.clock import today_in
from userloop.ingest import LoadResult, TimePolicy, load_table
from userloop.store import Workspace

if TYPE_CHECKING:
    from userloop.sim.config import MembershipConfig

#: Records per load: large enough that the loader's fixed cost per call is small, small enough for memory.
LOAD_BATCH_ROWS = 2_000_000


@dataclass
class SimulationReport:
    users: int
    days: int
    seed: int
    end_date: date
    ground_truth: str
    result: LoadResult = field(default_factory=LoadResult)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.result.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        load = self.result.as_dict()
        load.pop("source", None)
        return {
            "users": self.users,
            "days": self.days,
            "seed": self.seed,
            "end_date": self.end_date.isoformat(),
            "ground_truth": self.ground_truth,
            **load,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
        }

    def lines(self) -> list[str]:
        r = self.result
        return [
            f"Simulated {self.users:,} people over {self.days} days ending {self.end_date} (seed {self.seed})",
            f"  events       {r.events:>12,}   ({self.events_per_second:,.0f} events/s end to end)",
            f"  records      {r.accepted:>12,} accepted, {r.rejected:,} rejected, {r.duplicates:,} duplicates",
            f"  ground truth {self.ground_truth}",
        ]


def run_simulation(
    ws: Workspace,
    project: str,
    *,
    users: int,
    days: int,
    seed: int,
    end_date: date | None = None,
    progress: Callable[[int], None] | None = None,
    membership: MembershipConfig | None = None,
) -> SimulationReport:
    """Simulate ``users`` people over ``days`` days ending ``end_date`` (default: yesterday, project time).

    ``progress`` is called with the number of simulated days each load completes (they add up to ``days``).
    ``membership`` adds a membership programme with a known effect (:mod:`userloop.sim.membership`)."""
    from userloop.sim import PASSIVE_EVENTS, SimConfig, simulate, write_ground_truth
    from userloop.sim.membership import MEMBER_PASSIVE_EVENTS

    info = ws.project_info(project)
    end = end_date or today_in(info.timezone) - timedelta(days=1)
    config = SimConfig(users=users, days=days, seed=seed, end_date=end, timezone=info.timezone, membership=membership)
    store = ws.project(project)
    truth = ws.path / "sim" / f"{project}-ground-truth.parquet"
    truth.parent.mkdir(parents=True, exist_ok=True)
    write_ground_truth(config, Path(truth))
    report = SimulationReport(users=users, days=days, seed=seed, end_date=end, ground_truth=str(truth))
    policy = TimePolicy(max_future_seconds=info.max_future_seconds, max_past_days=max(info.max_past_days, days + 30))
    started = time.perf_counter()
    first_day = end - timedelta(days=days - 1)
    days_done = 0
    for batch in _batches(simulate(config, workers=1), LOAD_BATCH_ROWS):
        result = load_table(store, batch, source="sim", policy=policy)
        report.result.add(result)
        if progress:
            reached = max(days_done, _days_reached(batch, first_day, days, info.timezone))
            progress(reached - days_done)
            days_done = reached
    if progress and days_done < days:
        progress(days - days_done)
    passive = PASSIVE_EVENTS + (MEMBER_PASSIVE_EVENTS if membership is not None else ())
    for event in passive:  # the simulated platform's sends: passive, whatever the project's defaults
        store.set_event_active(event, False)
    report.seconds = time.perf_counter() - started
    return report


def _days_reached(batch: pa.Table, first_day: date, days: int, timezone: str) -> int:
    """How many of the simulated days (project-local) a loaded batch reaches (by its latest record; chunks come in
    day order)."""
    import pyarrow.compute as pc

    latest = pc.max(batch.column("time")).as_py()
    if latest is None:
        return 0
    day = datetime.fromtimestamp(latest / 1000, tz=UTC).astimezone(ZoneInfo(timezone)).date()
    return max(0, min(days, (day - first_day).days + 1))


def _batches(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Consecutive tables joined into batches of about ``rows`` records, in order.

    The loader's cost per call is mostly fixed, so fewer, larger batches load faster; record order is kept,
    so identity records still come before the events that need them.
    """
    pending: list[pa.Table] = []
    size = 0
    for table in tables:
        pending.append(table)
        size += table.num_rows
        if size >= rows:
            yield pa.concat_tables(pending, promote_options="permissive")
            pending, size = [], 0
    if pending:
        yield pa.concat_tables(pending, promote_options="permissive")
