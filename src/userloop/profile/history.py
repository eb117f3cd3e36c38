"""Dated per-user values with history: the storage under tags and segment membership.

A *history table* holds, for one tag or one segment, every value a person has had and from when to when::

    user_id BIGINT, value <type>, valid_from DATE, valid_to DATE (NULL while current), changed_at TIMESTAMP

Runs are dated by the local day they describe (``run_date``: the data as of the end of that day). A run brings a
*snapshot* (``user_id → value`` for that day) and :func:`apply_snapshot` turns it into intervals: a person whose
value changed gets the old interval closed at ``run_date`` and a new one opened there; a person who lost the value
gets the interval closed; an unchanged person is left alone, so the table grows with changes, not with days.
The value on a date ``d`` is the row with ``valid_from <= d < valid_to`` (or ``valid_to IS NULL``), for any ``d``
since the first run (:func:`values_on`). For a segment the value is ``TRUE`` for members, so ``valid_from`` is
when a person entered and ``valid_to`` when they left (for journeys to trigger on).

History is written forward: a run for the latest date replaces that date's run (its changes are undone first);
a run for an earlier date is refused, since later intervals were built on it (:func:`reset` starts over).

Each run leaves a row in ``profile_runs`` (target, date, users with a value, changes, seconds, and a JSON of
statistics such as a tag's value distribution), which is also how coverage over time is read.

Tables are named by the caller (``tag_<name>``, ``segment_<id>``); names are checked against
:data:`TABLE_PATTERN` and quoted. Values and dates are bound parameters or sqlglot literals.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.query.compile import col, literal, sql
from userloop.store.duck import ProjectStore

TABLE_PATTERN = re.compile(r"^(tag|segment)_[a-z0-9_]{1,60}$")
RUNS_TABLE = "profile_runs"
#: The SQL types a history value may have.
VALUE_TYPES = ("VARCHAR", "DOUBLE", "BOOLEAN", "DATE")


@dataclass(frozen=True)
class RunStats:
    """What one :func:`apply_snapshot` did."""

    target: str
    run_date: date
    users: int  # people with a value on run_date
    opened: int  # intervals opened (entered or changed)
    closed: int  # intervals closed (left or changed)
    seconds: float
    stats: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "run_date": self.run_date.isoformat(),
            "users": self.users,
            "opened": self.opened,
            "closed": self.closed,
            "seconds": round(self.seconds, 3),
            "stats": self.stats,
        }


def check_table(table: str) -> str:
    if not TABLE_PATTERN.match(table):
        raise ValidationError(f"{table!r} is not a history table name (tag_<name> or segment_<id>)")
    return table


def ensure(project: ProjectStore, table: str, value_type: str) -> None:
    """Create the history table (and the runs table) if missing; ``value_type`` is one of :data:`VALUE_TYPES`."""
    check_table(table)
    if value_type not in VALUE_TYPES:
        raise ValidationError(f"history values are one of {', '.join(VALUE_TYPES)}, not {value_type!r}")
    with project.store.lock:
        project.con.execute(
            f"CREATE TABLE IF NOT EXISTS {project.table(table)} (user_id BIGINT NOT NULL, value {value_type}, "
            "valid_from DATE NOT NULL, valid_to DATE, changed_at TIMESTAMP NOT NULL)"
        )
        project.con.execute(
            f"CREATE TABLE IF NOT EXISTS {project.table(RUNS_TABLE)} (target VARCHAR NOT NULL, run_date DATE NOT NULL, "
            "finished_at TIMESTAMP NOT NULL, users BIGINT NOT NULL, opened BIGINT NOT NULL, closed BIGINT NOT NULL, "
            "seconds DOUBLE NOT NULL, stats VARCHAR NOT NULL)"
        )


def exists(project: ProjectStore, table: str) -> bool:
    with project.store.lock:
        row = project.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [project.schema, check_table(table)],
        ).fetchall()
    return bool(row and row[0][0])


def last_run(project: ProjectStore, table: str) -> date | None:
    """The latest date a snapshot was applied for, or None before the first run."""
    if not _runs_exist(project):
        return None
    with project.store.lock:
        row = project.con.execute(
            f"SELECT max(run_date) FROM {project.table(RUNS_TABLE)} WHERE target = ?", [check_table(table)]
        ).fetchall()
    return row[0][0] if row else None


def _runs_exist(project: ProjectStore) -> bool:
    with project.store.lock:
        row = project.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [project.schema, RUNS_TABLE],
        ).fetchall()
    return bool(row and row[0][0])


def apply_snapshot(
    project: ProjectStore,
    table: str,
    value_type: str,
    run_date: date,
    snapshot: str | pa.Table,
    *,
    params: list[Any] | None = None,
    only_users: str | None = None,
    stats: dict[str, Any] | None = None,
) -> RunStats:
    """Turn ``run_date``'s snapshot into history rows of ``table``, atomically.

    Parameters
    ----------
    snapshot : str or pyarrow.Table
        A SELECT giving ``user_id, value`` (one row per person; NULL values mean "no value"), with ``params``
        bound, or an Arrow table of those two columns.
    only_users : str, optional
        A SELECT of ``user_id``: an incremental run that recomputed only these people; everyone else keeps
        their current interval untouched.
    stats : dict, optional
        Extra statistics stored with the run (a tag's value distribution, a segment's rule).

    Raises
    ------
    ValidationError
        ``run_date`` is before the latest run, or the snapshot gives one person two values.
    """
    started = time.perf_counter()
    ensure(project, table, value_type)
    target = project.table(table)
    latest = last_run(project, table)
    if latest is not None and run_date < latest:
        raise ValidationError(
            f"{table} was last computed for {latest}; history is written forward, so {run_date} cannot be "
            "computed now (reset the history to rebuild it)",
            code="history_backwards",
        )
    now = utcnow()
    with project.store.lock:
        if isinstance(snapshot, pa.Table):
            project.con.register("_ul_snapshot_in", snapshot)
            source, source_params = "SELECT user_id, value FROM _ul_snapshot_in", []
        else:
            source, source_params = snapshot, list(params or [])
        try:
            with project.store.transaction() as con:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE _ul_snap AS SELECT CAST(user_id AS BIGINT) AS user_id, "
                    f"CAST(value AS {value_type}) AS value FROM ({source}) WHERE value IS NOT NULL",
                    source_params,
                )
                dups = con.execute(
                    "SELECT user_id, count(*) FROM _ul_snap GROUP BY user_id HAVING count(*) > 1 LIMIT 1"
                ).fetchall()
                if dups:
                    dup = dups[0]
                    raise ValidationError(
                        f"the values for {table} give person {dup[0]} {dup[1]} values; each person may have one",
                        code="history_duplicate",
                    )
                if latest == run_date:  # a re-run of the latest date replaces it
                    con.execute(f"DELETE FROM {target} WHERE valid_from = ?", [run_date])
                    con.execute(f"UPDATE {target} SET valid_to = NULL WHERE valid_to = ?", [run_date])
                    con.execute(f"DELETE FROM {project.table(RUNS_TABLE)} WHERE target = ? AND run_date = ?",
                                [table, run_date])  # fmt: skip
                scope = "" if only_users is None else f" AND t.user_id IN ({only_users})"
                (closed,) = con.execute(
                    f"UPDATE {target} AS t SET valid_to = ? WHERE t.valid_to IS NULL{scope} AND NOT EXISTS "
                    "(SELECT 1 FROM _ul_snap s WHERE s.user_id = t.user_id AND s.value = t.value)",
                    [run_date],
                ).fetchall()[0]
                (opened,) = con.execute(
                    f"INSERT INTO {target} SELECT s.user_id, s.value, ?, NULL, ? FROM _ul_snap s WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {target} t WHERE t.user_id = s.user_id AND t.valid_to IS NULL "
                    "AND t.value = s.value)",
                    [run_date, now],
                ).fetchall()[0]
                (users,) = con.execute(f"SELECT count(*) FROM {target} WHERE valid_to IS NULL").fetchall()[0]
                seconds = time.perf_counter() - started
                con.execute(
                    f"INSERT INTO {project.table(RUNS_TABLE)} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [table, run_date, now, users, opened, closed, seconds,
                     orjson.dumps(stats or {}, default=str).decode()],
                )  # fmt: skip
                con.execute("DROP TABLE IF EXISTS _ul_snap")
        finally:
            if isinstance(snapshot, pa.Table):
                project.con.unregister("_ul_snapshot_in")
    return RunStats(table, run_date, int(users), int(opened), int(closed), seconds, stats or {})


def reset(project: ProjectStore, table: str) -> None:
    """Forget ``table``'s history and runs (a definition changed meaning, or a rebuild from an earlier date)."""
    check_table(table)
    with project.store.transaction() as con:
        con.execute(f"DROP TABLE IF EXISTS {project.table(table)}")
        if _runs_exist(project):
            con.execute(f"DELETE FROM {project.table(RUNS_TABLE)} WHERE target = ?", [table])


def runs(project: ProjectStore, table: str, *, limit: int = 60) -> list[dict[str, Any]]:
    """The latest runs of ``table``, newest first."""
    if not _runs_exist(project):
        return []
    with project.store.lock:
        rows = project.con.execute(
            f"SELECT run_date, finished_at, users, opened, closed, seconds, stats FROM {project.table(RUNS_TABLE)} "
            "WHERE target = ? ORDER BY run_date DESC LIMIT ?",
            [check_table(table), limit],
        ).fetchall()
    return [
        {"run_date": r[0].isoformat(), "finished_at": r[1].isoformat(), "users": r[2], "opened": r[3],
         "closed": r[4], "seconds": r[5], "stats": orjson.loads(r[6])}
        for r in rows
    ]  # fmt: skip


# reading, as sqlglot trees for the rule compiler and the comparisons ------------------------------------------
def values_on(schema: str, table: str, on: date | None = None) -> exp.Select:
    """``SELECT user_id, value`` of ``table`` as it was on ``on`` (None: the current values)."""
    source = exp.table_(check_table(table), db=schema, quoted=True, alias="h")
    if on is None:
        where = sql("$v IS NULL", v=col("valid_to", "h"))
    else:
        where = sql(
            "$f <= $d AND ($t IS NULL OR $t > $d)", f=col("valid_from", "h"), t=col("valid_to", "h"), d=literal(on)
        )
    return exp.select(col("user_id", "h"), col("value", "h")).from_(source).where(where)


def user_history(project: ProjectStore, table: str, user_id: int) -> list[dict[str, Any]]:
    """Every interval of one person in ``table``, oldest first (for the user 360 view)."""
    if not exists(project, table):
        return []
    with project.store.lock:
        rows = project.con.execute(
            f"SELECT value, valid_from, valid_to, changed_at FROM {project.table(table)} WHERE user_id = ? "
            "ORDER BY valid_from",
            [user_id],
        ).fetchall()
    return [
        {"value": _json_value(r[0]), "from": r[1].isoformat(), "to": r[2].isoformat() if r[2] else None,
         "changed_at": r[3].isoformat()}
        for r in rows
    ]  # fmt: skip


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
