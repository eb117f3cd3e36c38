"""The analytic store's seam: what every layer above ``store/`` may ask of the engine that holds events.

Layers above build statements as sqlglot trees (:mod:`userloop.store.sqlbuild`) and hand them to a
:class:`Session`; they never hold a raw connection and never format SQL text. A backend renders a tree in its
dialect, through its table of functions (:mod:`userloop.store.dialects`), and says what it can do
(:class:`Capability`), so a caller that needs, say, transactions asks for it instead of assuming DuckDB.

Long reads run on a private session with a deadline and an id (:func:`Backend.running`): one mechanism for the
timeout, the cancel from another thread and the error a user sees, where there used to be five hand-written ones.

The embedded backend is DuckDB (:mod:`userloop.store.duck`); the ClickHouse backend overrides the dialect and
the session, not the callers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from userloop.core.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from userloop.schema.types import PropertyType

Params = Sequence[Any] | Mapping[str, Any] | None


class Capability(StrEnum):
    """What a backend can do, for callers whose plan depends on it."""

    #: BEGIN/COMMIT/ROLLBACK over several statements (DuckDB yes; ClickHouse no: writes are idempotent batches).
    TRANSACTIONS = "transactions"
    #: UPDATE and DELETE of single rows at OLTP cost (ClickHouse has only mutations).
    ROW_UPDATES = "row_updates"
    #: ``CREATE TEMP TABLE`` private to a session.
    TEMP_TABLES = "temp_tables"
    #: Arrow tables registered on a session and read by name.
    ARROW_SCAN = "arrow_scan"
    #: An engine stage outside SQL within one statement's run: a result read as Arrow on a session, computed on
    #: in the process, and registered back on the same session for the statement that follows (in process, so
    #: the round trip is a copy, not a transfer; :class:`userloop.query.kinds.base.Staged`).
    ARROW_STAGE = "arrow_stage"
    #: Reading files (Parquet, CSV, JSON) by path from SQL.
    FILE_SCAN = "file_scan"
    #: A sealed in-memory instance for analyst SQL.
    SANDBOX = "sandbox"
    #: ClickHouse's ``retention()`` counting: per-person period bits summed per cohort with ``sumForEach`` in one
    #: grouping (:mod:`userloop.query.kinds.retention.native`).
    RETENTION_FN = "retention_fn"


class Rows(Protocol):
    """A statement's result: its column names and its rows."""

    @property
    def columns(self) -> list[str]: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...


class Session(Protocol):
    """One private line to the store. Statements are trees; ``?`` placeholders take ``params``."""

    def execute(self, stmt: exp.Expr, params: Params = None) -> Rows: ...
    def executemany(self, stmt: exp.Expr, rows: Sequence[Sequence[Any]]) -> None: ...
    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]: ...
    def fetchone(self, stmt: exp.Expr, params: Params = None) -> tuple[Any, ...] | None: ...
    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any: ...
    def arrow(self, stmt: exp.Expr, params: Params = None) -> pa.Table: ...
    def batches(self, stmt: exp.Expr, params: Params = None, *, rows: int = 100_000) -> pa.RecordBatchReader: ...
    def register(self, view: str, data: Any) -> None: ...
    def unregister(self, view: str) -> None: ...
    def interrupt(self) -> None: ...


class ProjectReader(Protocol):
    """One project's tables on any backend, as analyses read them: its schema, registry, event flags, data
    version and private sessions (DuckDB's :class:`~userloop.store.duck.ProjectStore`, ClickHouse's
    :class:`~userloop.store.clickhouse.ClickHouseProject`)."""

    schema: str

    def session(self) -> Any: ...  # a context manager yielding a private Session
    def ref(self, name: str, alias: str | None = None) -> exp.Table: ...
    def fetchall(self, stmt: exp.Expr, params: Params = None) -> list[tuple[Any, ...]]: ...
    def scalar(self, stmt: exp.Expr, params: Params = None) -> Any: ...
    def properties(self, table: str) -> dict[str, PropertyType]: ...
    def event_names(self) -> set[str]: ...
    def passive_events(self) -> frozenset[str]: ...
    def data_version(self) -> int: ...


class Backend(Protocol):
    """An analytic store: a dialect, its capabilities, sessions."""

    dialect: str
    capabilities: frozenset[Capability]

    def render(self, stmt: exp.Expr) -> str: ...
    def session(self) -> Any: ...  # a context manager yielding a private Session
    def transaction(self) -> Any: ...  # a context manager yielding the writer's Session inside BEGIN … COMMIT


# deadlines and cancels ----------------------------------------------------------------------------------------
class Deadline:
    """Stops the sessions it watches once ``timeout_s`` has passed, or when cancelled (by id, from any thread).

    Use through :func:`deadline`, which turns the engine's interruption into the :class:`QueryError` a user
    reads (``query_timeout`` or ``query_cancelled``) and frees the id."""

    def __init__(self, timeout_s: float, what: str = "the query") -> None:
        self.timeout_s = timeout_s
        self.what = what
        self.timed_out = threading.Event()
        self.cancelled = threading.Event()
        self._sessions: list[Session] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout_s, self.stop, kwargs={"timeout": True})
        self._timer.daemon = True

    def watch(self, session: Session) -> None:
        with self._lock:
            self._sessions.append(session)
            if self.stopped:
                session.interrupt()

    @property
    def stopped(self) -> bool:
        return self.timed_out.is_set() or self.cancelled.is_set()

    def stop(self, *, timeout: bool = False) -> None:
        with self._lock:
            (self.timed_out if timeout else self.cancelled).set()
            for session in self._sessions:
                session.interrupt()

    def check(self) -> None:
        """Raise the user's error if the deadline passed or the work was cancelled."""
        if self.timed_out.is_set():
            raise QueryError(
                f"{self.what} ran longer than {self.timeout_s:g} s and was stopped; "
                "narrow the date range or raise the timeout",
                code="query_timeout",
            )
        if self.cancelled.is_set():
            raise QueryError(f"{self.what} was cancelled", code="query_cancelled")


_running: dict[str, Deadline] = {}
_running_lock = threading.Lock()


def cancel(query_id: str) -> bool:
    """Stop the running work with this id; False when none runs under it. A statement that had not started yet
    never starts; one that is running is interrupted."""
    with _running_lock:
        running = _running.get(query_id)
    if running is None:
        return False
    running.stop(timeout=False)
    return True


@contextmanager
def deadline(timeout_s: float, *, query_id: str | None = None, what: str = "the query") -> Iterator[Deadline]:
    """A deadline for the block, registered under ``query_id`` for :func:`cancel`.

    Engine errors raised in the block become :class:`QueryError`: ``query_timeout``/``query_cancelled`` when
    the deadline stopped the work, else the engine's first line (``query``)."""
    watch = Deadline(timeout_s, what)
    if query_id is not None:
        with _running_lock:
            if query_id in _running:
                raise QueryError(f"a query with id {query_id!r} is already running", code="query_conflict")
            _running[query_id] = watch
    watch._timer.start()
    try:
        yield watch
        watch.check()
    except QueryError:
        raise
    except Exception as exc:
        if watch.stopped:
            watch.check()
        if _is_engine_error(exc):
            raise QueryError(f"{watch.what} failed in the engine: {str(exc).splitlines()[0]}") from exc
        raise
    finally:
        watch._timer.cancel()
        if query_id is not None:
            with _running_lock:
                _running.pop(query_id, None)


_ENGINE_ERRORS: list[type[BaseException]] = []


def capabilities_of(project: object) -> frozenset[Capability]:
    """What the backend holding ``project`` (a :class:`ProjectReader`) can do: its store's capabilities."""
    return frozenset(getattr(getattr(project, "store", None), "capabilities", ()))


def engine_errors(*kinds: type[BaseException]) -> None:
    """Declare a backend's exception types as engine errors (each backend module calls it once)."""
    _ENGINE_ERRORS.extend(k for k in kinds if k not in _ENGINE_ERRORS)


def _is_engine_error(exc: BaseException) -> bool:
    return isinstance(exc, tuple(_ENGINE_ERRORS))


def is_engine_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the engine refusing a statement (bad input, not a bug): for callers that fall back."""
    return _is_engine_error(exc)
