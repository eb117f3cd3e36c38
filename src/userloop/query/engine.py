"""Run analyses: compile a definition, run its statement trees on the project's store, shape the result, cache it.

Every query runs on a private session under the store's one deadline (:func:`userloop.store.backend.deadline`)
and can be cancelled by its id from another thread with :func:`cancel` (the backend's, which the API's
``DELETE /query/{id}`` calls through this module). Results are cached by (project, definition, today, data
version): any load bumps the version (:meth:`ProjectStore.bump_data_version`), so a cached result is never
stale. An engine made for a caller without the ``pii`` right masks breakdowns by personal data and refuses
filters on it (:class:`Context`); the right is part of the cache key, so a result computed for one caller is
never served to the other.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from userloop.core.clock import today_in
from userloop.query.compile import Context, render
from userloop.query.kinds import parse_definition
from userloop.query.kinds.base import LOOKUP_KEYS, Analysis, FoldDeclined, Frame, Staged
from userloop.query.result import QueryResult
from userloop.store.backend import Deadline, ProjectReader, Session, cancel, capabilities_of, deadline

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_TIMEOUT_S", "Engine", "QueryResult", "ResultCache", "cancel"]

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0


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


class Engine:
    """Runs analyses for one project."""

    def __init__(
        self, project: ProjectReader, timezone: str, cache: ResultCache | None = None, *, pii: bool = True
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
            passive_events=self.project.passive_events(),
            capabilities=capabilities_of(self.project),
        )

    def compile(self, definition: Analysis | dict[str, Any], *, today: date | None = None) -> dict[str, str]:
        """The SQL each statement of ``definition`` runs, rendered for DuckDB."""
        analysis = self._project_defaults(_as_analysis(definition))
        return {name: render(_plain(tree)) for name, tree in analysis.statements(self.context(today)).items()}

    def _project_defaults(self, analysis: Analysis) -> Analysis:
        """``analysis`` with the project's settings where it leaves them out (before the cache key is made, so a
        changed setting never returns a stale result): an LTV ``sum`` sums the project's money property."""
        from userloop.query.kinds.ltv import LtvQuery
        from userloop.schema.types import PropertyType
        from userloop.store.settings import money_property

        if isinstance(analysis, LtvQuery) and analysis.math == "sum" and analysis.value_property is None:
            money = money_property(self.project)
            if self.project.properties("events").get(money) is PropertyType.NUMBER:
                return analysis.model_copy(update={"value_property": money})
        return analysis

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
        analysis = self._project_defaults(_as_analysis(definition))
        ctx = self.context(today)
        version = self.project.data_version()
        key = _cache_key(self.project.schema, analysis, ctx.today, version, self.pii)
        if use_cache and not explain:
            hit = self.cache.get(key)
            if hit is not None:
                return hit.model_copy(update={"cached": True, "took_ms": 0.0, "query_id": query_id})
        started = time.perf_counter()
        trees = analysis.statements(ctx)
        data = self._execute(trees, timeout_s=timeout_s, query_id=query_id)
        result = analysis.shape(ctx, data)
        out = QueryResult(
            kind=analysis.kind,
            result=result.model_dump(mode="json"),
            warnings=ctx.warnings,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            cached=False,
            data_version=version,
            query_id=query_id,
            sql={name: render(_plain(tree)) for name, tree in trees.items()} if explain else None,
        )
        if not explain:
            self.cache.put(key, out)
        return out

    def _execute(
        self, trees: Mapping[str, exp.Expr | Staged], *, timeout_s: float, query_id: str | None
    ) -> dict[str, Frame]:
        """Run the statements in order on a private session under one deadline (and ``query_id`` for
        :func:`cancel`)."""
        timeout_s = min(max(timeout_s, 0.1), MAX_TIMEOUT_S)
        out: dict[str, Frame] = {}
        with deadline(timeout_s, query_id=query_id) as watch, self.project.session() as session:
            watch.watch(session)
            for name, tree in trees.items():
                watch.check()
                if isinstance(tree, Staged):
                    out[name] = _run_staged(session, tree, watch)
                else:
                    rows = session.execute(tree)
                    out[name] = Frame(rows.columns, rows.fetchall())
        return out


def _run_staged(session: Session, staged: Staged, watch: Deadline) -> Frame:
    """``staged``'s source as Arrow, its fold, then the statement reading the fold's table, on one session and
    one snapshot (a transaction: the fold's lookups see the rows the source read); the table is registered for
    that statement only. A fold that declines its rows leaves the statement to SQL alone."""

    def lookup(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
        if staged.lookup is None:
            raise LookupError("this stage has no lookup")
        session.register(LOOKUP_KEYS, pa.table({"key": keys}))
        try:
            found = session.arrow(staged.lookup)
        finally:
            session.unregister(LOOKUP_KEYS)
        return found["value"].take(pc.index_in(keys, value_set=found["key"])).combine_chunks()

    session.execute(exp.Transaction())
    try:
        # a table source is the fold's alone (no name here holds it), so it can let go of it as it goes; a stream
        # is closed here however the fold ends, since the session runs nothing while it is open
        stream = session.batches(staged.source) if staged.streamed else None
        try:
            folded = staged.fold(stream if stream is not None else session.arrow(staged.source), lookup)
        except FoldDeclined:
            if stream is not None:
                stream.close()
            rows = session.execute(staged.plain)
            return Frame(rows.columns, rows.fetchall())
        finally:
            if stream is not None:
                stream.close()
        pa.default_memory_pool().release_unused()  # the fold's freed buffers, before the statement's own memory
        watch.check()
        session.register(staged.relation, folded)
        try:
            rows = session.execute(staged.then)
            return Frame(rows.columns, rows.fetchall())
        finally:
            session.unregister(staged.relation)
    finally:
        session.execute(exp.Rollback())  # nothing was written: the snapshot is let go


def _plain(tree: exp.Expr | Staged) -> exp.Expr:
    """The statement in SQL alone (a staged one's equivalent)."""
    return tree.plain if isinstance(tree, Staged) else tree


def _as_analysis(definition: Analysis | dict[str, Any]) -> Analysis:
    return definition if isinstance(definition, Analysis) else parse_definition(definition)


def _cache_key(schema: str, analysis: Analysis, today: date, version: int, pii: bool) -> str:
    doc = analysis.model_dump(mode="json", by_alias=True)
    blob = orjson.dumps([schema, doc, today.isoformat(), version, pii], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()
