"""The DuckDB event store: one file, one schema per project.

A project's schema holds ``events``, ``users``, ``identities``, ``items``, the property ``registry``, the
``event_names`` registry and the ``rejects`` (dead letter) table. Property columns are typed and added on first
sight; the registry row and the ``ALTER TABLE`` are written in one transaction, so the registry can never
disagree with the columns.

The ``event_names`` registry marks each event active or passive (:mod:`userloop.schema.activity`). A store made
before the flag existed is upgraded in place when it is opened for writing (:func:`upgrade_event_store`); opened
read-only, it reads every event as its default.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from userloop.schema.activity import default_active
from userloop.schema.types import PropertyType
from userloop.store import rejects
from userloop.store.activity import active_cond
from userloop.store.backend import Capability, Params, engine_errors
from userloop.store.dialects import render
from userloop.store.sqlbuild import rendered, sql, table
from userloop.store.sqltext import ident, literal, qualified

engine_errors(duckdb.Error)

DIALECT = "duckdb"
#: Named one by one, not "every capability": the ClickHouse-native ones (``PERSON_ARRAYS``, ``windowFunnel`` and
#: ``retention`` shapes) are ClickHouse functions with no DuckDB form; DuckDB runs its own shapes of those analyses.
CAPABILITIES = frozenset(
    {
        Capability.TRANSACTIONS,
        Capability.ROW_UPDATES,
        Capability.TEMP_TABLES,
        Capability.ARROW_SCAN,
        Capability.ARROW_STAGE,
        Capability.FILE_SCAN,
        Capability.SANDBOX,
    }
)


class DuckRows:
    """A statement's result on DuckDB."""

    def __init__(self, result: duckdb.DuckDBPyConnection) -> None:
        self._result = result

    @property
    def columns(self) -> list[str]:
        return [d[0] for d in self._result.description or []]

    @property
    def types(self) -> list[str]:
        return [str(d[1]) for d in self._result.description or []]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._result.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._result.fetchone()

    def fetchmany(self, n: int) -> list[tuple[Any, ...]]:
        return self._result.fetchmany(n)

    def numpy(self) -> dict[str, Any]:
        return self._result.fetchnumpy()

    def arrow(self) -> pa.Table:
        return self._result.to_arrow_table()


class DuckSession:
    """A :class:`~userloop.store.backend.Session` on one DuckDB connection or cursor."""

    dialect = DIALECT

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def render(self, stmt: exp.Expr) -> str:
        return rendered(stmt, DIALECT, render)

    def execute(self, stmt: exp.Expr, params: Params = None) -> DuckRows:
        return DuckRows(self._con.execute(self.render(stmt), params))

    def executemany(self, stmt: exp.Expr, rows: Sequence[Sequence[Any]]) -> None:
        self._con.executemany(self.render(stmt), [list(r) for r in rows])

    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]:
        return self._con.execute(self.render(stmt), params).fetchall()

    def fetchone(self, stmt: exp.Expr, params: Params = None) -> tuple[Any, ...] | None:
        """The first row of a statement that returns at most a few. The result is read to its end: DuckDB
        refuses to register an Arrow view on a connection with a half-read result."""
        rows = self._con.execute(self.render(stmt), params).fetchall()
        return rows[0] if rows else None

    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any:
        row = self.fetchone(stmt, params)
        return None if row is None else row[0]

    # Arrow results come from a relation (``sql``): Arrow output of a DB-API result copies the rows once more.
    def arrow(self, stmt: exp.Expr, params: Params = None) -> pa.Table:
        return self._con.sql(self.render(stmt), params=params).to_arrow_table()

    def batches(self, stmt: exp.Expr, params: Params = None, *, rows: int = 100_000) -> pa.RecordBatchReader:
        return self._con.sql(self.render(stmt), params=params).to_arrow_reader(rows)

    def register(self, view: str, data: Any) -> None:
        """Make an Arrow table (or batch reader) readable by name on this session."""
        self._con.register(view, data)

    def unregister(self, view: str) -> None:
        self._con.unregister(view)

    def interrupt(self) -> None:
        self._con.interrupt()

    def close(self) -> None:
        self._con.close()


#: Tables whose properties are typed columns, with the columns every row has.
PROPERTY_TABLES = ("events", "users", "items")

_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.events (
        event_id VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        user_id BIGINT NOT NULL,
        distinct_id VARCHAR NOT NULL,
        time TIMESTAMP NOT NULL,
        received_at TIMESTAMP NOT NULL,
        lib VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.users (
        user_id BIGINT NOT NULL,
        first_id VARCHAR,
        created_at TIMESTAMP,
        updated_at TIMESTAMP,
        first_seen TIMESTAMP,
        last_seen TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.identities (
        ns VARCHAR NOT NULL,
        id_type VARCHAR NOT NULL,
        id_value VARCHAR NOT NULL,
        user_id BIGINT NOT NULL,
        created_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.items (
        item_type VARCHAR NOT NULL,
        item_id VARCHAR NOT NULL,
        updated_at TIMESTAMP
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.registry (
        tbl VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        display_zh VARCHAR,
        display_en VARCHAR,
        description VARCHAR,
        first_seen TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.event_names (
        event VARCHAR NOT NULL,
        display_zh VARCHAR,
        display_en VARCHAR,
        first_seen TIMESTAMP NOT NULL,
        active BOOLEAN
    )""",
    """CREATE OR REPLACE VIEW {s}.identities_view AS
        SELECT id_type, id_value, user_id, created_at FROM {s}.identities""",
    """CREATE TABLE IF NOT EXISTS {s}.records_seen (record_id VARCHAR NOT NULL, seen_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {s}.counters (name VARCHAR NOT NULL, value BIGINT NOT NULL)""",
    """INSERT INTO {s}.counters SELECT 'person', 0 WHERE NOT EXISTS (SELECT 1 FROM {s}.counters)""",
    """INSERT INTO {s}.counters SELECT 'data_version', 0
        WHERE NOT EXISTS (SELECT 1 FROM {s}.counters WHERE name = 'data_version')""",
)


@dataclass(frozen=True)
class Property:
    table: str
    name: str
    type: PropertyType


class EventStore:
    """One DuckDB database file. Thread-safe: statements are serialised through one connection.

    Layers above use :meth:`session` (a private cursor, for reads that may run long and be interrupted),
    :meth:`transaction` (the writer, atomically) and :meth:`writer` (the writer, statement by statement); the
    connection itself stays here."""

    dialect = DIALECT
    capabilities = CAPABILITIES

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.con = duckdb.connect(self.path, read_only=read_only)
        # Stored times are naive UTC; casts to TIMESTAMPTZ must read them as UTC whatever the host's zone.
        # GLOBAL: a cursor (every session) starts from the instance's settings, not from this connection's.
        self.con.execute("SET GLOBAL TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")  # the CLI draws its own, on stderr
        self.lock = threading.RLock()
        self.read_only = read_only
        if not read_only:
            upgrade_event_store(self.con)

    def close(self) -> None:
        with self.lock:
            self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run statements atomically; rolls back on any exception."""
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            self.con.execute("COMMIT")

    def render(self, stmt: exp.Expr) -> str:
        return render(stmt, DIALECT)

    @contextmanager
    def session(self) -> Iterator[DuckSession]:
        """A private cursor: its temp tables and registered views are its own; interrupting it stops only it."""
        with self.lock:
            cursor = self.con.cursor()
        try:
            yield DuckSession(cursor)
        finally:
            cursor.close()

    @contextmanager
    def writer(self) -> Iterator[DuckSession]:
        """The one writing connection, held for the block (statements commit one by one)."""
        with self.lock:
            yield DuckSession(self.con)

    @contextmanager
    def atomic(self) -> Iterator[DuckSession]:
        """:meth:`transaction` as a session."""
        with self.transaction() as con:
            yield DuckSession(con)

    def set_memory_limit(self, size: str) -> None:
        """Bound DuckDB's buffer pool (``"2GB"``)."""
        with self.lock:
            self.con.execute(f"SET memory_limit = {literal(size)}")

    def project(self, name: str) -> ProjectStore:
        return ProjectStore(self, schema_for(name))

    def create_project(self, name: str) -> ProjectStore:
        schema = schema_for(name)
        with self.transaction() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            for ddl in _DDL:
                con.execute(ddl.format(s=ident(schema)))
            con.execute(render(rejects.create(exp.table_(rejects.TABLE, db=schema, quoted=True)), DIALECT))
        return ProjectStore(self, schema)


def schema_for(project: str) -> str:
    return f"p_{project}"


def upgrade_event_store(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring every project schema made by an earlier version up to date, in place; returns the schemas changed.

    The one step so far: ``event_names`` gains the ``active`` flag, set from each name's default
    (:func:`userloop.schema.activity.default_active`); first and last seen are stamped again from active
    events, and the data version moves on, so no cached result counts a passive event as activity."""
    rows = con.execute(
        "SELECT t.table_schema FROM information_schema.tables AS t WHERE t.table_name = 'event_names' "
        "AND t.table_schema LIKE 'p\\_%' ESCAPE '\\' AND NOT EXISTS (SELECT 1 FROM information_schema.columns AS c "
        "WHERE c.table_schema = t.table_schema AND c.table_name = 'event_names' AND c.column_name = 'active') "
        "ORDER BY 1"
    ).fetchall()
    changed = [r[0] for r in rows]
    for schema in changed:
        names = table(schema, "event_names")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(render(sql("ALTER TABLE $names ADD COLUMN active BOOLEAN", names=names), DIALECT))
            events = [
                r[0] for r in con.execute(render(sql("SELECT event FROM $names", names=names), DIALECT)).fetchall()
            ]
            passive = [e for e in events if not default_active(e)]
            con.execute(
                render(sql("UPDATE $names SET active = $active", names=names, active=active_cond(passive)), DIALECT)
            )
            _restamp_seen(con, schema, passive)
            bump = sql(
                "UPDATE $counters SET value = value + 1 WHERE name = 'data_version'", counters=table(schema, "counters")
            )
            con.execute(render(bump, DIALECT))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    return changed


def _restamp_seen(con: duckdb.DuckDBPyConnection, schema: str, passive: list[str]) -> None:
    """Set every person's first and last seen from their active events (NULL without any)."""
    stmt = sql(
        """UPDATE $users AS u SET first_seen = s.lo, last_seen = s.hi
        FROM (SELECT p.user_id, min(e.time) AS lo, max(e.time) AS hi FROM $users AS p
              LEFT JOIN $events AS e ON e.user_id = p.user_id AND $active
              GROUP BY p.user_id) AS s
        WHERE u.user_id = s.user_id""",
        users=table(schema, "users"),
        events=table(schema, "events"),
        active=active_cond(passive, "e"),
    )
    con.execute(render(stmt, DIALECT))


#: The sandbox instance's settings: no files, URLs or databases (``enable_external_access``), no extension
#: installed or loaded behind the query's back, no Python variable read as a table (replacement scans).
SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,
}


@contextmanager
def sandbox_session() -> Iterator[DuckSession]:
    """:func:`sandbox_connection` as a session, closed after the block."""
    con = sandbox_connection()
    try:
        yield DuckSession(con)
    finally:
        con.close()


def sandbox_connection() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB instance for analyst SQL that cannot reach files, extensions or the network.

    These settings are global to a DuckDB instance, and the event store's instance keeps file access for
    imports and exports, so the sandbox is an instance of its own; its configuration is locked once the time
    zone is set, so a query cannot turn anything back on (see :mod:`userloop.query.sql`)."""
    con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


class ProjectStore:
    """One project's tables inside the event store."""

    def __init__(self, store: EventStore, schema: str) -> None:
        self.store = store
        self.schema = schema
        self._registry: dict[tuple[str, str], PropertyType] | None = None
        self._event_flags: dict[str, bool] | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.store.con

    # statements ----------------------------------------------------------------------------------------------
    def session(self) -> Any:
        """A private session on the store (see :meth:`EventStore.session`)."""
        return self.store.session()

    def writer(self) -> Any:
        return self.store.writer()

    def atomic(self) -> Any:
        return self.store.atomic()

    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]:
        """Run a short statement on the writer and return its rows."""
        with self.store.writer() as s:
            return s.fetchall(stmt, params)

    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any:
        with self.store.writer() as s:
            return s.scalar(stmt, params)

    def execute(self, stmt: exp.Expr, params: Params = None) -> None:
        with self.store.writer() as s:
            s.execute(stmt, params)

    def cluster_events(self) -> int:
        """Rewrite the project's events in ``(user_id, time, event_id)`` order and return how many there are.

        The layout a ClickHouse MergeTree ``ORDER BY (person, time)`` keeps: each person's events sit together,
        so the per-person passes of funnels and retention (a hash aggregate or a window partition per person)
        find them in nearby rows instead of all over the table (bench/analytics, 20M events: retention's CPU
        time halves, the funnel's drops by a sixth). Results do not change — no analysis reads the table's
        physical order — so the data version stays. Events appended later go after the clustered rows until the
        next call; the rewrite is atomic and holds the writer for its duration."""
        events = self.ref("events")
        with self.store.atomic() as s:
            s.execute(sql("SET preserve_insertion_order = true"))
            s.execute(
                sql(
                    "CREATE TEMP TABLE _ul_clustered AS SELECT * FROM $events ORDER BY user_id, time, event_id",
                    events=events,
                )
            )
            s.execute(sql("DELETE FROM $events", events=events))
            s.execute(sql("INSERT INTO $events SELECT * FROM _ul_clustered", events=events))
            n = int(s.scalar(sql("SELECT count(*) FROM _ul_clustered")))
            s.execute(sql("DROP TABLE _ul_clustered"))
        with self.store.writer() as s, suppress(duckdb.Error):
            # the deleted row groups are dropped now rather than at the next automatic checkpoint; a reader's
            # open transaction may refuse it, and the rewrite is committed either way
            s.execute(sql("CHECKPOINT"))
        return n

    def ref(self, name: str, alias: str | None = None) -> exp.Table:
        """One of this project's tables as a tree node."""
        return exp.table_(name, db=self.schema, quoted=True, alias=alias)

    def table(self, name: str) -> str:
        """The qualified, quoted name of one of this project's tables."""
        return qualified(self.schema, name)

    # registry -------------------------------------------------------------------------------------------
    def registry(self) -> dict[tuple[str, str], PropertyType]:
        """(table, property) → type, cached; invalidated by :meth:`register`."""
        if self._registry is None:
            with self.store.lock:
                rows = self.con.execute(f"SELECT tbl, name, type FROM {self.table('registry')}").fetchall()
            self._registry = {(t, n): PropertyType(ty) for t, n, ty in rows}
        return self._registry

    def properties(self, table: str) -> dict[str, PropertyType]:
        return {n: ty for (t, n), ty in self.registry().items() if t == table}

    def register(self, table: str, props: dict[str, PropertyType]) -> None:
        """Add property columns; the caller holds a transaction."""
        known = self.registry()
        for name, ptype in props.items():
            if (table, name) in known:
                continue
            self.con.execute(
                f"INSERT INTO {self.table('registry')} VALUES (?, ?, ?, NULL, NULL, NULL, now()::TIMESTAMP)",
                [table, name, ptype.value],
            )
            self.con.execute(f"ALTER TABLE {self.table(table)} ADD COLUMN {ident(name)} {ptype.sql_type}")
        self._registry = None

    def forget_cache(self) -> None:
        self._registry = None
        self._event_flags = None

    def event_names(self) -> set[str]:
        return set(self.event_flags())

    def event_flags(self) -> dict[str, bool]:
        """Event name → active (True) or passive (False), cached; a store made before the flag existed and
        opened read-only reads each name's default."""
        if self._event_flags is None:
            with self.store.lock:
                has_flag = self.con.execute(
                    "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? "
                    "AND table_name = 'event_names' AND column_name = 'active'",
                    [self.schema],
                ).fetchall()[0][0]
                read = sql("SELECT event, $flag FROM $names", flag=exp.column("active") if has_flag else exp.null(),
                           names=self.ref("event_names"))  # fmt: skip
                rows = self.con.execute(render(read, DIALECT)).fetchall()
            self._event_flags = {e: default_active(e) if a is None else bool(a) for e, a in rows}
        return self._event_flags

    def passive_events(self) -> frozenset[str]:
        """The registered events that are passive (sent to a person, not done by them)."""
        return frozenset(e for e, active in self.event_flags().items() if not active)

    def is_passive(self, event: str) -> bool:
        """Whether ``event`` is passive: its registered flag, or its default when it has not been seen yet."""
        active = self.event_flags().get(event)
        return not (default_active(event) if active is None else active)

    def register_events(self, names: list[str]) -> None:
        """Add new event names with their default flag; the caller holds a transaction."""
        new = sorted(set(names) - self.event_names())
        if new:
            insert = sql(
                "INSERT INTO $names (event, display_zh, display_en, first_seen, active) "
                "VALUES (?, NULL, NULL, CAST(now() AS TIMESTAMP), ?)",
                names=self.ref("event_names"),
            )
            self.con.executemany(render(insert, DIALECT), [[n, default_active(n)] for n in new])
            self._event_flags = None

    def set_event_active(self, event: str, active: bool) -> bool | None:
        """Mark a registered event active or passive; returns whether the flag changed (None: no such event).

        A change stamps every person's first and last seen again from active events and moves the data version
        on, so cached results are recomputed."""
        with self.store.transaction() as con:
            names = self.ref("event_names")
            row = con.execute(
                render(sql("SELECT active FROM $names WHERE event = ?", names=names), DIALECT), [event]
            ).fetchall()
            if not row:
                return None
            if row[0][0] is not None and bool(row[0][0]) == active:
                return False
            con.execute(
                render(sql("UPDATE $names SET active = ? WHERE event = ?", names=names), DIALECT), [active, event]
            )
            read = sql("SELECT event FROM $names WHERE NOT active", names=names)
            passive = [r[0] for r in con.execute(render(read, DIALECT)).fetchall()]
            _restamp_seen(con, self.schema, passive)
            self.bump_data_version()
        self._event_flags = None
        return True

    def event_rows(self) -> list[dict[str, object]]:
        """The event registry as rows (event, active, display names, first seen), for listings."""
        flags = self.event_flags()
        with self.store.lock:
            read = sql("SELECT event, display_zh, display_en, first_seen FROM $names ORDER BY event",
                       names=self.ref("event_names"))  # fmt: skip
            rows = self.con.execute(render(read, DIALECT)).fetchall()
        return [
            {
                "event": e,
                "active": flags.get(e, True),
                "display_zh": zh,
                "display_en": en,
                "first_seen": seen.isoformat(sep=" ", timespec="seconds"),
            }
            for e, zh, en, seen in rows
        ]

    def take_person_keys(self, n: int) -> int:
        """Reserve ``n`` person keys; returns the first. The caller holds a transaction."""
        counters = self.table("counters")
        (last,) = self.con.execute(f"SELECT value FROM {counters} WHERE name = 'person'").fetchone() or (0,)
        self.con.execute(f"UPDATE {counters} SET value = ? WHERE name = 'person'", [int(last) + n])
        return int(last) + 1

    def bump_data_version(self) -> None:
        """Mark the project's data as changed (cached analysis results go stale); the caller holds a transaction."""
        self.con.execute(f"UPDATE {self.table('counters')} SET value = value + 1 WHERE name = 'data_version'")

    def data_version(self) -> int:
        """A number that grows whenever events, people or identities change."""
        with self.store.lock:
            rows = self.con.execute(
                f"SELECT value FROM {self.table('counters')} WHERE name = 'data_version'"
            ).fetchall()
        return int(rows[0][0]) if rows else 0

    def property_rows(self) -> list[dict[str, object]]:
        """The registry as rows (table, name, type, display names, first seen), for listings."""
        with self.store.lock:
            rows = self.con.execute(
                f"SELECT tbl, name, type, display_zh, display_en, first_seen FROM {self.table('registry')} "
                "ORDER BY tbl, name"
            ).fetchall()
        cols = ("table", "name", "type", "display_zh", "display_en", "first_seen")
        return [dict(zip(cols, (*r[:5], str(r[5])), strict=True)) for r in rows]

    def recent_rejects(self, limit: int, *, raw_chars: int = 2000) -> list[dict[str, object]]:
        """The newest refused records with source, row, field, reason and (cut) raw input."""
        with self.store.lock:
            rows = self.con.execute(
                f"SELECT received_at, source, row_no, field, reason, left(raw, ?) FROM {self.table('rejects')} "
                "ORDER BY received_at DESC, row_no LIMIT ?",
                [raw_chars, limit],
            ).fetchall()
        cols = ("received_at", "source", "row", "field", "reason", "raw")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def describe(self, table: str, name: str, *, zh: str | None, en: str | None, text: str | None) -> bool:
        """Set the display names and description of a property; False if it is not registered."""
        with self.store.lock:
            row = self.con.execute(
                f"UPDATE {self.table('registry')} SET display_zh = coalesce(?, display_zh), "
                "display_en = coalesce(?, display_en), description = coalesce(?, description) "
                "WHERE tbl = ? AND name = ? RETURNING name",
                [zh, en, text, table, name],
            ).fetchall()
        return bool(row)


#: Engine failures that say nothing about the data (the disk, memory, a dead database handle): work that met one
#: is retried later instead of having its records refused.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.IOException,
    duckdb.OutOfMemoryException,
    duckdb.FatalException,
)
#: Failures of the storage under the engine (retried in place when nothing has moved).
IO_ERRORS: tuple[type[BaseException], ...] = (duckdb.IOException,)
#: Engine failures caused by a value a request brought (a number out of range, text that is not the type it
#: claims): the API answers them as the caller's mistake (400), never a 500.
BAD_VALUE_ERRORS: tuple[type[Exception], ...] = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)
