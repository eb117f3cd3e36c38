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
:data:`TABLE_PATTERN` and quoted. Statements are sqlglot trees; values and dates are bound parameters or literals.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.store.backend import Deadline
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.sqlbuild import col, literal, sql, type_

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
    create = sql(
        "CREATE TABLE IF NOT EXISTS $t (user_id BIGINT NOT NULL, value VARCHAR, valid_from DATE NOT NULL, "
        "valid_to DATE, changed_at TIMESTAMP NOT NULL)",
        t=project.ref(table),
    )
    value = next(c for c in create.find_all(exp.ColumnDef) if c.name == "value")
    value.set("kind", type_(value_type))
    with project.writer() as s:
        s.execute(create)
        s.execute(sql(
            "CREATE TABLE IF NOT EXISTS $t (target VARCHAR NOT NULL, run_date DATE NOT NULL, "
            "finished_at TIMESTAMP NOT NULL, users BIGINT NOT NULL, opened BIGINT NOT NULL, closed BIGINT NOT NULL, "
            "seconds DOUBLE NOT NULL, stats VARCHAR NOT NULL)",
            t=project.ref(RUNS_TABLE),
        ))  # fmt: skip


_TABLE_EXISTS = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"


def exists(project: ProjectStore, table: str) -> bool:
    return bool(project.fetchall(sql(_TABLE_EXISTS), [project.schema, check_table(table)])[0][0])


def last_run(project: ProjectStore, table: str) -> date | None:
    """The latest date a snapshot was applied for, or None before the first run."""
    if not _runs_exist(project):
        return None
    stmt = sql("SELECT max(run_date) FROM $runs WHERE target = ?", runs=project.ref(RUNS_TABLE))
    found: date | None = project.fetchall(stmt, [check_table(table)])[0][0]
    return found


def _runs_exist(project: ProjectStore) -> bool:
    return bool(project.fetchall(sql(_TABLE_EXISTS), [project.schema, RUNS_TABLE])[0][0])


#: The name an Arrow snapshot is read by while it is applied.
SNAPSHOT_VIEW = "_ul_snapshot_in"


def apply_snapshot(
    project: ProjectStore,
    table: str,
    value_type: str,
    run_date: date,
    snapshot: exp.Expr | pa.Table,
    *,
    params: list[Any] | None = None,
    only_users: exp.Expr | None = None,
    stats: dict[str, Any] | None = None,
    watch: Deadline | None = None,
) -> RunStats:
    """Turn ``run_date``'s snapshot into history rows of ``table``, atomically.

    Parameters
    ----------
    snapshot : sqlglot.exp.Expr or pyarrow.Table
        A SELECT giving ``user_id, value`` (one row per person; NULL values mean "no value"), with ``params``
        bound, or an Arrow table of those two columns.
    only_users : sqlglot.exp.Expr, optional
        A SELECT of ``user_id``: an incremental run that recomputed only these people; everyone else keeps
        their current interval untouched.
    stats : dict, optional
        Extra statistics stored with the run (a tag's value distribution, a segment's rule).
    watch : Deadline, optional
        The caller's deadline (:func:`userloop.store.backend.deadline`): it stops the writing statements too.

    Raises
    ------
    ValidationError
        ``run_date`` is before the latest run, or the snapshot gives one person two values.
    """
    started = time.perf_counter()
    ensure(project, table, value_type)
    latest = last_run(project, table)
    if latest is not None and run_date < latest:
        raise ValidationError(
            f"{table} was last computed for {latest}; history is written forward, so {run_date} cannot be "
            "computed now (reset the history to rebuild it)",
            code="history_backwards",
        )
    now = utcnow()
    arrow = isinstance(snapshot, pa.Table)
    source = sql("SELECT user_id, value FROM $v", v=exp.to_table(SNAPSHOT_VIEW)) if arrow else snapshot
    with project.writer() as writer:
        if watch is not None:
            watch.watch(writer)
        if arrow:
            writer.register(SNAPSHOT_VIEW, snapshot)
        try:
            with project.atomic() as s:
                counts = _apply(s, project, table, value_type, (run_date, latest, now), source, list(params or []),
                                only_users)  # fmt: skip
                seconds = time.perf_counter() - started
                s.execute(
                    sql("INSERT INTO $runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", runs=project.ref(RUNS_TABLE)),
                    [table, run_date, now, counts[0], counts[1], counts[2], seconds,
                     orjson.dumps(stats or {}, default=str).decode()],
                )  # fmt: skip
                s.execute(sql("DROP TABLE IF EXISTS _ul_snap"))
        finally:
            if arrow:
                writer.unregister(SNAPSHOT_VIEW)
    users, opened, closed = counts
    return RunStats(table, run_date, users, opened, closed, seconds, stats or {})


def _apply(
    s: DuckSession,
    project: ProjectStore,
    table: str,
    value_type: str,
    dates: tuple[date, date | None, datetime],
    source: exp.Expr,
    params: list[Any],
    only_users: exp.Expr | None,
) -> tuple[int, int, int]:
    """The interval changes of one run inside the caller's transaction: (users, opened, closed).

    ``dates``: the run's date, the latest run's date (None before the first run) and the time of the change."""
    run_date, latest, now = dates
    target = project.ref(table)
    value = exp.cast(exp.column("value"), type_(value_type))
    s.execute(sql(
        "CREATE OR REPLACE TEMP TABLE _ul_snap AS SELECT CAST(user_id AS BIGINT) AS user_id, $value AS value "
        "FROM ($source) WHERE value IS NOT NULL",
        value=value, source=source,
    ), params)  # fmt: skip
    # every result is read to its end (fetchall): DuckDB refuses the next statement while one is half read
    dups = s.fetchall(sql("SELECT user_id, count(*) FROM _ul_snap GROUP BY user_id HAVING count(*) > 1 LIMIT 1"))
    if dups:
        dup = dups[0]
        raise ValidationError(
            f"the values for {table} give person {dup[0]} {dup[1]} values; each person may have one",
            code="history_duplicate",
        )
    if latest == run_date:  # a re-run of the latest date replaces it
        s.execute(sql("DELETE FROM $t WHERE valid_from = ?", t=target), [run_date])
        s.execute(sql("UPDATE $t SET valid_to = NULL WHERE valid_to = ?", t=target), [run_date])
        s.execute(sql("DELETE FROM $runs WHERE target = ? AND run_date = ?", runs=project.ref(RUNS_TABLE)),
                  [table, run_date])  # fmt: skip
    scope = exp.true() if only_users is None else sql("t.user_id IN ($q)", q=only_users)
    [(closed,)] = s.fetchall(sql(
        "UPDATE $t AS t SET valid_to = ? WHERE t.valid_to IS NULL AND $scope AND NOT EXISTS "
        "(SELECT 1 FROM _ul_snap s WHERE s.user_id = t.user_id AND s.value = t.value)",
        t=target, scope=scope,
    ), [run_date])  # fmt: skip
    [(opened,)] = s.fetchall(sql(
        "INSERT INTO $t SELECT s.user_id, s.value, ?, NULL, ? FROM _ul_snap s WHERE NOT EXISTS "
        "(SELECT 1 FROM $t t WHERE t.user_id = s.user_id AND t.valid_to IS NULL AND t.value = s.value)",
        t=target,
    ), [run_date, now])  # fmt: skip
    [(users,)] = s.fetchall(sql("SELECT count(*) FROM $t WHERE valid_to IS NULL", t=target))
    return int(users), int(opened), int(closed)


def reset(project: ProjectStore, table: str) -> None:
    """Forget ``table``'s history and runs (a definition changed meaning, or a rebuild from an earlier date)."""
    check_table(table)
    with project.atomic() as s:
        s.execute(sql("DROP TABLE IF EXISTS $t", t=project.ref(table)))
        if _runs_exist(project):
            s.execute(sql("DELETE FROM $runs WHERE target = ?", runs=project.ref(RUNS_TABLE)), [table])


def runs(project: ProjectStore, table: str, *, limit: int = 60) -> list[dict[str, Any]]:
    """The latest runs of ``table``, newest first."""
    if not _runs_exist(project):
        return []
    rows = project.fetchall(
        sql("SELECT run_date, finished_at, users, opened, closed, seconds, stats FROM $runs "
            "WHERE target = ? ORDER BY run_date DESC LIMIT ?", runs=project.ref(RUNS_TABLE)),
        [check_table(table), limit],
    )  # fmt: skip
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
    rows = project.fetchall(
        sql("SELECT value, valid_from, valid_to, changed_at FROM $t WHERE user_id = ? ORDER BY valid_from",
            t=project.ref(table)),
        [user_id],
    )  # fmt: skip
    return [
        {"value": _json_value(r[0]), "from": r[1].isoformat(), "to": r[2].isoformat() if r[2] else None,
         "changed_at": r[3].isoformat()}
        for r in rows
    ]  # fmt: skip


def _json_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
