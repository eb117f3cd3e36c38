"""The ClickHouse backend: the same statement trees as DuckDB, rendered for ClickHouse, run on its engine.

A store is named by a URL. ``chdb:///abs/path`` is ClickHouse's engine in process (chdb), keeping its databases
under that folder; it is the same engine a ClickHouse server runs. ``clickhouse://user:password@host:8123/db`` (and
``clickhouses://…:8443`` over TLS) is a ClickHouse server reached over HTTP with clickhouse-connect: each session is
a server session (its own settings and temporary tables), results come as Arrow streams and inserts go as Arrow
streams. The tests reach the same engine both ways: in process, and through :mod:`userloop.store.chdb_http` (a
loopback endpoint over chdb) in another process. A URL's password is never shown (:func:`redact`).

A project's tables live in a database named like the DuckDB schema (``p_<project>``), laid out by
:mod:`userloop.store.clickhouse_ddl` and filled from DuckDB by :mod:`userloop.store.mirror`.

Differences from DuckDB a caller must know (:attr:`ClickHouseStore.capabilities`):

* no transactions: writes are idempotent batches (``INSERT`` of whole parts), never ``BEGIN … COMMIT``;
* no row updates: ``UPDATE``/``DELETE`` are asynchronous mutations that rewrite whole parts, so identity merges
  and profile changes are new row versions (ReplacingMergeTree), not updates in place;
* times are ``DateTime64(6, 'UTC')`` and every session runs with ``session_timezone = 'UTC'``, so a stored time
  reads as DuckDB's naive-UTC ``TIMESTAMP`` does; results return them naive, as DuckDB does.

Each :meth:`~ClickHouseStore.session` is its own chdb connection or server session: its settings and temporary
tables are its own. chdb serves one folder per process: while a connection is open, a store at another path cannot
be opened; several processes share one engine through a server (or the loopback endpoint).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa
from sqlglot import exp

from userloop.core.errors import QueryError, ValidationError
from userloop.schema.activity import default_active
from userloop.schema.types import PropertyType
from userloop.store.backend import Capability, Params, engine_errors
from userloop.store.clickhouse_server import SERVER_SCHEMES, HttpLink, ServerAddress, redact, server_client
from userloop.store.dialects import create_temporary, render, staged
from userloop.store.sqlbuild import literal, rendered, sql

DIALECT = "clickhouse"
#: No TRANSACTIONS (writes are idempotent part inserts) and no ROW_UPDATES (UPDATE/DELETE are mutations that
#: rewrite parts); no SANDBOX (analyst SQL runs on DuckDB's sealed instance).
CAPABILITIES = frozenset({Capability.TEMP_TABLES, Capability.ARROW_SCAN, Capability.FILE_SCAN, Capability.RETENTION_FN})

#: Settings every session runs with, so that the trees mean what they mean on DuckDB: a LEFT JOIN's missing side
#: is NULL (not the type's default), so is a column a grouping set rolls up, tuple elements keep their names,
#: times read as UTC, and a name in an expression is the column before it is an alias of the same select list
#: (``sum(first) AS first``); an aggregate over no rows is NULL (``avg`` is not NaN, ``min`` not 0), as in SQL;
#: a CTE marked ``MATERIALIZED`` is computed once, as on DuckDB (:func:`userloop.store.dialects` keeps the hint).
SESSION_SETTINGS: dict[str, object] = {
    "enable_materialized_cte": 1,
    "aggregate_functions_null_for_empty": 1,
    "group_by_use_nulls": 1,
    "prefer_column_name_to_alias": 1,
    "join_use_nulls": 1,
    "enable_named_columns_in_function_tuple": 1,
    "session_timezone": "UTC",
}


class InterruptError(RuntimeError):
    """A statement refused or dropped because its session was interrupted; the deadline around it turns this
    into the user's ``query_timeout`` or ``query_cancelled``."""


def _engine_error_types() -> tuple[type[BaseException], ...]:
    from chdb import ChdbError
    from clickhouse_connect.driver.exceptions import DatabaseError

    return (ChdbError, DatabaseError, InterruptError)


engine_errors(*_engine_error_types())


def chdb_path(url: str) -> Path:
    """The folder of a ``chdb:///abs/path`` URL (an absolute path: the store must not depend on the cwd)."""
    parts = urlsplit(url)
    if parts.scheme != "chdb" or parts.netloc or not parts.path.startswith("/"):
        raise ValidationError(
            f"a ClickHouse URL is chdb:///absolute/path, not {redact(url)!r} / ClickHouse 地址应为 chdb:///绝对路径",
            code="invalid",
        )
    return Path(parts.path)


class ChRows:
    """A statement's result on ClickHouse, read whole (an Arrow table) with times as naive UTC."""

    def __init__(self, table: pa.Table) -> None:
        self._table = naive_times(table)
        self._rows: list[tuple[Any, ...]] | None = None
        self._at = 0

    @property
    def columns(self) -> list[str]:
        return list(self._table.column_names)

    def arrow(self) -> pa.Table:
        return self._table

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            names = self._table.column_names
            self._rows = [tuple(r[n] for n in names) for r in self._table.to_pylist()] if names else []
        return self._rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at :]
        self._at = len(self._all())
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._all()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]


def naive_times(table: pa.Table) -> pa.Table:
    """``table`` with time-zone-aware timestamp columns as naive UTC (DuckDB's ``TIMESTAMP``)."""
    fields = [
        pa.field(f.name, pa.timestamp(f.type.unit), f.nullable) if pa.types.is_timestamp(f.type) and f.type.tz else f
        for f in table.schema
    ]
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)


def bind(stmt: exp.Expr, params: Params) -> exp.Expr:
    """``stmt`` with its ``?`` (or named) placeholders replaced by literal nodes of ``params``: values enter the
    tree as nodes, never as text."""
    if params is None:
        return stmt
    tree = stmt.copy()
    holders = list(tree.find_all(exp.Placeholder, bfs=False))  # depth first: the order they are written in
    if isinstance(params, Mapping):
        for holder in holders:
            if holder.name not in params:
                raise KeyError(f"no value for parameter {holder.name!r}")
            holder.replace(literal(params[holder.name]))
        return tree
    values = list(params)
    if len(values) != len(holders):
        raise ValueError(f"the statement has {len(holders)} parameters, {len(values)} values were given")
    for holder, value in zip(holders, values, strict=True):
        holder.replace(literal(value))
    return tree


def returns_rows(stmt: exp.Expr) -> bool:
    """Whether a statement answers with rows (a query), as opposed to a command (DDL, ``INSERT … SELECT``)."""
    return isinstance(stmt, exp.Query | exp.Describe | exp.Show)


class Link(Protocol):
    """What a :class:`ChSession` runs its statements on: a chdb connection or a server session."""

    def query(self, text: str, *, rows: bool) -> pa.Table: ...
    def insert(self, head: exp.Schema, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


class ChdbLink:
    """A chdb connection. It cannot stop a statement it is running (chdb's synchronous ``query`` has no cancel
    hook from another thread): :meth:`cancel` does nothing, the session drops the result instead."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def query(self, text: str, *, rows: bool) -> pa.Table:
        return self.con.query(text, "ArrowTable")

    def insert(self, head: exp.Schema, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
        written = 0
        with self.con.send_insert(render(exp.Insert(this=head), DIALECT), "ArrowStream") as ins:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    written += batch.num_rows
            ins.append(sink.getvalue().to_pybytes())
            ins.finish()
        return written

    def cancel(self) -> None:
        return None

    def close(self) -> None:
        self.con.close()


class ChSession:
    """A :class:`~userloop.store.backend.Session` on one chdb connection or one server session (a :class:`Link`).

    :meth:`interrupt` marks the session stopped, so no further statement starts and the running statement's
    result is refused; on a server it also kills the running statement (``KILL QUERY`` by its id). chdb cannot
    stop a statement it is already running: there the deadline (:func:`userloop.store.backend.deadline`) reports
    the timeout or cancel as on DuckDB, at most one statement late."""

    dialect = DIALECT

    def __init__(self, link: Link) -> None:
        self._link = link
        self._stopped = threading.Event()
        self._registered: set[str] = set()

    def render(self, stmt: exp.Expr) -> str:
        return rendered(stmt, DIALECT, render)

    def _run(self, text: str, *, rows: bool = True) -> pa.Table:
        if self._stopped.is_set():
            raise InterruptError("the session was interrupted before the statement started")
        table = self._link.query(text, rows=rows)
        if self._stopped.is_set():
            raise InterruptError("the session was interrupted while the statement ran; its result is dropped")
        return table

    def execute(self, stmt: exp.Expr, params: Params = None) -> ChRows:
        # materialized CTEs become this session's temporary tables first (dialects.staged says why)
        stages, bound = staged(bind(stmt, params), lambda cte: f"_cte_{cte}_{uuid.uuid4().hex[:12]}")
        try:
            for name, query in stages:
                self._run(render(create_temporary(name, query), DIALECT), rows=False)
            return ChRows(self._run(self.render(bound), rows=returns_rows(bound)))
        finally:
            for name, _ in stages if not self._stopped.is_set() else ():
                drop = exp.Drop(tables=[exp.to_table(name, quoted=True)], kind="TABLE", exists=True, temporary=True)
                self._run(render(drop, DIALECT), rows=False)

    def executemany(self, stmt: exp.Expr, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(stmt, list(row))

    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]:
        return self.execute(stmt, params).fetchall()

    def fetchone(self, stmt: exp.Expr, params: Params = None) -> tuple[Any, ...] | None:
        return self.execute(stmt, params).fetchone()

    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any:
        row = self.fetchone(stmt, params)
        return None if row is None else row[0]

    def arrow(self, stmt: exp.Expr, params: Params = None) -> pa.Table:
        return self.execute(stmt, params).arrow()

    def batches(self, stmt: exp.Expr, params: Params = None, *, rows: int = 100_000) -> pa.RecordBatchReader:
        """The query's rows as record batches (of at most ``rows``), times naive UTC; from a server they are read
        as the answer arrives, not held whole."""
        bound = bind(stmt, params)
        if not isinstance(self._link, HttpLink) or not returns_rows(bound):
            table = self.arrow(bound)
            return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=rows))
        if self._stopped.is_set():
            raise InterruptError("the session was interrupted before the statement started")
        arriving = self._link.stream(self.render(bound))
        first = next(arriving, None)
        if first is None:  # an answer with no batch at all: nothing to read
            return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))
        schema = naive_times(pa.Table.from_batches([first.slice(0, 0)])).schema

        def naive() -> Iterator[pa.RecordBatch]:
            for batch in itertools.chain([first], arriving):
                if self._stopped.is_set():
                    raise InterruptError("the session was interrupted while the statement ran")
                yield from naive_times(pa.Table.from_batches([batch])).to_batches(max_chunksize=rows)

        return pa.RecordBatchReader.from_batches(schema, naive())

    def insert_arrow(self, target: exp.Table, data: pa.Table | pa.RecordBatchReader) -> int:
        """Append Arrow data to ``target`` (columns by name), streamed as Arrow IPC; returns the rows written.

        One call is one ``INSERT`` (on a server: one HTTP request whose body is sent a batch at a time)."""
        if self._stopped.is_set():
            raise InterruptError("the session was interrupted before the insert started")
        cols = [exp.column(n, quoted=True) for n in data.schema.names]
        head = exp.Schema(this=target.copy(), expressions=cols)
        batches = data.to_batches() if isinstance(data, pa.Table) else data
        return self._link.insert(head, data.schema, batches)

    def register(self, view: str, data: Any) -> None:
        """Make an Arrow table (or batch reader) readable by name on this session: a temporary Memory table."""
        table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
        self.unregister(view)
        name = exp.to_identifier(view, quoted=True)
        cols = [
            exp.ColumnDef(this=exp.to_identifier(f.name, quoted=True), kind=arrow_type(f.type)) for f in table.schema
        ]
        create = exp.Create(
            this=exp.Schema(this=exp.Table(this=name), expressions=cols),
            kind="TABLE",
            properties=exp.Properties(
                expressions=[exp.TemporaryProperty(), exp.EngineProperty(this=exp.var("Memory"))]
            ),
        )
        self._run(render(create, DIALECT), rows=False)
        self.insert_arrow(exp.Table(this=name), table)
        self._registered.add(view)

    def unregister(self, view: str) -> None:
        drop = exp.Drop(tables=[exp.Table(this=exp.to_identifier(view, quoted=True))], kind="TABLE", exists=True)
        self._run(render(drop, DIALECT), rows=False)
        self._registered.discard(view)

    def interrupt(self) -> None:
        self._stopped.set()
        self._link.cancel()

    def close(self) -> None:
        self._link.close()


def arrow_type(dtype: pa.DataType) -> exp.DataType:
    """The ClickHouse column type holding an Arrow column (nullable; times as ``DateTime64(6, 'UTC')``)."""
    if pa.types.is_timestamp(dtype):
        return exp.DataType.build("Nullable(DateTime64(6, 'UTC'))", dialect=DIALECT)
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = arrow_type(dtype.value_type)
        return exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[inner], nested=True)
    simple = {
        pa.bool_(): "Bool", pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32", pa.int64(): "Int64",
        pa.uint8(): "UInt8", pa.uint16(): "UInt16", pa.uint32(): "UInt32", pa.uint64(): "UInt64",
        pa.float32(): "Float32", pa.float64(): "Float64", pa.date32(): "Date32", pa.string(): "String",
        pa.large_string(): "String",
    }  # fmt: skip
    name = simple.get(dtype)
    if name is None:
        raise ValidationError(f"no ClickHouse column type for Arrow type {dtype}", code="invalid")
    return exp.DataType.build(f"Nullable({name})", dialect=DIALECT)


class ClickHouseStore:
    """A ClickHouse store reached by URL: ``chdb:///abs/path`` (the engine in process) or
    ``clickhouse[s]://user:password@host:port/database`` (a server over HTTP, :class:`ServerAddress`).

    Example::

        store = ClickHouseStore("clickhouse://userloop:secret@127.0.0.1:8123/default")
        with store.session() as s:
            s.scalar(sql("SELECT count(*) FROM $events", events=table("p_default", "events")))
    """

    dialect = DIALECT
    capabilities = CAPABILITIES

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown_url = redact(url)
        self.server: ServerAddress | None = None
        self.path: Path | None = None
        if urlsplit(url).scheme in SERVER_SCHEMES:
            self.server = ServerAddress.parse(url)
        else:
            self.path = chdb_path(url)
            self.path.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._control_client: Any = None
        self._control_lock = threading.Lock()
        self._idle: list[Any] = []  # server clients whose sessions ended, reused under a new session id
        self._writer = self._connect()

    def __repr__(self) -> str:
        return f"ClickHouseStore({self.shown_url!r})"

    def _connect(self) -> Link:
        if self.server is not None:
            return HttpLink(self._session_client(), self._control, self._idle_client)
        import chdb

        assert self.path is not None
        con = chdb.connect(str(self.path))
        for name, value in SESSION_SETTINGS.items():
            setting = exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.var(name), expression=literal(value)))])
            con.query(render(setting, DIALECT))
        return ChdbLink(con)

    def _client(self, *, session: bool) -> Any:
        assert self.server is not None
        return server_client(self.server, SESSION_SETTINGS, session=session, shown_url=self.shown_url)

    def _session_client(self) -> Any:
        """A client on a new server session: an idle one given a fresh session id (a client's first connect
        reads the server's version and settings: three requests saved), else a new one."""
        with self._control_lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            return self._client(session=True)
        client.set_client_setting("session_id", str(uuid.uuid4()))
        return client

    def _idle_client(self, client: Any) -> None:
        with self._control_lock:
            self._idle.append(client)

    def _control(self) -> Any:
        """The connection that kills other sessions' statements (no session of its own: it never waits on one)."""
        with self._control_lock:
            if self._control_client is None:
                self._control_client = self._client(session=False)
            return self._control_client

    def render(self, stmt: exp.Expr) -> str:
        return render(stmt, DIALECT)

    @contextmanager
    def session(self) -> Iterator[ChSession]:
        """A private connection (in process) or server session: its settings and temporary tables are its own."""
        session = ChSession(self._connect())
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def writer(self) -> Iterator[ChSession]:
        """The store's own connection, held for the block (each statement is its own write)."""
        with self.lock:
            yield ChSession(self._writer)

    @contextmanager
    def transaction(self) -> Iterator[ChSession]:
        """ClickHouse has no transactions: refused, so a caller that needs atomicity asks for the capability."""
        raise QueryError(
            "the ClickHouse store has no transactions / ClickHouse 存储不支持事务", code="capability_missing"
        )
        yield  # pragma: no cover - a generator for @contextmanager

    def databases(self) -> set[str]:
        with self.writer() as s:
            return {r[0] for r in s.fetchall(sql("SELECT name FROM system.databases"))}

    def project(self, schema: str) -> ClickHouseProject:
        """The read side of one mirrored project (its database is the DuckDB schema's name)."""
        return ClickHouseProject(self, schema)

    def close(self) -> None:
        with self.lock:
            self._writer.close()
        with self._control_lock:
            for client in [*self._idle, *([self._control_client] if self._control_client is not None else [])]:
                client.close()
            self._idle.clear()
            self._control_client = None


class ClickHouseProject:
    """One project's tables in ClickHouse, with what the analysis engine reads of a project
    (:class:`userloop.query.engine.Engine`): schema, property registry, event names and flags, data version,
    sessions, and the short reads the project settings make."""

    def __init__(self, store: ClickHouseStore, schema: str) -> None:
        self.store = store
        self.schema = schema
        self._registry: dict[tuple[str, str], PropertyType] | None = None
        self._event_flags: dict[str, bool] | None = None

    def session(self) -> Any:
        return self.store.session()

    def writer(self) -> Any:
        return self.store.writer()

    def ref(self, name: str, alias: str | None = None) -> exp.Table:
        return exp.table_(name, db=self.schema, quoted=True, alias=alias)

    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]:
        with self.store.writer() as s:
            return s.fetchall(stmt, params)

    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any:
        with self.store.writer() as s:
            return s.scalar(stmt, params)

    def registry(self) -> dict[tuple[str, str], PropertyType]:
        if self._registry is None:
            rows = self.fetchall(sql("SELECT tbl, name, type FROM $r", r=self.ref("registry")))
            self._registry = {(t, n): PropertyType(ty) for t, n, ty in rows}
        return self._registry

    def properties(self, table: str) -> dict[str, PropertyType]:
        return {n: ty for (t, n), ty in self.registry().items() if t == table}

    def event_flags(self) -> dict[str, bool]:
        if self._event_flags is None:
            rows = self.fetchall(sql("SELECT event, active FROM $names", names=self.ref("event_names")))
            self._event_flags = {e: default_active(e) if a is None else bool(a) for e, a in rows}
        return self._event_flags

    def event_names(self) -> set[str]:
        return set(self.event_flags())

    def passive_events(self) -> frozenset[str]:
        return frozenset(e for e, active in self.event_flags().items() if not active)

    def data_version(self) -> int:
        read = sql("SELECT value FROM $c WHERE name = 'data_version'", c=self.ref("counters"))
        rows = self.fetchall(read)
        return int(rows[0][0]) if rows else 0

    def forget_cache(self) -> None:
        self._registry = None
        self._event_flags = None
