"""Entry points of the ingest layer for callers that hold records in memory."""

from __future__ import annotations

import pyarrow as pa

from userloop.ingest.arrow_source import stage_arrow
from userloop.ingest.jsonl import stage_json_lines
from userloop.ingest.loader import Loader, LoadResult, TimePolicy
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import sql


def load_table(
    project: ProjectStore, table: pa.Table, *, source: str, policy: TimePolicy | None = None, now_ms: int | None = None
) -> LoadResult:
    """Load an Arrow table of canonical columns and typed property columns.

    Example::

        load_table(project, pa.table({"type": ["track"], "event": ["app_start"], "distinct_id": ["d1"],
                                      "time": [1_700_000_000_000], "event_id": ["e1"], "$os": ["iOS"]}),
                   source="example")
    """
    with project.writer() as session:
        staged = stage_arrow(session, table, source=source)
        try:
            return Loader(project, policy).load(staged, now_ms=now_ms)
        finally:
            staged.release(session)


def load_json_lines(
    project: ProjectStore,
    lines: pa.Array | list[str | None],
    *,
    source: str,
    first_line: int = 1,
    policy: TimePolicy | None = None,
    now_ms: int | None = None,
) -> LoadResult:
    """Load Sensors-format JSON records, one per string; ``first_line`` numbers them for the rejects."""
    with project.writer() as session:
        staged = stage_json_lines(session, lines, first_line, source=source)
        try:
            return Loader(project, policy).load(staged, now_ms=now_ms)
        finally:
            staged.release(session)


def distinct_ids(store: ProjectStore, persons: list[int]) -> dict[int, str]:
    """A distinct id for each person key (the first id they were seen with), for records the platform writes about
    people it knows by key (journeys' deliveries, membership facts, exposures); persons with none are left out."""
    if not persons:
        return {}
    rows = store.fetchall(
        sql("SELECT user_id, first_id FROM $u WHERE user_id IN (SELECT unnest(?)) AND first_id IS NOT NULL",
            u=store.ref("users")),
        [persons],
    )  # fmt: skip
    return {int(p): str(d) for p, d in rows}
