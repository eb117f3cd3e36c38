"""The loader: checks a staged relation, resolves identities and writes events, profiles and items.

Every source (SDK adapters, files, the simulator) ends here, so every record meets the same rules:

1. discover the properties the batch carries; register new ones (name rules, type from the first value);
   a name that differs only in case from a registered one (or from a new one seen earlier in the batch) and a
   new name past the table's cap are refused per record, with a reason naming the name;
2. check every record in one vectorised pass (first failing rule → field + reason); only the refused records
   are kept, in ``_chk``;
3. set rejects aside with their reason and raw input; drop duplicates (same ``event_id`` within the batch or
   already stored), looking for repeats inside the batch only when a count of distinct ids says there are;
4. apply identity records (signup, bind, unbind), then give unknown ids a new person key;
5. write events, then profile and item operations in record order; update first/last seen.

Steps 2–5 run in one DuckDB transaction: a batch is written whole or not at all. New property columns are
added before it, in small transactions of their own: DuckDB's memory for ``ALTER TABLE`` grows with the square
of the columns added in one transaction (2,000 at once took 1.2 GB), and a column without values is harmless
if the batch then fails.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby

import numpy as np
import pyarrow as pa
from sqlglot import exp

from userloop.ingest import identity as ident_mod
from userloop.ingest import profile_sql
from userloop.ingest.checks import (
    EVENT_RECORDS,
    ITEM_RECORDS,
    KEYS,
    PROFILE_RECORDS,
    TABLE_OF_RECORDS,
    UNTYPED_PROPERTY_RECORDS,
    Check,
    conflict_check,
    event_name_problem,
    json_properties_check,
    name_checks,
    of_types,
    record_checks,
    shown_value,
    table_name_checks,
    typed_family,
    value_expr,
)
from userloop.ingest.identity import final_merges
from userloop.ingest.identity_writes import apply_plan, bind_op
from userloop.ingest.profiles import apply_item_ops, apply_profile_ops
from userloop.ingest.rules import WINDOW_HI, WINDOW_LO, property_name_problem
from userloop.ingest.source import PropSource, Staged
from userloop.schema.names import (
    MAX_TABLE_PROPERTIES,
    cap_reason,
    collision_reason,
    fold,
    name_problem,
)
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, PropertyType
from userloop.store import sqlbuild as sb
from userloop.store.activity import active_cond
from userloop.store.clickhouse_writes import writes_of
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.rejects import insert_rejects
from userloop.store.sqlbuild import sql

log = logging.getLogger(__name__)
CHK = sb.table(None, "_ul_chk")  # one slim row per refused record: its type, field and reason
SKIP = sb.table(None, "_ul_skip")  # valid rows not to write: duplicates, refused identity records
BAD = sb.table(None, "_ul_bad")  # every row not to write: rejected or skipped
IDS = sb.table(None, "_ul_ids")  # per distinct id of the batch's written records: first row, login flag, time span
NEWIDS = sb.table(None, "_ul_newids")
MAP = sb.table(None, "_ul_map")  # the batch's distinct ids → person
REFUSED = sb.table(
    None, "_ul_refused"
)  # per record, the first property name refused in its table (collision, full table)
#: New property columns added per transaction (see the module docstring).
REGISTER_CHUNK = 50
#: Checks judged in one CASE (see Loader._check_pass).
CHECKS_PER_PASS = 200
#: Records that may be written: neither rejected nor skipped.
NOT_BAD = sql("_row NOT IN (SELECT _row FROM $bad)", bad=BAD)
IS_EVENT = of_types(EVENT_RECORDS)


@dataclass(frozen=True)
class TimePolicy:
    """Which event times a project accepts, relative to now."""

    max_future_seconds: int = 3600
    max_past_days: int = 3650


@dataclass
class LoadResult:
    """What one load did. ``accepted`` counts records written; duplicates are neither written nor rejected."""

    source: str = ""
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    events: int = 0
    new_properties: list[str] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: LoadResult) -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        self.events += other.events
        self.new_properties += [p for p in other.new_properties if p not in self.new_properties]
        self.by_type.update(other.by_type)
        self.seconds += other.seconds

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "events": self.events,
            "new_properties": self.new_properties,
            "by_type": dict(sorted(self.by_type.items())),
            "seconds": round(self.seconds, 3),
        }


#: What discovery knows of a property: source, kind and text of its first value, and that value's row.
_Seen = tuple[PropSource, str | None, str | None, int | None]


@dataclass(frozen=True)
class _Column:
    """A property as it lands in ``_chk``: the staged source, the table and the registered type."""

    slot: str
    table: str
    name: str
    ptype: PropertyType
    source: PropSource


@dataclass
class _Plan:
    """What the batch's shape and properties decide before the load transaction starts."""

    tables: set[str]
    bad_events: dict[str, str]
    bad_names: dict[str, str]  # names that break the name rules, in any table
    refused: dict[tuple[str, str], str]  # (table, name) → reason: case collisions, a full table
    columns: list[_Column]
    new_props: list[tuple[str, str]]
    passive: tuple[str, ...] = ()  # the batch's passive event names: they leave first and last seen alone
    #: Whether every record of the batch is an event (typed as one): then every written record is, and the ids'
    #: aggregate needs no type filters.
    events_only: bool = False
    events: frozenset[str] = frozenset()  # the event names of the batch's event records


class Loader:
    """Loads staged batches into one project. Not thread-safe by itself: it takes the store's lock.

    ``caps``: the most properties each table may hold (default :data:`MAX_TABLE_PROPERTIES`).
    """

    s: DuckSession  # the writer's session, while a load runs

    def __init__(
        self, project: ProjectStore, policy: TimePolicy | None = None, *, caps: dict[str, int] | None = None
    ) -> None:
        self.project = project
        self.policy = policy or TimePolicy()
        self.caps = MAX_TABLE_PROPERTIES if caps is None else caps
        # where events also live (the workspace's [storage] events_url): each batch recorded in its transaction
        # and shipped after it (userloop.store.clickhouse_writes)
        self.writes = writes_of(project)
        self._merges: dict[int, int] = {}

    def load(self, staged: Staged, *, now_ms: int | None = None) -> LoadResult:
        started = time.perf_counter()
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.project.writer() as session:
            self.s = session
            plan = self._plan(staged)
            if self.writes is not None:
                self.writes.prepare(session)
            with self.project.atomic() as self.s:
                result = self._load(staged, now, plan)
                self.project.bump_data_version()
        self.project.forget_cache()
        if self.writes is not None:
            self._ship()
        result.seconds = time.perf_counter() - started
        return result

    def _ship(self) -> None:
        """Send the committed batch to ClickHouse. A failure there fails no load: the batch stays in the outbox
        and the next load (or :meth:`ProjectWrites.ship`) sends it."""
        assert self.writes is not None
        try:
            self.writes.ship()
        except Exception:
            log.exception("sending loaded events to ClickHouse failed; they stay in the outbox and are sent later")

    # the steps -----------------------------------------------------------------------------------------
    def _plan(self, staged: Staged) -> _Plan:
        """The batch's tables, bad names and columns; registers its new properties (outside the load)."""
        tables, bad_events, events, types = self._shape(staged)
        bad_names, refused, columns, new = self._properties(staged, tables)
        self._register(new)
        new_props = [(t, n) for t, props in new.items() for n in props]
        passive = tuple(sorted(e for e in events if self.project.is_passive(e)))
        events_only = bool(types) and all(t in EVENT_RECORDS for t in types)
        return _Plan(
            tables, bad_events, bad_names, refused, columns, new_props, passive, events_only, frozenset(events)
        )

    def _register(self, new: dict[str, dict[str, PropertyType]]) -> None:
        """Add the new property columns, :data:`REGISTER_CHUNK` per transaction (bounded memory)."""
        items = [(t, n, ptype) for t, props in new.items() for n, ptype in props.items()]
        for start in range(0, len(items), REGISTER_CHUNK):
            with self.project.atomic():
                for tbl, group in groupby(items[start : start + REGISTER_CHUNK], key=lambda item: item[0]):
                    self.project.register(tbl, {n: ptype for _, n, ptype in group})

    def _load(self, staged: Staged, now_ms: int, plan: _Plan) -> LoadResult:
        result = LoadResult(source=staged.source)
        columns_ = plan.columns
        result.new_properties = [f"{t}.{n}" for t, n in plan.new_props]
        json_refusals = self._refused_rows(staged, plan.refused)
        self._check_pass(staged, plan, now_ms, json_refusals)
        counts = self._counts(staged)
        result.received = sum(counts.values())
        result.rejected = self._write_rejects(staged, now_ms) if counts_rejected(counts) else 0
        records = any(rtype not in EVENT_RECORDS for rtype, _ in counts)
        result.duplicates = self._mark_duplicates(staged, records=records, refused=counts_rejected(counts) > 0)
        result.rejected += self._identities(staged, now_ms)
        clean = self._settle_bad_rows()
        self._allocate_persons(staged, now_ms, plan, clean=clean)
        result.events = self._write_events(staged, columns_, now_ms, plan, clean=clean)
        if self.writes is not None:
            names, rows = self._event_rows(staged, tuple(c for c in columns_ if c.table == "events"), clean=clean)
            self.writes.record(self.s, names, rows, [now_ms], self._merges)
        profile_count = self._write_profiles(staged, columns_, now_ms)
        item_count = self._write_items(staged, columns_, now_ms)
        result.accepted = result.events + profile_count + item_count + self._unbinds_written
        self._remember_records(staged, now_ms)
        for (rtype, ok), n in counts.items():
            if ok:
                result.by_type[rtype] += n
        for drop in _DROPS:
            self.s.execute(drop)
        return result

    def _shape(self, staged: Staged) -> tuple[set[str], dict[str, str], set[str], set[str | None]]:
        """The tables the batch writes to, its event names that break the rules (with the reason), all of its
        event names, and its record types."""
        pairs = self.s.fetchall(
            _memo(("shape", staged.relation), lambda: sql("SELECT DISTINCT type, event FROM $rel", rel=staged.ref))
        )
        types = {t for t, _ in pairs}
        tables = {t for t, records in TABLE_OF_RECORDS.items() if types & set(records)}
        bad_events = {}
        for rtype, event in pairs:
            if rtype in EVENT_RECORDS and event is not None:
                problem = event_name_problem(event)
                if problem:
                    bad_events[event] = problem
        events = {e for t, e in pairs if t in EVENT_RECORDS and e is not None}
        return tables, bad_events, events, types

    def _properties(
        self, staged: Staged, tables: set[str]
    ) -> tuple[dict[str, str], dict[tuple[str, str], str], list[_Column], dict[str, dict[str, PropertyType]]]:
        """Judge the batch's properties per table: bad names, refused names, columns, and the new ones to add.

        Names are compared as DuckDB compares columns (:func:`fold`): a spelling other than the one registered,
        or than a new one whose first value comes earlier in the batch, is refused; so is a new name once its
        table holds as many properties as its cap allows.
        """
        seen = self._discover(staged, tables)
        registry = self.project.registry()
        spellings = {(t, fold(n)): n for t, n in registry}
        counts = Counter(t for t, _ in registry)
        bad: dict[str, str] = {}
        refused: dict[tuple[str, str], str] = {}
        new: dict[str, dict[str, PropertyType]] = {}
        candidates: dict[str, dict[str, tuple[PropSource, PropertyType]]] = {}  # table → new name → source, type
        columns: list[_Column] = []
        for (table, name), (source, first_kind, first_value, _) in sorted(seen.items(), key=_first_seen(registry)):
            problem = property_name_problem(name)
            if problem:
                bad[name] = problem
                continue
            ptype = registry.get((table, name))
            if ptype is None:
                existing = spellings.get((table, fold(name)))
                if existing is not None:
                    refused[(table, name)] = collision_reason(name, existing, registered=(table, existing) in registry)
                    continue
                if source.kind == "json" and first_kind is None:
                    continue  # only nulls so far: nothing to store, nothing to type yet
                if staged.infer_text and source.kind == "typed" and source.duck_type == "VARCHAR":
                    ptype = _infer_text(self._first_value(staged, source))
                else:
                    ptype = _infer(source, first_kind, first_value)
                if ptype is None:
                    bad[name] = _uninferable(name, source, first_kind)
                    continue
                spellings[(table, fold(name))] = name
                candidates.setdefault(table, {})[name] = (source, ptype)
                continue
            columns.append(_column(columns, table, name, ptype, source))
        for table, found in candidates.items():
            cap = self.caps.get(table)
            room = len(found) if cap is None else cap - counts[table]
            blocked = {n for t, n in refused if t == table} | set(bad)
            admitted, over = self._admit(staged, table, list(found), room, blocked)
            for name in over:
                refused[(table, name)] = cap_reason(name, table, cap or 0, have=counts[table])
            for name, (source, ptype) in found.items():
                if name in admitted:
                    new.setdefault(table, {})[name] = ptype
                    columns.append(_column(columns, table, name, ptype, source))
        return bad, refused, columns, new

    def _admit(
        self, staged: Staged, table: str, names: list[str], room: int, blocked: set[str]
    ) -> tuple[set[str], set[str]]:
        """(admitted, refused) of a table's new ``names`` (first seen first) when ``room`` more fit.

        When they do not all fit, whole records are admitted in row order, so that no column is added for a
        record that is refused anyway: a record carrying a ``blocked`` name (refused for another reason) or a
        name already refused is skipped, and one whose new names do not fit has them refused. A name seen only
        in skipped records is neither: no column, and its records are refused for their other names.
        """
        if len(names) <= room:
            return set(names), set()
        if not staged.json_props_column:
            return set(names[: max(room, 0)]), set(names[max(room, 0) :])
        stmt = sql(
            """SELECT list(k) FROM (
                    SELECT _row, unnest($keys) AS k FROM $rel WHERE $keys IS NOT NULL AND $tbl = ?)
                WHERE list_contains(?, k) GROUP BY _row ORDER BY _row""",
            keys=KEYS,
            rel=staged.ref,
            tbl=TABLE_CASE,
        )
        rows = self.s.fetchall(stmt, [table, [*names, *blocked]])
        admitted: set[str] = set()
        refused: set[str] = set()
        for (carried,) in rows:
            if any(n in blocked or n in refused for n in carried):
                continue
            fresh = [n for n in carried if n not in admitted]
            if len(admitted) + len(fresh) <= room:
                admitted.update(fresh)
            else:
                refused.update(fresh)
        return admitted, refused

    def _discover(self, staged: Staged, tables: set[str]) -> dict[tuple[str, str], _Seen]:
        """(table, name) → (source, kind of the first value, first value as text, row of the first value)."""
        seen: dict[tuple[str, str], _Seen] = {}
        typed = [p for p in staged.props if p.kind == "typed"]
        for prop, table in self._tables_of_typed(staged, typed, tables):
            seen[(table, prop.name)] = (prop, prop.duck_type, None, 0)
        if staged.json_props_column:
            for table, name, kind, first, row in self._discover_json(staged):
                seen[(table, name)] = (PropSource(name, "json", staged.json_props_column), kind, first, row)
        return seen

    def _discover_json(self, staged: Staged) -> list[tuple[str, str, str | None, str | None, int | None]]:
        """(table, key, first kind, first value, its row) of the JSON properties; kinds for unregistered keys."""
        assert staged.json_props_column
        props = sb.col(staged.json_props_column)
        judged = sql(
            "_error IS NULL AND $keys IS NOT NULL AND NOT list_contains($untyped, type)",
            keys=KEYS,
            untyped=list(UNTYPED_PROPERTY_RECORDS),
        )
        ignore = tuple(staged.ignore_keys) or ("",)
        keys = self.s.fetchall(
            _memo(
                ("json keys", staged.relation, ignore),
                lambda: sql(
                    """SELECT DISTINCT tbl, k FROM (
                    SELECT tbl, unnest(_k) AS k FROM (
                        SELECT DISTINCT $tbl AS tbl, $keys AS _k FROM $rel WHERE $judged))
                WHERE tbl IS NOT NULL AND NOT list_contains($ignore, k)""",
                    tbl=TABLE_CASE,
                    keys=KEYS,
                    rel=staged.ref,
                    judged=judged,
                    ignore=list(ignore),
                ),
            )
        )
        registry = self.project.registry()
        known: list[tuple[str, str, str | None, str | None, int | None]] = [
            (t, k, None, None, None) for t, k in keys if (t, k) in registry or name_problem(k)
        ]
        new = [(t, k) for t, k in keys if (t, k) not in registry and not name_problem(k)]
        if not new:
            return known
        first_rows = sql("(SELECT * FROM $rel ORDER BY _row LIMIT 10000)", rel=staged.ref)
        found: list[tuple[str, str, str | None, str | None, int | None]] = []
        for relation in (first_rows, staged.ref):  # the head of the batch almost always decides
            done = {(f[0], f[1]) for f in found}
            missing = [f"{t}.{k}" for t, k in new if (t, k) not in done]
            if not missing:
                break
            stmt = sql(
                """SELECT tbl, k, arg_min(json_type($props[k]), _row), arg_min($props[k] ->> '$', _row), min(_row)
                    FROM (SELECT _row, $props, $tbl AS tbl, unnest($keys) AS k FROM $relation WHERE $judged)
                    WHERE list_contains(?, tbl || '.' || k) AND json_type($props[k]) <> 'NULL'
                    GROUP BY ALL""",
                props=props,
                tbl=TABLE_CASE,
                keys=KEYS,
                relation=relation,
                judged=judged,
            )
            found += self.s.fetchall(stmt, [missing])
        kinds = {(t, k): (kind, first, row) for t, k, kind, first, row in found}
        return known + [(t, k, *kinds.get((t, k), (None, None, None))) for t, k in new]

    def _first_value(self, staged: Staged, source: PropSource) -> str | None:
        row = self.s.fetchone(
            sql(
                "SELECT $c FROM $rel WHERE $c IS NOT NULL ORDER BY _row LIMIT 1",
                c=sb.col(source.column),
                rel=staged.ref,
            )
        )
        return None if row is None else str(row[0])

    def _tables_of_typed(
        self, staged: Staged, props: list[PropSource], tables: set[str]
    ) -> list[tuple[PropSource, str]]:
        """Which table each typed column feeds: the tables of the records that carry a value in it."""
        if len(tables) <= 1 or not props:
            return [(p, t) for p in props for t in tables]
        counts = [sql("count($c)", c=sb.col(p.column)) for p in props]
        rows = self.s.fetchall(sql("SELECT type, $counts FROM $rel GROUP BY type", counts=counts, rel=staged.ref))
        table_of = {r: t for t, records in TABLE_OF_RECORDS.items() for r in records}
        used = {(i, table_of[r[0]]) for r in rows if r[0] in table_of for i, n in enumerate(r[1:]) if n}
        return [(p, t) for i, p in enumerate(props) for t in sorted(tables) if (i, t) in used]

    def _refused_rows(self, staged: Staged, refused: dict[tuple[str, str], str]) -> bool:
        """Match the records' JSON property names against the refused ones, by a join (see table_name_checks)."""
        if not refused or not staged.json_props_column:
            return False
        names = pa.table(
            {
                "tbl": [t for t, _ in refused],
                "name": [n for _, n in refused],
                "reason": list(refused.values()),
            }
        )
        self.s.register("_ul_refused_names", names)
        try:
            self.s.execute(
                sql(
                    """CREATE OR REPLACE TEMP TABLE $refused AS
                    SELECT _row, arg_min(k, pos) AS _ref_name, arg_min(r.reason, pos) AS _ref_reason
                    FROM (SELECT _row, $tbl AS tbl, unnest($keys) AS k, unnest(range(1, len($keys) + 1)) AS pos
                          FROM $rel WHERE $keys IS NOT NULL) AS s
                    JOIN _ul_refused_names AS r ON r.tbl = s.tbl AND r.name = s.k
                    GROUP BY _row""",
                    refused=REFUSED,
                    tbl=TABLE_CASE,
                    keys=KEYS,
                    rel=staged.ref,
                )
            )
        finally:
            self.s.unregister("_ul_refused_names")
        return True

    def _check_pass(self, staged: Staged, plan: _Plan, now_ms: int, json_refusals: bool) -> None:
        """One vectorised pass: every refused record's first failing check (field, reason) into the slim ``_chk``
        (the accepted records leave nothing: writing a row per record cost as much as judging them).

        The statements depend on the batch's shape, not on its time: the window of accepted times is bound as
        parameters (see :func:`_check_statements`).
        """
        window = [now_ms - self.policy.max_past_days * 86_400_000, now_ms + self.policy.max_future_seconds * 1000]
        statements = _check_statements(
            _CheckShape(
                relation=staged.relation,
                json_column=staged.json_props_column,
                props=tuple(staged.props),
                max_past_ms=self.policy.max_past_days * 86_400_000,
                max_future_ms=self.policy.max_future_seconds * 1000,
                bad_events=tuple(sorted(plan.bad_events.items())),
                bad_names=tuple(sorted(plan.bad_names.items())),
                refused=tuple(sorted(plan.refused.items())),
                columns=tuple(plan.columns),
                json_refusals=json_refusals,
            )
        )
        for stmt, windowed in statements:
            self.s.execute(stmt, window if windowed else None)

    def _counts(self, staged: Staged) -> Counter[tuple[str, bool]]:
        """(record type, accepted by the checks) → records: the batch's records per type less the refused ones
        (``_chk`` keeps only those)."""
        totals = self.s.fetchall(
            _memo(
                ("types", staged.relation),
                lambda: sql("SELECT coalesce(type, '?'), count(*) FROM $rel GROUP BY ALL", rel=staged.ref),
            )
        )
        refused = dict(self.s.fetchall(_REFUSED_COUNTS))
        counts: Counter[tuple[str, bool]] = Counter()
        for rtype, n in totals:
            bad = refused.get(rtype, 0)
            if n > bad:
                counts[(rtype, True)] = n - bad
            if bad:
                counts[(rtype, False)] = bad
        return counts

    def _write_rejects(self, staged: Staged, now_ms: int) -> int:
        """Keep each refused record with its reason and its input (the line, or the row as JSON)."""

        def build() -> exp.Expr:
            raw = sb.col("_raw", "s") if staged.raw_available else sql("CAST(to_json(s) AS VARCHAR)")
            rows = sql(
                "SELECT ?, c._row, c._field, c._reason, $raw, make_timestamp(? * 1000) "
                "FROM $chk AS c JOIN $rel AS s USING (_row) WHERE c._reason IS NOT NULL",
                raw=raw,
                chk=CHK,
                rel=staged.ref,
            )
            return insert_rejects(self.project.ref("rejects"), rows)

        stmt = _memo(("rejects", self.project.schema, staged.relation, staged.raw_available), build)
        (n,) = self.s.fetchone(stmt, [staged.source, now_ms]) or (0,)
        return int(n)

    def _mark_duplicates(self, staged: Staged, *, records: bool, refused: bool) -> int:
        """Rows to skip: an ``event_id`` repeated in the batch or already stored.

        Whether any id repeats is decided first on 64-bit hashes of the valid records' ids
        (:func:`_any_repeated`); only then are the repeated hashes looked for, and only their rows pay for the
        exact string comparison (most batches, a file of unique ids, stop at the test). Events are compared
        with the stored events of the batch's time span (a resent event keeps its time; DuckDB skips row groups
        outside the span), and only when the project holds any events at all and that span holds any; profile,
        item and identity records (``records``: the batch has some) are compared with the ids in
        ``records_seen``. ``refused``: the check pass refused some records (else no statement needs to leave
        them out).
        """
        s, q = self.s, _duplicates(self.project.schema, staged.relation, refused)
        s.execute(q.create)
        if _any_repeated(s.arrow(q.hashes).column("h").to_numpy()):
            candidates = [r[0] for r in s.fetchall(q.repeated)]
            s.execute(q.repeats, [candidates])
        if s.fetchone(q.any_event):
            lo, hi = s.fetchone(q.span) or (None, None)
            bounds = [int(lo or 0), int(hi or 0)]
            if lo is not None and s.fetchone(q.any_stored, bounds):
                s.execute(q.stored, bounds)
        if records:
            s.execute(q.seen)
        (n,) = s.fetchone(q.count) or (0,)
        return int(n)

    def _remember_records(self, staged: Staged, now_ms: int) -> None:
        """Keep the ids of the non-event records written, so that loading them again adds nothing."""
        stmt = _memo(
            ("remember", self.project.schema, staged.relation),
            lambda: sql(
                "INSERT INTO $seen SELECT event_id, make_timestamp(? * 1000) FROM $rel "
                "WHERE NOT $is_event AND $not_bad",
                seen=self.project.ref("records_seen"),
                rel=staged.ref,
                is_event=IS_EVENT,
                not_bad=NOT_BAD,
            ),
        )
        self.s.execute(stmt, [now_ms])

    def _settle_bad_rows(self) -> bool:
        """Gather every row that must not be written: rejected, duplicate, or refused by identity rules; whether
        there is none (then the statements that write need not leave any out)."""
        self.s.execute(_SETTLE)
        return not self.s.fetchone(_ANY_BAD)

    _unbinds_written = 0

    def _identities(self, staged: Staged, now_ms: int) -> int:
        """Apply signup / bind / unbind records; returns how many were refused."""
        select = _memo(
            ("identity records", staged.relation),
            lambda: sql(
                "SELECT _row, type, distinct_id, is_login_id, original_id, CAST(identities AS VARCHAR) FROM $rel "
                "WHERE type IN ('track_signup', 'track_id_bind', 'track_id_unbind') "
                "AND _row NOT IN (SELECT _row FROM $chk WHERE _reason IS NOT NULL) "
                "AND _row NOT IN (SELECT _row FROM $skip) ORDER BY time, _row",
                rel=staged.ref,
                chk=CHK,
                skip=SKIP,
            ),
        )
        rows = self.s.fetchall(select)
        self._unbinds_written = 0
        self._merges = {}
        if not rows:
            return 0
        ops = [op for op in (bind_op(*r) for r in rows) if op is not None]
        keys = ident_mod.PersonKeys(self.project.take_person_keys)
        resolver = ident_mod.IdentityResolver(self.s, self.project.ref("identities"), keys)
        plan = resolver.apply(ops)
        apply_plan(self.project, self.s, plan, now_ms)
        self._merges = final_merges(plan.merges)
        self._unbinds_written = sum(1 for op in ops if op.kind == "unbind" and op.row not in plan.rejects)
        if plan.rejects:
            rej = pa.table({"_row": list(plan.rejects), "reason": list(plan.rejects.values())})
            self.s.register("_ul_idrej", rej)
            self.s.execute(sql("INSERT INTO $skip SELECT _row, reason FROM _ul_idrej", skip=SKIP))
            rows_ = sql(
                "SELECT ?, c._row, 'identities', r.reason, CAST(to_json(c) AS VARCHAR), make_timestamp(? * 1000) "
                "FROM $rel AS c JOIN _ul_idrej AS r USING (_row)",
                rel=staged.ref,
            )
            self.s.execute(insert_rejects(self.project.ref("rejects"), rows_), [staged.source, now_ms])
            self.s.unregister("_ul_idrej")
        return len(plan.rejects)

    def _allocate_persons(self, staged: Staged, now_ms: int, plan: _Plan, *, clean: bool) -> None:
        """Give every id seen for the first time a new person key (login ids typed as such); stamp first/last
        seen from the batch's active events (``passive`` names the others). One aggregate over the batch's ids,
        joined once to the project's identities, serves all three: a new person is written with its first and
        last seen, and only the persons already known are updated. The aggregate filters only what it must: no
        bad rows to leave out when ``clean``, no record types to tell apart when the batch holds events only,
        no activity to test when none of them is passive either."""
        s = self.s
        q = _persons(self.project.schema, staged.relation, plan.passive, clean=clean, events_only=plan.events_only)
        s.execute(q.ids)
        s.execute(q.newids)
        (count,) = s.fetchone(q.count) or (0,)
        base = 0
        if count:
            base = self.project.take_person_keys(int(count)) - 1
            s.execute(q.identities, [base, now_ms])
            s.execute(q.users, [base, now_ms, now_ms])
        # The batch's ids and their persons: a small map that the writes below join to, instead of every
        # identity of the project.
        s.execute(q.map, [base])
        s.execute(q.seen)

    def _event_rows(
        self, staged: Staged, props: tuple[_Column, ...], *, clean: bool = False
    ) -> tuple[list[exp.Expr], exp.Select]:
        """The events columns a batch writes and the query of its rows (``?``: the time received, in ms);
        ``clean``: the batch has no bad rows to leave out."""
        names = sb.columns(["event_id", "event", "user_id", "distinct_id", "time", "received_at", "lib"])
        head = sql(
            "SELECT c.event_id, c.event, i.user_id, c.distinct_id, make_timestamp(c.time * 1000), "
            "make_timestamp(? * 1000), c.lib"
        ).expressions
        rows = _resolved(staged.ref, EVENT_RECORDS, head, clean=clean)
        rows.select(*(value_expr(c.source, c.ptype) for c in props), copy=False)
        return [*names, *(sb.name(c.name) for c in props)], rows

    def _write_events(self, staged: Staged, columns_: list[_Column], now_ms: int, plan: _Plan, *, clean: bool) -> int:
        props = tuple(c for c in columns_ if c.table == "events")

        def build() -> exp.Expr:
            names, rows = self._event_rows(staged, props, clean=clean)
            return exp.Insert(this=exp.Schema(this=self.project.ref("events"), expressions=names), expression=rows)

        insert = _memo(("events", self.project.schema, staged.relation, props, clean), build)
        # Events carry their own time; their physical order is free, which lets DuckDB write in parallel.
        self.s.execute(_UNORDERED)
        try:
            (n,) = self.s.fetchone(insert, [now_ms]) or (0,)
        finally:
            self.s.execute(_ORDERED)
        if n and clean:  # every event record was written
            self.project.register_events(sorted(plan.events))
        elif n:
            written = _memo(
                ("event names", staged.relation),
                lambda: sql(
                    "SELECT DISTINCT event FROM $rel WHERE $is_event AND $not_bad",
                    rel=staged.ref,
                    is_event=IS_EVENT,
                    not_bad=NOT_BAD,
                ),
            )
            self.project.register_events([r[0] for r in self.s.fetchall(written)])
        return int(n)

    def _write_profiles(self, staged: Staged, columns_: list[_Column], now_ms: int) -> int:
        props = tuple(c for c in columns_ if c.table == "users")

        def build() -> exp.Expr:
            keys = _keys_expr(staged) or sql("CAST(NULL AS VARCHAR[])")
            head = sql("SELECT i.user_id, c.type, c.time, c._row, $keys AS _keys", keys=keys).expressions
            ops = _resolved(staged.ref, PROFILE_RECORDS, head)
            ops.select(*(exp.alias_(value_expr(c.source, c.ptype), sb.name(c.name)) for c in props), copy=False)
            return sql("CREATE OR REPLACE TEMP TABLE $ops AS $q", ops=profile_sql.OPS, q=ops)

        shape = (staged.relation, staged.json_props_column, tuple(staged.props), props)
        (count,) = self.s.fetchone(_memo(("profiles", *shape), build)) or (0,)
        if count:
            types = {c.name: c.ptype for c in props}
            mixed = profile_sql.apply_simple_ops(self.project, self.s, types, now_ms)
            ordered = sql(
                "SELECT * EXCLUDE (time, _row) FROM $ops WHERE user_id IN ($mixed) ORDER BY time NULLS LAST, _row",
                ops=profile_sql.OPS,
                mixed=mixed,
            )
            rows = self.s.arrow(ordered)
            if rows.num_rows:
                apply_profile_ops(self.project, self.s, rows, types, now_ms)
        self.s.execute(_DROP_OPS)
        return int(count)

    def _write_items(self, staged: Staged, columns_: list[_Column], now_ms: int) -> int:
        props = tuple(c for c in columns_ if c.table == "items")

        def build() -> exp.Expr:
            query = sql(
                "SELECT item_type, item_id, type FROM $rel WHERE $items AND $not_bad ORDER BY time NULLS LAST, _row",
                rel=staged.ref,
                items=of_types(ITEM_RECORDS),
                not_bad=NOT_BAD,
            )
            assert isinstance(query, exp.Select)
            return query.select(*(exp.alias_(value_expr(c.source, c.ptype), sb.name(c.name)) for c in props))

        ops = self.s.arrow(_memo(("items", staged.relation, props), build))
        if ops.num_rows == 0:
            return 0
        apply_item_ops(self.project, self.s, ops, now_ms)
        return ops.num_rows


_REFUSED_COUNTS = sb.freeze(sql("SELECT coalesce(type, '?'), count(*) FROM $chk GROUP BY ALL", chk=CHK))
_SETTLE = sb.freeze(
    sql(
        "CREATE OR REPLACE TEMP TABLE $bad AS "
        "SELECT _row FROM $chk WHERE _reason IS NOT NULL UNION SELECT _row FROM $skip",
        bad=BAD,
        chk=CHK,
        skip=SKIP,
    )
)
_ANY_BAD = sb.freeze(sql("SELECT 1 FROM $bad LIMIT 1", bad=BAD))
_DROPS = tuple(
    sb.freeze(sql("DROP TABLE IF EXISTS $t", t=temp)) for temp in (CHK, SKIP, NEWIDS, BAD, IDS, MAP, REFUSED)
)
_UNORDERED = sb.freeze(sql("SET preserve_insertion_order = false"))
_ORDERED = sb.freeze(sql("SET preserve_insertion_order = true"))
_DROP_OPS = sb.freeze(sql("DROP TABLE $ops", ops=profile_sql.OPS))


def _resolved(
    rel: exp.Table, record_types: tuple[str, ...], head: list[exp.Expr], *, clean: bool = False
) -> exp.Select:
    """``SELECT head``: staged rows ``c`` of these types that are to be written, joined to their person ``i``
    (``clean``: no row is bad, so none is tested against the bad rows)."""
    query = sql(
        "SELECT $head FROM $rel AS c JOIN $map AS i ON i.distinct_id = c.distinct_id "
        "WHERE list_contains($types, c.type) AND $not_bad",
        head=head,
        rel=rel,
        map=MAP,
        types=list(record_types),
        not_bad=exp.true() if clean else sql("c._row NOT IN (SELECT _row FROM $bad)", bad=BAD),
    )
    assert isinstance(query, exp.Select)
    return query


@dataclass(frozen=True)
class _Duplicates:
    """The statements that find a batch's duplicates (see Loader._mark_duplicates)."""

    create: exp.Expr
    hashes: exp.Expr
    span: exp.Expr
    repeated: exp.Expr
    repeats: exp.Expr
    any_event: exp.Expr
    any_stored: exp.Expr
    stored: exp.Expr
    seen: exp.Expr
    count: exp.Expr


def _any_repeated(hashes: np.ndarray) -> bool:
    """Whether a value of ``hashes`` occurs more than once: once sorted, a repeat sits next to itself.

    NumPy sorts the 64-bit hashes in place (a copy when they are read-only, as Arrow's buffers are) with its
    vectorised sort (AVX2, AVX-512) for a fraction of what DuckDB's ``ORDER BY`` costs; DuckDB's
    ``count(DISTINCT …)`` costs more still (a hash table of one entry per record). 20M ids, hashing and fetching
    included: 1.3-1.9 s of CPU against 2.6-3.2 s for the ``ORDER BY`` (4.2 s for the count), if on one thread."""
    if hashes.size < 2:
        return False
    ordered = hashes if hashes.flags.writeable else hashes.copy()
    ordered.sort()
    return bool((ordered[1:] == ordered[:-1]).any())


@functools.lru_cache(maxsize=64)
def _duplicates(schema: str, relation: str, refused: bool) -> _Duplicates:
    """The statements for a batch of ``relation`` in ``schema``; ``refused``: the check pass refused some of its
    records (the valid ones are the others)."""
    rel = sb.table(None, relation)
    events = sb.table(schema, "events")
    valid = sql("_row NOT IN (SELECT _row FROM $chk WHERE _reason IS NOT NULL)", chk=CHK) if refused else exp.true()
    within = sql("time BETWEEN make_timestamp(? * 1000) AND make_timestamp(? * 1000)")
    statements = _Duplicates(
        create=sql("CREATE OR REPLACE TEMP TABLE $skip (_row BIGINT, reason VARCHAR)", skip=SKIP),
        hashes=sql("SELECT hash(event_id) AS h FROM $rel WHERE $valid", rel=rel, valid=valid),
        span=sql(
            "SELECT min(time), max(time) FROM $rel WHERE $is_event AND $valid", rel=rel, is_event=IS_EVENT, valid=valid
        ),
        repeated=sql(
            "SELECT _row FROM (SELECT _row, hash(event_id) AS _h FROM $rel WHERE $valid) "
            "WHERE _h IN (SELECT hash(event_id) FROM $rel WHERE $valid GROUP BY 1 HAVING count(*) > 1)",
            rel=rel,
            valid=valid,
        ),
        repeats=sql(
            """INSERT INTO $skip
            SELECT _row, NULL FROM (
                SELECT _row, row_number() OVER (PARTITION BY event_id ORDER BY _row) AS rn
                FROM $rel WHERE list_contains(?, _row))
            WHERE rn > 1""",
            skip=SKIP,
            rel=rel,
        ),
        any_event=sql("SELECT 1 FROM $events LIMIT 1", events=events),
        any_stored=sql("SELECT 1 FROM $events WHERE $within LIMIT 1", events=events, within=within),
        stored=sql(
            "INSERT INTO $skip SELECT s._row, NULL FROM $rel AS s "
            "SEMI JOIN (SELECT event_id FROM $events WHERE $within) AS e USING (event_id) "
            "WHERE $is_event AND $valid",
            skip=SKIP,
            rel=rel,
            events=events,
            within=within,
            is_event=IS_EVENT,
            valid=valid,
        ),
        seen=sql(
            "INSERT INTO $skip SELECT s._row, NULL FROM $rel AS s "
            "SEMI JOIN $seen AS r ON r.record_id = s.event_id WHERE NOT $is_event AND $valid",
            skip=SKIP,
            rel=rel,
            seen=sb.table(schema, "records_seen"),
            is_event=IS_EVENT,
            valid=valid,
        ),
        count=sql("SELECT count(DISTINCT _row) FROM $skip", skip=SKIP),
    )
    for stmt in vars(statements).values():
        sb.freeze(stmt)
    return statements


@dataclass(frozen=True)
class _Persons:
    """The statements that give a batch's new ids their person and stamp first/last seen."""

    ids: exp.Expr
    newids: exp.Expr
    count: exp.Expr
    identities: exp.Expr
    users: exp.Expr
    map: exp.Expr
    seen: exp.Expr


@functools.lru_cache(maxsize=64)
def _persons(
    schema: str, relation: str, passive: tuple[str, ...], *, clean: bool = False, events_only: bool = False
) -> _Persons:
    """The statements for a batch of ``relation`` in ``schema`` whose passive event names are ``passive`` (part of
    the cache key: first and last seen count active events only); ``clean``: the batch has no bad rows;
    ``events_only``: every record of the batch is an event.

    ``ids`` holds each distinct id of the batch with its person when the project knows it already (NULL for a
    new one): the one join to the project's identities. New ids are numbered by their first row. The aggregate
    leaves out only what it must: its filters cost it a tenth of its time (20M rows, 1M ids)."""
    identities, users = sb.table(schema, "identities"), sb.table(schema, "users")
    active = active_cond(passive) if events_only else sql("$e AND $a", e=IS_EVENT, a=active_cond(passive))
    plain = active == exp.true()
    lo, hi = (
        sql(f"{f}(time)" if plain else f"{f}(time) FILTER (WHERE $active)", active=active) for f in ("min", "max")
    )
    kept = [] if events_only else [of_types(EVENT_RECORDS + PROFILE_RECORDS)]
    kept += [] if clean else [NOT_BAD]
    statements = _Persons(
        ids=sql(
            """CREATE OR REPLACE TEMP TABLE $ids AS
            SELECT n.*, i.user_id FROM (
                SELECT 'd' AS _ns, distinct_id, min(_row) AS first_row,
                       coalesce(bool_or(is_login_id), false) AS login, $lo AS lo, $hi AS hi
                FROM $rel WHERE $kept
                GROUP BY distinct_id) AS n
            LEFT JOIN $identities AS i ON i.ns = n._ns AND i.id_value = n.distinct_id""",
            ids=IDS,
            lo=lo,
            hi=hi,
            rel=sb.table(None, relation),
            kept=exp.and_(*kept) if kept else exp.true(),
            identities=identities,
        ),
        newids=sql(
            """CREATE OR REPLACE TEMP TABLE $newids AS
            SELECT _ns AS ns, CASE WHEN login THEN $login ELSE $anonymous END AS id_type,
                   distinct_id AS id_value, row_number() OVER (ORDER BY first_row) AS k, lo, hi
            FROM $ids WHERE user_id IS NULL""",
            newids=NEWIDS,
            login=ident_mod.LOGIN,
            anonymous=ident_mod.ANONYMOUS,
            ids=IDS,
        ),
        count=sql("SELECT count(*) FROM $newids", newids=NEWIDS),
        identities=sql(
            "INSERT INTO $identities SELECT ns, id_type, id_value, k + ?, make_timestamp(? * 1000) FROM $newids",
            identities=identities,
            newids=NEWIDS,
        ),
        users=sql(
            "INSERT INTO $users (user_id, first_id, created_at, updated_at, first_seen, last_seen) "
            "SELECT k + ?, id_value, make_timestamp(? * 1000), make_timestamp(? * 1000), "
            "make_timestamp(lo * 1000), make_timestamp(hi * 1000) FROM $newids",
            users=users,
            newids=NEWIDS,
        ),
        map=sql(
            """CREATE OR REPLACE TEMP TABLE $map AS
            SELECT distinct_id, user_id FROM $ids WHERE user_id IS NOT NULL
            UNION ALL SELECT id_value, k + ? FROM $newids""",
            map=MAP,
            ids=IDS,
            newids=NEWIDS,
        ),
        seen=sql(
            """UPDATE $users AS u
            SET first_seen = least(coalesce(u.first_seen, s.lo), s.lo),
                last_seen = greatest(coalesce(u.last_seen, s.hi), s.hi)
            FROM (SELECT user_id, make_timestamp(min(lo) * 1000) AS lo, make_timestamp(max(hi) * 1000) AS hi
                  FROM $ids WHERE user_id IS NOT NULL AND lo IS NOT NULL GROUP BY user_id) AS s
            WHERE u.user_id = s.user_id""",
            users=users,
            ids=IDS,
        ),
    )
    for stmt in vars(statements).values():
        sb.freeze(stmt)
    return statements


#: Statements built for a batch's shape (relation, project, columns, rules), frozen and kept: a collector
#: loads batch after batch of the same shape, and building and rendering a tree costs more Python time than
#: DuckDB takes to run most of them. The key holds everything a statement depends on.
_STATEMENTS: dict[tuple[object, ...], exp.Expr] = {}
_STATEMENTS_MAX = 2048


def _memo(key: tuple[object, ...], build: Callable[[], exp.Expr]) -> exp.Expr:
    """The statement for ``key``, built by ``build`` the first time."""
    tree = _STATEMENTS.get(key)
    if tree is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
        tree = _STATEMENTS[key] = sb.freeze(build())
    return tree


@dataclass(frozen=True)
class _CheckShape:
    """What a batch's checks depend on."""

    relation: str
    json_column: str | None
    props: tuple[PropSource, ...]
    max_past_ms: int
    max_future_ms: int
    bad_events: tuple[tuple[str, str], ...]
    bad_names: tuple[tuple[str, str], ...]
    refused: tuple[tuple[tuple[str, str], str], ...]
    columns: tuple[_Column, ...]
    json_refusals: bool


def _checks(shape: _CheckShape) -> list[Check]:
    checks = record_checks(
        max_future_ms=shape.max_future_ms, max_past_ms=shape.max_past_ms, bad_events=dict(shape.bad_events)
    )
    props = list(shape.props)
    if shape.json_column:
        checks.append(json_properties_check(shape.json_column))
    checks += name_checks(dict(shape.bad_names), props, shape.json_column is not None)
    checks += table_name_checks(dict(shape.refused), props, shape.json_refusals)
    for column in shape.columns:
        check = conflict_check(column.source, column.ptype, column.table)
        if check is not None:
            checks.append(check)
    return checks


@functools.lru_cache(maxsize=64)
def _check_statements(shape: _CheckShape) -> tuple[tuple[exp.Expr, bool], ...]:
    """The statements of the check pass, each with whether it takes the window ``[lo, hi]`` as parameters.

    A wide batch (thousands of property checks) is judged in passes of :data:`CHECKS_PER_PASS` checks:
    DuckDB keeps working vectors for every branch of a ``CASE`` on every thread, so one ``CASE`` of 2,000
    branches alone took 350 MB. Each pass keeps only its failing rows; the first failing pass wins.
    """
    checks = _checks(shape)
    rel = sb.table(None, shape.relation)
    source: exp.Expr = rel
    if shape.json_refusals:
        source = sql("SELECT * FROM $rel LEFT JOIN $refused USING (_row)", rel=rel, refused=REFUSED)
    # the window's bounds, as the columns the time rules read
    source = sql(
        "SELECT *, CAST(? AS BIGINT) AS $lo, CAST(? AS BIGINT) AS $hi FROM $source",
        lo=sb.name(WINDOW_LO),
        hi=sb.name(WINDOW_HI),
        source=_relation(source),
    )
    groups = [checks[i : i + CHECKS_PER_PASS] for i in range(0, len(checks), CHECKS_PER_PASS)]
    passes = [sb.table(None, f"_ul_why{n}") for n in range(len(groups))] if len(groups) > 1 else []
    out: list[tuple[exp.Expr, bool]] = []
    # Only the refused records are kept, with narrow columns; later steps read the rest from the staged relation.
    narrow = "SELECT _row, type, $why AS _why FROM $source"
    if not passes:
        judged = sql(narrow, why=_case(checks), source=_relation(source))
    else:
        for part, group in zip(passes, groups, strict=True):
            create = sql(
                "CREATE OR REPLACE TEMP TABLE $part AS SELECT * FROM "
                "(SELECT _row, $case AS _why FROM $source) WHERE _why IS NOT NULL",
                part=part,
                case=_case(group),
                source=_relation(source),
            )
            out.append((create, True))
        judged = sql(narrow, why=exp.func("coalesce", *(sb.col("_why", p.name) for p in passes)), source=rel)
        assert isinstance(judged, exp.Select)
        for part in passes:
            judged = judged.join(part, using=["_row"], join_type="left", copy=False)
    reason = sql(
        "CASE WHEN _why.v IS NULL THEN _why.r ELSE $shown END", shown=shown_value(sql("_why.r"), sql("_why.v"))
    )
    final = sql(
        """CREATE OR REPLACE TEMP TABLE $chk AS SELECT * FROM (
            SELECT _row, type, $reason AS _reason, _why.f AS _field FROM $judged WHERE _why IS NOT NULL)
        WHERE _reason IS NOT NULL""",
        chk=CHK,
        reason=reason,
        judged=_relation(judged),
    )
    out.append((final, not passes))
    out += [(sql("DROP TABLE $t", t=part), False) for part in passes]
    return tuple((sb.freeze(stmt), windowed) for stmt, windowed in out)


def _case(checks: list[Check]) -> exp.Expr:
    """One CASE: the first failing check gives both the field and the reason (built only for that row)."""
    # copies: checks are cached (conflict_check) and a node belongs to one tree
    return exp.Case(ifs=[exp.If(this=c.condition.copy(), true=_why(c)) for c in checks])


def _why(check: Check) -> exp.Expr:
    """``{'f': field, 'r': reason, 'v': value}``: a refused record's field, reason and the value the reason
    goes on to show (NULL when none)."""
    value = check.value if check.value is not None else _NO_VALUE
    return exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier("f"), expression=check.field_expr.copy()),
            exp.PropertyEQ(this=exp.to_identifier("r"), expression=check.reason.copy()),
            exp.PropertyEQ(this=exp.to_identifier("v"), expression=value.copy()),
        ]
    )


_NO_VALUE = sql("CAST(NULL AS JSON)")


def _relation(source: exp.Expr) -> exp.Expr:
    """A table as it is, a query as a subquery: what a ``FROM $slot`` takes."""
    return source if isinstance(source, exp.Table | exp.Subquery) else exp.Subquery(this=source)


def _column(columns: list[_Column], table: str, name: str, ptype: PropertyType, source: PropSource) -> _Column:
    """The next column of the batch (JSON sources numbered in the order of their one-pass extraction)."""
    if source.kind == "json":
        source = replace(source, index=sum(1 for c in columns if c.source.kind == "json"))
    return _Column(f"p{len(columns)}", table, name, ptype, source)


def _first_seen(
    registry: dict[tuple[str, str], PropertyType],
) -> Callable[[tuple[tuple[str, str], _Seen]], tuple[int, int, str, str]]:
    """Sort key: registered names first, then new ones by the row of their first value, then by name."""

    def key(item: tuple[tuple[str, str], _Seen]) -> tuple[int, int, str, str]:
        (table, name), (_, _, _, row) = item
        if (table, name) in registry:
            return (0, 0, table, name)
        return (1, row if row is not None else 1 << 62, table, name)

    return key


def counts_rejected(counts: Counter[tuple[str, bool]]) -> int:
    return sum(n for (_, ok), n in counts.items() if not ok)


#: Per record, the table its properties go to (NULL for records without typed properties).
TABLE_CASE = exp.Case(
    ifs=[exp.If(this=of_types(records), true=exp.Literal.string(t)) for t, records in TABLE_OF_RECORDS.items()]
)


def _keys_expr(staged: Staged) -> exp.Expr | None:
    """Per record, the property names it carries (profile_unset needs them)."""
    if staged.json_props_column:
        return KEYS
    typed = [p for p in staged.props if p.kind == "typed"]
    if not typed:
        return None
    parts = [sql("CASE WHEN $c IS NOT NULL THEN $n END", c=sb.col(p.column), n=p.name) for p in typed]
    return sql("list_filter([$parts], lambda x: x IS NOT NULL)", parts=parts)


def _infer(source: PropSource, kind: str | None, first: str | None) -> PropertyType | None:
    """The type a new property gets from its first value (Sensors' rules)."""
    if source.kind == "typed":
        return typed_family(source.duck_type)
    import re

    if kind in ("BIGINT", "UBIGINT", "DOUBLE", "HUGEINT"):
        return PropertyType.NUMBER
    if kind == "BOOLEAN":
        return PropertyType.BOOL
    if kind == "ARRAY":
        return PropertyType.LIST
    if kind == "VARCHAR":
        if first is not None and re.match(DATETIME_REGEX, first):
            return PropertyType.DATETIME
        if first is not None and re.match(DATE_REGEX, first):
            return PropertyType.DATE
        return PropertyType.STRING
    return None


def _infer_text(first: str | None) -> PropertyType:
    """The type of a new text column (CSV) from its first value: a number, a boolean, a date-time, a date,
    or text. A number written with a leading zero ("0210") is text: a code, not a quantity."""
    import re

    if first is None:
        return PropertyType.STRING
    value = first.strip()
    if re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?", value):
        return PropertyType.NUMBER
    if value.lower() in ("true", "false"):
        return PropertyType.BOOL
    if re.match(DATETIME_REGEX, value):
        return PropertyType.DATETIME
    if re.match(DATE_REGEX, value):
        return PropertyType.DATE
    return PropertyType.STRING


def _uninferable(name: str, source: PropSource, kind: str | None) -> str:
    if source.kind == "typed":
        return f"property {name!r} has column type {source.duck_type}, which userloop cannot store"
    if kind == "OBJECT":
        return f"property {name!r} is an object; nested objects are not supported (flatten it into several properties)"
    return f"property {name!r} has no usable value"
