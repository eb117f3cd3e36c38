"""The write path into ClickHouse: each loader batch as one part, identity merges as person overrides.

Where events live is the workspace's ``[storage] events_url`` (:class:`userloop.store.workspace.WorkspaceConfig`).
With it set, DuckDB stays the loader's ledger (checks, duplicates, identities, people, the registry: what a batch
must read before it writes) and ClickHouse receives what each batch wrote:

1. inside the loader's DuckDB transaction (:meth:`ProjectWrites.record`) the batch takes the next batch number; its
   written events go to the outbox table ``ch_outbox`` and its identity merges to ``person_overrides`` (old person
   → surviving person, versioned by batch number). A chain (A→B, later B→C) rewrites A's row to C, so a read
   resolves any person with one lookup;
2. after the commit (:meth:`ProjectWrites.ship`) every batch not yet shipped, oldest first, is one ``INSERT`` of
   Arrow rows (one part per month) with ``insert_deduplication_token`` = database and batch number. A crash
   between that insert and the outbox's cleanup sends the batch again; ClickHouse drops it (the table remembers
   the last :data:`~userloop.store.clickhouse_ddl.DEDUP_WINDOW` tokens), so every acknowledged event is stored
   once. The small tables (registry, event names, counters, settings) are then replaced whole, atomically
   (``EXCHANGE TABLES``);
3. the ``events`` view applies the overrides at read time (:func:`~userloop.store.clickhouse_ddl.events_view`);
   :meth:`ProjectWrites.squash`, run in the background, rewrites the partitions that hold overridden persons'
   events with their final person (``REPLACE PARTITION``: ClickHouse cannot update a sort-key column in place),
   drops the folded overrides and refreshes people, identities and items.

This is the design ClickHouse-based products use for identity merges (PostHog's "person overrides", squashed in
the background), since rewriting events at every merge is costly there.

Why batch numbers and not the spool's byte position: a batch number is taken in the same DuckDB transaction as the
rows it names, so it serves file imports as well as the collector, and the collector's smaller loads when it
isolates a poison record (several loads of one spool range).

Not yet: people and identities on ClickHouse are refreshed by the squash, not per batch (the analyses read
events); a cluster layout of the overrides; the profile platform's tables written on ClickHouse.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from userloop.store.clickhouse_ddl import EVENT_PARTS, OVERRIDES, Column, events_view, table_ddl
from userloop.store.sqlbuild import sql

if TYPE_CHECKING:
    from userloop.store.clickhouse import ChSession, ClickHouseStore
    from userloop.store.duck import DuckSession, EventStore, ProjectStore

__all__ = ["OUTBOX", "ProjectWrites", "attach", "detach", "writes_of"]

log = logging.getLogger(__name__)

#: DuckDB: each recorded batch's events until shipped (the events' columns and ``_batch``).
OUTBOX = "ch_outbox"
#: Counters (DuckDB ``counters``): the last batch recorded and the last batch shipped.
RECORDED, SHIPPED = "ch_batch", "ch_shipped"
#: Tables replaced whole after a shipment (small), and by the squash (people).
SMALL_TABLES = ("registry", "event_names", "counters", "settings")
PEOPLE_TABLES = ("users", "identities", "items")
#: Overrides on ClickHouse after which a shipment squashes (folds them into the events).
SQUASH_AFTER = 50_000


class _Sink:
    """One events URL, opened on first use (chdb serves one folder per process)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.RLock()
        self._store: ClickHouseStore | None = None
        self._owned = False  # opened here (closed by detach), not handed in
        self.projects: dict[str, ProjectWrites] = {}

    @property
    def store(self) -> ClickHouseStore:
        if self._store is None:
            from userloop.store.clickhouse import ClickHouseStore

            self._store = ClickHouseStore(self.url)
            self._owned = True
        return self._store

    def close(self) -> None:
        if self._store is not None and self._owned:
            self._store.close()
        self._store = None


_SINKS: weakref.WeakKeyDictionary[EventStore, _Sink] = weakref.WeakKeyDictionary()


def attach(events: EventStore, url: str, store: ClickHouseStore | None = None) -> None:
    """Write the projects of ``events`` to the ClickHouse store at ``url`` as well (``store``: one already open)."""
    sink = _Sink(url)
    sink._store = store
    _SINKS[events] = sink


def detach(events: EventStore) -> None:
    """Stop writing the projects of ``events`` to ClickHouse; closes the store if :func:`attach` did not get it."""
    sink = _SINKS.pop(events, None)
    if sink is not None:
        with sink.lock:
            sink.close()


def writes_of(project: ProjectStore) -> ProjectWrites | None:
    """The write path of ``project`` when its workspace keeps events in ClickHouse, else None."""
    sink = _SINKS.get(project.store)
    if sink is None:
        return None
    if project.schema not in sink.projects:
        sink.projects[project.schema] = ProjectWrites(project, sink)
    return sink.projects[project.schema]


class ProjectWrites:
    """One project's write path: record batches in the loader's transaction, ship them, squash overrides."""

    def __init__(self, project: ProjectStore, sink: _Sink) -> None:
        self.project = project
        self.sink = sink
        self.database = project.schema
        # the events' property names when the outbox (DuckDB) and event_parts (ClickHouse) last had every column
        self._outbox_shape: tuple[str, ...] | None = None
        self._parts_shape: tuple[str, ...] | None = None
        self._sent: dict[str, tuple[Any, ...]] = {}
        self._table_columns: dict[str, list[Column]] = {}  # table → (rows, hash of rows) as last sent

    @property
    def store(self) -> ClickHouseStore:
        return self.sink.store

    def _ch(self, name: str) -> exp.Table:
        return exp.table_(name, db=self.database, quoted=True)

    # in the loader's transaction ------------------------------------------------------------------------
    def record(
        self, s: DuckSession, names: list[exp.Expr], rows: exp.Expr, params: list[Any], merges: dict[int, int]
    ) -> int:
        """Record a batch: ``rows`` (a query of the events it wrote, columns ``names``, bound with ``params``)
        into the outbox, ``merges`` (old person → surviving person) into the overrides. Returns its number.
        :meth:`prepare` ran before the transaction began."""
        batch = self._counter(s, RECORDED) + 1
        self._set_counter(s, RECORDED, batch)
        target = exp.Schema(this=self.project.ref(OUTBOX), expressions=[exp.column("_batch", quoted=True), *names])
        select = sql("SELECT CAST(? AS BIGINT), * FROM ($rows)", rows=rows)
        s.execute(exp.Insert(this=target, expression=select), [batch, *params])
        if merges:
            s.register("_ul_chm", pa.table({"old": list(merges), "new": list(merges.values())}))
            overrides = self.project.ref(OVERRIDES)
            s.execute(  # a chain: whoever was merged into an old person now belongs to its survivor
                sql(
                    "UPDATE $o AS p SET new_person = m.new, version = ? FROM _ul_chm AS m WHERE p.new_person = m.old",
                    o=overrides,
                ),
                [batch],
            )
            s.execute(sql("INSERT INTO $o SELECT old, new, ? FROM _ul_chm", o=overrides), [batch])
            s.unregister("_ul_chm")
        return batch

    def prepare(self, s: DuckSession) -> None:
        """Before a load's transaction (``s`` outside one): the outbox, the overrides and the counters exist, and
        the outbox has every column events have. Outside, because what is remembered of it must not be rolled
        back with a failed load."""
        self._prepare(s)

    def _prepare(self, s: DuckSession) -> None:
        shape = self._shape()
        if self._outbox_shape == shape:
            return
        events = self._duck_columns(s)
        s.execute(
            sql(
                "CREATE TABLE IF NOT EXISTS $o AS SELECT CAST(0 AS BIGINT) AS _batch, * FROM $e LIMIT 0",
                o=self.project.ref(OUTBOX),
                e=self.project.ref("events"),
            )
        )
        s.execute(
            sql(
                "CREATE TABLE IF NOT EXISTS $o (old_person BIGINT NOT NULL, new_person BIGINT NOT NULL, "
                "version BIGINT NOT NULL)",
                o=self.project.ref(OVERRIDES),
            )
        )
        for name in (RECORDED, SHIPPED):
            s.execute(
                sql(
                    "INSERT INTO $c SELECT ?, 0 WHERE NOT EXISTS (SELECT 1 FROM $c WHERE name = ?)",
                    c=self.project.ref("counters"),
                ),
                [name, name],
            )
        have = {c.name for c in self._duck_columns(s, OUTBOX)}
        for column in events:
            if column.name not in have:
                add = exp.Alter(
                    this=self.project.ref(OUTBOX),
                    kind="TABLE",
                    actions=[
                        exp.ColumnDef(
                            this=exp.to_identifier(column.name, quoted=True),
                            kind=exp.DataType.build(column.type, dialect="duckdb"),
                        )
                    ],
                )
                s.execute(add)
        self._outbox_shape = shape

    def _shape(self) -> tuple[str, ...]:
        """The events' property names (the registry, cached by the project): what the columns depend on."""
        return tuple(sorted(self.project.properties("events")))

    def _duck_columns(self, s: DuckSession | None = None, table: str = "events") -> list[Column]:
        read = sql(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = $schema AND table_name = $table ORDER BY ordinal_position",
            schema=self.project.schema,
            table=table,
        )
        rows = s.fetchall(read) if s is not None else self.project.fetchall(read)
        return [Column(n, t, nullable == "YES") for n, t, nullable in rows]

    def _counter(self, s: DuckSession, name: str) -> int:
        value = s.scalar(sql("SELECT value FROM $c WHERE name = ?", c=self.project.ref("counters")), [name])
        return int(value or 0)

    def _set_counter(self, s: DuckSession, name: str, value: int) -> None:
        s.execute(sql("UPDATE $c SET value = ? WHERE name = ?", c=self.project.ref("counters")), [value, name])

    # after the commit -----------------------------------------------------------------------------------
    def ship(self) -> int:
        """Send every recorded batch not yet shipped, oldest first; returns the events sent. Safe to repeat: a
        batch sent before (then a crash) is dropped by ClickHouse's deduplication."""
        with self.sink.lock, self.store.writer() as ch:
            if self._parts_shape is None and not self._laid_out(ch):
                self.adopt()
                return 0
            with self.project.writer() as s:
                self._prepare(s)
                shipped, last = self._counter(s, SHIPPED), self._counter(s, RECORDED)
            if shipped == last:
                return 0
            shape = self._shape()
            if self._parts_shape != shape:
                self._parts_shape = None  # unknown until the columns are there
                self._add_columns(ch)
                self._parts_shape = shape
            sent = merged = 0
            for batch in range(shipped + 1, last + 1):
                n, m = self._ship_batch(ch, batch)
                sent, merged = sent + n, merged + m
            self.replace_tables(ch, SMALL_TABLES)
        if merged and self.pending_overrides() >= SQUASH_AFTER:
            self.squash()
        return sent

    def _ship_batch(self, ch: ChSession, batch: int) -> tuple[int, int]:
        with self.project.session() as duck:
            events = duck.arrow(
                sql("SELECT * EXCLUDE (_batch) FROM $o WHERE _batch = ?", o=self.project.ref(OUTBOX)), [batch]
            )
            overrides = duck.arrow(
                sql(
                    "SELECT old_person, new_person, CAST(version AS UBIGINT) AS version FROM $o WHERE version = ?",
                    o=self.project.ref(OVERRIDES),
                ),
                [batch],
            )
        token = f"{self.database}:{batch}"
        if overrides.num_rows:
            self._insert(ch, OVERRIDES, overrides, token)
        if events.num_rows:
            self._insert(ch, EVENT_PARTS, events, token)
        self._shipped(batch)
        return events.num_rows, overrides.num_rows

    def _shipped(self, batch: int) -> None:
        """Forget a batch ClickHouse now holds (a crash before this sends it again, and ClickHouse drops it)."""
        with self.project.atomic() as s:
            s.execute(sql("DELETE FROM $o WHERE _batch = ?", o=self.project.ref(OUTBOX)), [batch])
            self._set_counter(s, SHIPPED, batch)

    def _insert(self, ch: ChSession, table: str, rows: pa.Table, token: str) -> None:
        """One ``INSERT`` of ``rows``, deduplicated by ``token`` (ClickHouse keeps it per table)."""
        ch.execute(_set("insert_deduplication_token", token))
        try:
            ch.insert_arrow(self._ch(table), rows)
        finally:
            ch.execute(_set("insert_deduplication_token", ""))

    def _laid_out(self, ch: ChSession) -> bool:
        found = ch.scalar(
            sql("SELECT count(*) FROM system.tables WHERE database = ? AND name = ?"), [self.database, EVENT_PARTS]
        )
        return bool(found)

    def _add_columns(self, ch: ChSession) -> None:
        """Property columns the DuckDB events gained since: added to ``event_parts``, and the view made again."""
        have = {
            r[0]
            for r in ch.fetchall(
                sql("SELECT name FROM system.columns WHERE database = ? AND table = ?"), [self.database, EVENT_PARTS]
            )
        }
        columns = self._duck_columns()
        missing = [c for c in columns if c.name not in have]
        for column in missing:
            (create,) = table_ddl(self.database, "events", [column])
            kind = create.this.expressions[0].args["kind"]
            ch.execute(
                exp.Alter(
                    this=self._ch(EVENT_PARTS),
                    kind="TABLE",
                    actions=[exp.ColumnDef(this=exp.to_identifier(column.name, quoted=True), kind=kind, exists=True)],
                )
            )
        if missing:
            ch.execute(events_view(self.database, columns))

    def adopt(self) -> None:
        """Start writing a project ClickHouse does not hold yet: copy it whole (verified), then count every
        recorded batch as shipped (the copy holds them)."""
        from userloop.store.mirror import copy_project

        with self.sink.lock:
            with self.project.writer() as s:
                self._prepare(s)
            copy_project(self.project, self.store, written=True)
            self._sent, self._parts_shape = {}, None
            with self.project.atomic() as s:
                s.execute(sql("DELETE FROM $o", o=self.project.ref(OUTBOX)))
                self._set_counter(s, SHIPPED, self._counter(s, RECORDED))

    def refresh(self) -> None:
        """Send the small tables now (a setting or a property's description changed outside a load)."""
        with self.sink.lock, self.store.writer() as ch:
            if not self._laid_out(ch):
                self.adopt()
                return
            self.replace_tables(ch, SMALL_TABLES, always=True)

    def pending(self) -> int:
        """Batches recorded and not yet shipped."""
        with self.project.writer() as s:
            self._prepare(s)
            return self._counter(s, RECORDED) - self._counter(s, SHIPPED)

    # in the background ----------------------------------------------------------------------------------
    def pending_overrides(self) -> int:
        with self.store.writer() as ch:
            return int(ch.scalar(sql("SELECT count(*) FROM $o", o=self._ch(OVERRIDES))) or 0)

    def squash(self) -> int:
        """Fold the overrides into the events: each partition holding an overridden person's events is written
        again with the final persons and replaces the old one; the folded overrides are then deleted; people,
        identities and items are refreshed. Returns the persons whose overrides were folded."""
        with self.sink.lock, self.store.writer() as ch:
            upto = ch.scalar(sql("SELECT max(version) FROM $o", o=self._ch(OVERRIDES)))
            if upto is not None:
                self._rewrite(ch, int(upto))
            folded = ch.scalar(
                sql("SELECT count(DISTINCT old_person) FROM $o WHERE version <= ?", o=self._ch(OVERRIDES)), [upto or 0]
            )
            if folded:
                ch.execute(sql("DELETE FROM $o WHERE version <= ?", o=self._ch(OVERRIDES)), [upto])
            self.replace_tables(ch, PEOPLE_TABLES)
        return int(folded or 0)

    def _rewrite(self, ch: ChSession, upto: int) -> None:
        parts = self._ch(EVENT_PARTS)
        partitions = ch.fetchall(
            sql(
                "SELECT DISTINCT _partition_id FROM $p WHERE user_id IN (SELECT old_person FROM $o WHERE version <= ?)"
                " ORDER BY 1",
                p=parts,
                o=self._ch(OVERRIDES),
            ),
            [upto],
        )
        staging = self._ch(f"{EVENT_PARTS}__squash")
        stored = ch.fetchall(
            sql("SELECT name FROM system.columns WHERE database = ? AND table = ? ORDER BY position"),
            [self.database, EVENT_PARTS],
        )  # event_parts' own columns: DuckDB may have more, not yet sent
        names = [exp.column(name, quoted=True) for (name,) in stored]
        for (partition,) in partitions:
            ch.execute(_drop(staging))
            ch.execute(exp.Create(this=staging, kind="TABLE", expression=parts.copy()))
            month = exp.Anonymous(this="toYYYYMM", expressions=[exp.column("time", quoted=True)])
            read = sql("SELECT $cols FROM $v WHERE $month = ?", cols=names, v=self._ch("events"), month=month)
            ch.execute(
                exp.Insert(
                    this=exp.Schema(this=staging.copy(), expressions=[n.copy() for n in names]), expression=read
                ),
                [int(partition)],
            )
            replace = exp.ReplacePartition(
                expression=exp.Partition(expressions=[exp.PartitionId(this=exp.Literal.string(partition))]),
                source=staging.copy(),
            )
            ch.execute(exp.Alter(this=parts.copy(), kind="TABLE", actions=[replace]))
            ch.execute(_drop(staging.copy()))

    def replace_tables(self, ch: ChSession, tables: tuple[str, ...], *, always: bool = False) -> None:
        """Replace each of ``tables`` the DuckDB project has with its DuckDB rows, atomically (a new table
        filled, then exchanged with the old one); a table whose rows did not change since this process last sent
        it (same count and hash of its rows) is left alone unless ``always``."""
        for table in tables:
            columns = self._table_columns.get(table) or self._duck_columns(table=table)
            if table not in PEOPLE_TABLES:  # the small tables' columns are fixed; people gain property columns
                self._table_columns[table] = columns
            if not columns:
                continue
            (print_,) = self.project.fetchall(
                sql("SELECT count(*), bit_xor(hash(r)) FROM $t AS r", t=self.project.ref(table))
            )
            if not always and self._sent.get(table) == print_:
                continue
            live, fresh = self._ch(table), self._ch(f"{table}__next")
            for stmt in table_ddl(self.database, table, columns):
                ch.execute(stmt)
            ch.execute(_drop(fresh))
            ch.execute(exp.Create(this=fresh, kind="TABLE", expression=live.copy()))
            names = [exp.column(c.name, quoted=True) for c in columns]
            with self.project.session() as duck:
                rows = duck.batches(sql("SELECT $cols FROM $t", cols=names, t=self.project.ref(table)))
                ch.insert_arrow(fresh.copy(), rows)
            ch.execute(_exchange(fresh.copy(), live.copy()))
            ch.execute(_drop(fresh.copy()))
            self._sent[table] = print_


def _drop(target: exp.Table) -> exp.Expr:
    return exp.Drop(tables=[target.copy()], kind="TABLE", exists=True)


def _set(name: str, value: str) -> exp.Expr:
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.var(name), expression=exp.Literal.string(value)))])


def _exchange(a: exp.Table, b: exp.Table) -> exp.Expr:
    """``EXCHANGE TABLES a AND b`` (sqlglot has no node for it: a command of two rendered, quoted names)."""
    from userloop.store.clickhouse import DIALECT

    return exp.Command(this="EXCHANGE", expression=f" TABLES {a.sql(DIALECT)} AND {b.sql(DIALECT)}")
