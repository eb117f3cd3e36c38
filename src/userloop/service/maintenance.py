"""Background maintenance of the event stores: the nightly job and the outbox sent at service start.

The nightly job (:func:`maintenance`, one slot a day in the project's zone) does, per project:

1. clusters the events by person and time (:meth:`~userloop.store.duck.ProjectStore.cluster_events`) when enough
   rows were appended since the last clustering: at least :data:`CLUSTER_SHARE` of the table, or
   :data:`CLUSTER_ROWS` rows, whichever is fewer. Rows appended after a clustering sit in append (time) order after
   the clustered rows, and a per-person pass reads that tail scattered: its cost grows with the tail's share of the
   table (under 10% of the rows out of place keeps most of the gain bench/analytics measures) and with its size
   (1M rows, about eight DuckDB row groups, bounds the tail of a large table: 10% of 100M would be 10M). The row
   count at the last clustering is the project's counter :data:`CLUSTERED`. Clustering holds the writer for the
   rewrite: the collector's loads wait (the spool keeps accepting events meanwhile). bench/maintenance.py, the
   analytics dataset (two property columns), 2 shared cores: 0.85 s at 1M rows (1.6× a plain copy of the table),
   4.3 s at 5M; a load started during it committed 0.7 s later at 1M rows (0.06 s alone);
2. when the workspace keeps events in ClickHouse too (``[storage] events_url``), sends the outbox's waiting
   batches and folds the person overrides into the events (:mod:`userloop.store.clickhouse_writes`): otherwise
   only a load sends the outbox, and only a shipment with :data:`~userloop.store.clickhouse_writes.SQUASH_AFTER`
   overrides waiting squashes.

A ClickHouse failure fails the run (recorded in the job history and retried by the scheduler); the clustering done
before it is not repeated, its counter being written in the same run.

Not done: rows deleted since the last clustering (an erasure) are not counted as changes, so deleting and
appending as many rows does not trigger a clustering.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from userloop.service.scheduler import Job
from userloop.store.clickhouse_writes import writes_of
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import sql
from userloop.store.workspace import Workspace

log = logging.getLogger(__name__)

#: Cluster when the rows appended since the last clustering reach this share of the table …
CLUSTER_SHARE = 0.10
#: … or this many rows, whichever is fewer.
CLUSTER_ROWS = 1_000_000
#: The project's counter holding the events' row count at the last clustering.
CLUSTERED = "clustered_rows"


def clustered_rows(store: ProjectStore) -> int:
    """The events' row count at the last clustering (0: never clustered)."""
    value = store.scalar(sql("SELECT value FROM $c WHERE name = ?", c=store.ref("counters")), [CLUSTERED])
    return int(value or 0)


def cluster_if_due(store: ProjectStore, *, share: float = CLUSTER_SHARE, rows: int = CLUSTER_ROWS) -> dict[str, Any]:
    """Cluster the project's events when the rows appended since the last clustering reach ``share`` of the table
    or ``rows``; returns what was found and done."""
    total = int(store.scalar(sql("SELECT count(*) FROM $e", e=store.ref("events"))) or 0)
    appended = max(0, total - clustered_rows(store))
    due = appended > 0 and appended >= min(rows, share * total)
    done: dict[str, Any] = {"events": total, "appended": appended, "clustered": due}
    if due:
        total = store.cluster_events()
        counters = store.ref("counters")
        with store.atomic() as s:
            s.execute(sql("DELETE FROM $c WHERE name = ?", c=counters), [CLUSTERED])
            s.execute(sql("INSERT INTO $c VALUES (?, ?)", c=counters), [CLUSTERED, total])
        done["events"] = total
    return done


def send_to_clickhouse(store: ProjectStore, *, squash: bool = True) -> dict[str, Any] | None:
    """Send the project's waiting outbox to ClickHouse and, with ``squash``, fold the waiting person overrides;
    None when the workspace keeps its events in DuckDB alone."""
    writes = writes_of(store)
    if writes is None:
        return None
    waiting = writes.pending()
    sent = writes.ship() if waiting else 0
    folded = writes.squash() if squash and writes.pending_overrides() else 0
    return {"batches": waiting, "events": sent, "persons_squashed": folded}


def maintenance(ws: Workspace, *, at: str = "03:00", share: float = CLUSTER_SHARE, rows: int = CLUSTER_ROWS) -> Job:
    """Daily, before the models: cluster the project's events when enough were appended since the last clustering;
    with ``[storage] events_url``, send the waiting outbox to ClickHouse and squash the person overrides."""

    def run(project: str) -> dict[str, Any]:
        store = ws.project(project)
        result = cluster_if_due(store, share=share, rows=rows)
        clickhouse = send_to_clickhouse(store)
        if clickhouse is not None:
            result["clickhouse"] = clickhouse
        return result

    # a new workspace's first slot is skipped: a large import served at once does not start with a rewrite
    return Job("maintenance", run, kind="daily", at=at, run_first_slot=False)


def ship_waiting(ws: Workspace) -> dict[str, int]:
    """Send every project's waiting outbox to ClickHouse (no squash): what a load would have sent, had one come.
    A project's failure is logged and the others still go; returns the events sent per project."""
    sent: dict[str, int] = {}
    for project in ws.meta.projects():
        try:
            done = send_to_clickhouse(ws.project(project.name), squash=False)
        except Exception:
            log.exception(
                "sending %s's waiting outbox to ClickHouse failed; the next load or night retries", project.name
            )
            continue
        if done is not None:
            sent[project.name] = done["events"]
    return sent


def start_shipping(ws: Workspace) -> threading.Thread | None:
    """At service start, when events live in ClickHouse too: :func:`ship_waiting` on a background thread (the
    start does not wait for it; join it before closing the workspace). None when there is nothing to send to."""
    if ws.config.events_url is None:
        return None
    thread = threading.Thread(target=ship_waiting, args=(ws,), name="userloop-outbox", daemon=True)
    thread.start()
    return thread
