"""Run analyses: compile a definition, execute its statements on DuckDB, shape the result, cache it.

Every query runs on its own cursor with a timeout and can be cancelled by id from another thread
(:func:`cancel`). Results are cached by (project, definition, today, data version): any load bumps the version
(:meth:`ProjectStore.bump_data_version`), so a cached result is never stale. An engine made for a caller
without the ``pii`` right masks breakdowns by personal data and refuses filters on it (:class:`Context`); the
right is part of the cache key, so a result computed for one caller is never served to the other.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from datetime import date
from typing import Any

import duckdb
import orjson
from pydantic import BaseModel, Field

from userloop.core.clock import today_in
from userloop.core.errors import QueryError
from userloop.query.compile import Context, render
from userloop.query.kinds import parse_definition
from userloop.query.kinds.base import Analysis, Frame
from userloop.store.duck import ProjectStore

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0


class QueryResult(BaseModel):
    """What ``POST /api/v1/query`` and ``userloop query --json`` return."""

    kind: str
    result: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)
    took_ms: float
    cached: bool
    data_version: int
    query_id: str | None = None
    sql: dict[str, str] | None = None


class ResultCache:
    """A small LRU of results by key; one per process (the server's runtime holds it)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[str, QueryResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> QueryResult | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: str, value: QueryResult) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _Running:
    """A query in flight: its cursor and whether it was asked to stop (a timeout or a cancel)."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor
        self.timed_out = threading.Event()
        self.cancelled = threading.Event()

    def stop(self, *, timeout: bool) -> None:
        (self.timed_out if timeout else self.cancelled).set()
        self.cursor.interrupt()

    def check(self, timeout_s: float) -> None:
        if self.timed_out.is_set():
            raise QueryError(
                f"the query ran longer than {timeout_s:g} s and was stopped; "
                "narrow the date range or raise the timeout",
                code="query_timeout",
            )
        if self.cancelled.is_set():
            raise QueryError("the query was cancelled", code="query_cancelled")


_running: dict[str, _Running] = {}
_running_lock = threading.Lock()


def cancel(query_id: str) -> bool:
    """Stop the running query with this id; False when none runs under it. A statement that had not started
    yet never starts; one that is running is interrupted."""
    with _running_lock:
        running = _running.get(query_id)
    if running is None:
        return False
    running.stop(timeout=False)
    return True


class Engine:
    """Runs analyses for one project."""

    def __init__(
        self, project: ProjectStore, timezone: str, cache: ResultCache | None = None, *, pii: bool = True
    ) -> None:
        self.project = project
        self.timezone = timezone
        self.cache = cache if cache is not None else ResultCache()
        #: The caller may see phone numbers and e-mail addresses in clear.
        self.pii = pii

    def context(self, today: date | None = None) -> Context:
        return Context(
            schema=self.project.schema,
            timezone=self.timezone,
            today=today or today_in(self.timezone),
            event_props=self.project.properties("events"),
            user_props=self.project.properties("users"),
            event_names=self.project.event_names(),
            pii=self.pii,
        )

    def compile(self, definition: Analysis | dict[str, Any], *, today: date | None = None) -> dict[str, str]:
        """The SQL each statement of ``definition`` runs, rendered for DuckDB."""
        analysis = _as_analysis(definition)
        return {name: render(tree) for name, tree in analysis.statements(self.context(today)).items()}

    def run(
        self,
        definition: Analysis | dict[str, Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        query_id: str | None = None,
        use_cache: bool = True,
        explain: bool = False,
        today: date | None = None,
    ) -> QueryResult:
        analysis = _as_analysis(definition)
        ctx = self.context(today)
        version = self.project.data_version()
        key = _cache_key(self.project.schema, analysis, ctx.today, version, self.pii)
        if use_cache and not explain:
            hit = self.cache.get(key)
            if hit is not None:
                return hit.model_copy(update={"cached": True, "took_ms": 0.0, "query_id": query_id})
        started = time.perf_counter()
        trees = analysis.statements(ctx)
        sql = {name: render(tree) for name, tree in trees.items()}
        data = self._execute(sql, timeout_s=timeout_s, query_id=query_id)
        result = analysis.shape(ctx, data)
        out = QueryResult(
            kind=analysis.kind,
            result=result.model_dump(mode="json"),
            warnings=ctx.warnings,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            cached=False,
            data_version=version,
            query_id=query_id,
            sql=sql if explain else None,
        )
        if not explain:
            self.cache.put(key, out)
        return out

    def _execute(self, sql: dict[str, str], *, timeout_s: float, query_id: str | None) -> dict[str, Frame]:
        timeout_s = min(max(timeout_s, 0.1), MAX_TIMEOUT_S)
        with self.project.store.lock:
            cursor = self.project.con.cursor()
        running = _Running(cursor)
        if query_id is not None:
            with _running_lock:
                if query_id in _running:
                    cursor.close()
                    raise QueryError(f"a query with id {query_id!r} is already running", code="query_conflict")
                _running[query_id] = running
        timer = threading.Timer(timeout_s, running.stop, kwargs={"timeout": True})
        timer.start()
        out: dict[str, Frame] = {}
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            for name, text in sql.items():
                running.check(timeout_s)
                result = cursor.execute(text)
                columns = [d[0] for d in result.description or []]
                out[name] = Frame(columns, result.fetchall())
                running.check(timeout_s)
        except duckdb.InterruptException as exc:
            running.check(timeout_s)
            raise QueryError("the query was interrupted", code="query_cancelled") from exc
        except duckdb.Error as exc:
            raise QueryError(f"the query failed in the engine: {str(exc).splitlines()[0]}") from exc
        finally:
            timer.cancel()
            if query_id is not None:
                with _running_lock:
                    _running.pop(query_id, None)
            cursor.close()
        return out


def _as_analysis(definition: Analysis | dict[str, Any]) -> Analysis:
    return definition if isinstance(definition, Analysis) else parse_definition(definition)


def _cache_key(schema: str, analysis: Analysis, today: date, version: int, pii: bool) -> str:
    doc = analysis.model_dump(mode="json", by_alias=True)
    blob = orjson.dumps([schema, doc, today.isoformat(), version, pii], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()
