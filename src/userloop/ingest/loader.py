"""The loader: checks a staged relation, resolves identities and writes events, profiles and items.

Every source (SDK adapters, files, the simulator) ends here, so every record meets the same rules:

1. discover the properties the batch carries; register new ones (name rules, type from the first value);
   a name that differs only in case from a registered one (or from a new one seen earlier in the batch) and a
   new name past the table's cap are refused per record, with a reason naming the name;
2. check every record in one vectorised pass (first failing rule → field + reason) into ``_chk``;
3. set rejects aside with their reason and raw input; drop duplicates (same ``event_id`` within the batch or
   already stored);
4. apply identity records (signup, bind, unbind), then give unknown ids a new person key;
5. write events, then profile and item operations in record order; update first/last seen.

Steps 2–5 run in one DuckDB transaction: a batch is written whole or not at all. New property columns are
added before it, in small transactions of their own: DuckDB's memory for ``ALTER TABLE`` grows with the square
of the columns added in one transaction (2,000 at once took 1.2 GB), and a column without values is harmless
if the batch then fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import groupby

import duckdb
import pyarrow as pa

from userloop.ingest import identity as ident_mod
from userloop.ingest import profile_sql
from userloop.ingest.checks import (
    EVENT_RECORDS,
    ITEM_RECORDS,
    JSON_KEYS,
    PROFILE_RECORDS,
    TABLE_OF_RECORDS,
    UNTYPED_PROPERTY_RECORDS,
    Check,
    conflict_check,
    event_name_problem,
    json_properties_check,
    name_checks,
    record_checks,
    table_name_checks,
    typed_family,
    value_expr,
)
from userloop.ingest.identity_writes import apply_plan, bind_op
from userloop.ingest.profiles import apply_item_ops, apply_profile_ops
from userloop.ingest.source import PropSource, Staged
from userloop.schema.names import (
    MAX_TABLE_PROPERTIES,
    RESERVED_PROPERTY_NAMES,
    cap_reason,
    collision_reason,
    fold,
    name_problem,
)
from userloop.schema.types import DATE_REGEX, DATETIME_REGEX, PropertyType
from userloop.store.duck import ProjectStore
from userloop.store.sqltext import ident, literal

CHK = "_ul_chk"  # one slim row per record: control fields, reason; no property values
SKIP = "_ul_skip"  # valid rows not to write: duplicates, refused identity records
BAD = "_ul_bad"  # every row not to write: rejected or skipped
IDS = "_ul_ids"  # per distinct id of the batch's written records: first row, login flag, time span
NEWIDS = "_ul_newids"
MAP = "_ul_map"  # the batch's distinct ids → person
REFUSED = "_ul_refused"  # per record, the first property name refused in its table (collision, full table)
#: New property columns added per transaction (see the module docstring).
REGISTER_CHUNK = 50
#: Checks judged in one CASE (see Loader._check_pass).
CHECKS_PER_PASS = 200


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


class Loader:
    """Loads staged batches into one project. Not thread-safe by itself: it takes the store's lock.

    ``caps``: the most properties each table may hold (default :data:`MAX_TABLE_PROPERTIES`).
    """

    def __init__(
        self, project: ProjectStore, policy: TimePolicy | None = None, *, caps: dict[str, int] | None = None
    ) -> None:
        self.project = project
        self.policy = policy or TimePolicy()
        self.caps = MAX_TABLE_PROPERTIES if caps is None else caps

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.project.con

    def load(self, staged: Staged, *, now_ms: int | None = None) -> LoadResult:
        started = time.perf_counter()
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        with self.project.store.lock:
            plan = self._plan(staged)
            with self.project.store.transaction():
                result = self._load(staged, now, plan)
                self.project.bump_data_version()
        self.project.forget_cache()
        result.seconds = time.perf_counter() - started
        return result

    # the steps -----------------------------------------------------------------------------------------
    def _plan(self, staged: Staged) -> _Plan:
        """The batch's tables, bad names and columns; registers its new properties (outside the load)."""
        tables, bad_events = self._shape(staged)
        bad_names, refused, columns, new = self._properties(staged, tables)
        self._register(new)
        new_props = [(t, n) for t, props in new.items() for n in props]
        return _Plan(tables, bad_events, bad_names, refused, columns, new_props)

    def _register(self, new: dict[str, dict[str, PropertyType]]) -> None:
        """Add the new property columns, :data:`REGISTER_CHUNK` per transaction (bounded memory)."""
        items = [(t, n, ptype) for t, props in new.items() for n, ptype in props.items()]
        for start in range(0, len(items), REGISTER_CHUNK):
            with self.project.store.transaction():
                for table, group in groupby(items[start : start + REGISTER_CHUNK], key=lambda item: item[0]):
                    self.project.register(table, {n: ptype for _, n, ptype in group})

    def _load(self, staged: Staged, now_ms: int, plan: _Plan) -> LoadResult:
        result = LoadResult(source=staged.source)
        columns = plan.columns
        result.new_properties = [f"{t}.{n}" for t, n in plan.new_props]
        json_refusals = self._refused_rows(staged, plan.refused)
        checks = self._checks(staged, plan, now_ms, json_refusals)
        self._check_pass(staged, checks, columns, json_refusals)
        counts = self._counts()
        result.received = sum(counts.values())
        result.rejected = self._write_rejects(staged, now_ms) if counts_rejected(counts) else 0
        result.duplicates = self._mark_duplicates(staged)
        result.rejected += self._identities(staged, now_ms)
        self._settle_bad_rows()
        self._allocate_persons(staged, now_ms)
        source = f"SELECT * FROM {staged.relation}"
        result.events = self._write_events(source, columns, now_ms)
        profile_count = self._write_profiles(source, staged, columns, now_ms)
        item_count = self._write_items(source, columns, now_ms)
        result.accepted = result.events + profile_count + item_count + self._unbinds_written
        self._remember_records(staged, now_ms)
        for (rtype, ok), n in counts.items():
            if ok:
                result.by_type[rtype] += n
        for temp in (CHK, SKIP, NEWIDS, BAD, IDS, MAP, REFUSED):
            self.con.execute(f"DROP TABLE IF EXISTS {temp}")
        return result

    def _shape(self, staged: Staged) -> tuple[set[str], dict[str, str]]:
        """The tables the batch writes to, and its event names that break the rules (with the reason)."""
        pairs = self.con.execute(f"SELECT DISTINCT type, event FROM {staged.relation}").fetchall()
        types = {t for t, _ in pairs}
        tables = {t for t, records in TABLE_OF_RECORDS.items() if types & set(records)}
        bad_events = {}
        for rtype, event in pairs:
            if rtype in EVENT_RECORDS and event is not None:
                problem = event_name_problem(event)
                if problem:
                    bad_events[event] = problem
        return tables, bad_events

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
            problem = name_problem(name, reserved=RESERVED_PROPERTY_NAMES)
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
        rows = self.con.execute(
            f"""SELECT list(k) FROM (
                    SELECT _row, unnest({JSON_KEYS}) AS k FROM {staged.relation}
                    WHERE {JSON_KEYS} IS NOT NULL AND {_table_case()} = ?)
                WHERE list_contains(?, k) GROUP BY _row ORDER BY _row""",
            [table, [*names, *blocked]],
        ).fetchall()
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
        col = ident(staged.json_props_column)
        untyped = literal(list(UNTYPED_PROPERTY_RECORDS))
        ignore = literal(list(staged.ignore_keys) or [""])
        keys = self.con.execute(
            f"""SELECT DISTINCT tbl, k FROM (
                    SELECT tbl, unnest(_k) AS k FROM (
                        SELECT DISTINCT {_table_case()} AS tbl, {JSON_KEYS} AS _k FROM {staged.relation}
                        WHERE _error IS NULL AND {JSON_KEYS} IS NOT NULL AND NOT list_contains({untyped}, type)))
                WHERE tbl IS NOT NULL AND NOT list_contains({ignore}, k)"""
        ).fetchall()
        registry = self.project.registry()
        known: list[tuple[str, str, str | None, str | None, int | None]] = [
            (t, k, None, None, None) for t, k in keys if (t, k) in registry or name_problem(k)
        ]
        new = [(t, k) for t, k in keys if (t, k) not in registry and not name_problem(k)]
        if not new:
            return known
        value = f"{col}[k]"
        first_rows = f"(SELECT * FROM {staged.relation} ORDER BY _row LIMIT 10000)"
        found: list[tuple[str, str, str | None, str | None, int | None]] = []
        for relation in (first_rows, staged.relation):  # the head of the batch almost always decides
            done = {(f[0], f[1]) for f in found}
            missing = [f"{t}.{k}" for t, k in new if (t, k) not in done]
            if not missing:
                break
            found += self.con.execute(
                f"""SELECT tbl, k, arg_min(json_type({value}), _row), arg_min({value}->>'$', _row), min(_row)
                    FROM (SELECT _row, {col}, {_table_case()} AS tbl, unnest({JSON_KEYS}) AS k FROM {relation}
                          WHERE _error IS NULL AND {JSON_KEYS} IS NOT NULL AND NOT list_contains({untyped}, type))
                    WHERE list_contains(?, tbl || '.' || k) AND json_type({value}) <> 'NULL'
                    GROUP BY ALL""",
                [missing],
            ).fetchall()
        kinds = {(t, k): (kind, first, row) for t, k, kind, first, row in found}
        return known + [(t, k, *kinds.get((t, k), (None, None, None))) for t, k in new]

    def _first_value(self, staged: Staged, source: PropSource) -> str | None:
        row = self.con.execute(
            f"SELECT {ident(source.column)} FROM {staged.relation} WHERE {ident(source.column)} IS NOT NULL "
            "ORDER BY _row LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def _tables_of_typed(
        self, staged: Staged, props: list[PropSource], tables: set[str]
    ) -> list[tuple[PropSource, str]]:
        """Which table each typed column feeds: the tables of the records that carry a value in it."""
        if len(tables) <= 1 or not props:
            return [(p, t) for p in props for t in tables]
        counts = ", ".join(f"count({ident(p.column)})" for p in props)
        rows = self.con.execute(f"SELECT type, {counts} FROM {staged.relation} GROUP BY type").fetchall()
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
        self.con.register("_ul_refused_names", names)
        try:
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {REFUSED} AS
                SELECT _row, arg_min(k, pos) AS _ref_name, arg_min(r.reason, pos) AS _ref_reason
                FROM (SELECT _row, {_table_case()} AS tbl, unnest({JSON_KEYS}) AS k,
                             unnest(range(1, len({JSON_KEYS}) + 1)) AS pos
                      FROM {staged.relation} WHERE {JSON_KEYS} IS NOT NULL) s
                JOIN _ul_refused_names r ON r.tbl = s.tbl AND r.name = s.k
                GROUP BY _row"""
            )
        finally:
            self.con.unregister("_ul_refused_names")
        return True

    def _checks(self, staged: Staged, plan: _Plan, now_ms: int, json_refusals: bool) -> list[Check]:
        checks = record_checks(
            now_ms=now_ms,
            max_future_ms=self.policy.max_future_seconds * 1000,
            max_past_ms=self.policy.max_past_days * 86_400_000,
            bad_events=plan.bad_events,
        )
        if staged.json_props_column:
            checks.append(json_properties_check(staged.json_props_column))
        keys = JSON_KEYS if staged.json_props_column else None
        checks += name_checks(plan.bad_names, staged.props, keys)
        checks += table_name_checks(plan.refused, staged.props, json_refusals)
        for col in plan.columns:
            check = conflict_check(col.source, col.ptype, col.table)
            if check is not None:
                checks.append(check)
        return checks

    def _check_pass(self, staged: Staged, checks: list[Check], columns: list[_Column], json_refusals: bool) -> None:
        """One vectorised pass: every record's first failing check (field, reason) into the slim ``_chk``.

        A wide batch (thousands of property checks) is judged in passes of :data:`CHECKS_PER_PASS` checks:
        DuckDB keeps working vectors for every branch of a ``CASE`` on every thread, so one ``CASE`` of 2,000
        branches alone took 350 MB. Each pass keeps only its failing rows; the first failing pass wins.
        """
        source = f"{staged.relation} LEFT JOIN {REFUSED} USING (_row)" if json_refusals else staged.relation
        groups = [checks[i : i + CHECKS_PER_PASS] for i in range(0, len(checks), CHECKS_PER_PASS)]
        if len(groups) <= 1:
            why, source_why = _case(checks), source
            parts: list[str] = []
        else:
            parts = [f"_ul_why{n}" for n in range(len(groups))]
            for name, group in zip(parts, groups, strict=True):
                self.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM "
                    f"(SELECT _row, {_case(group)} AS _why FROM {source}) WHERE _why IS NOT NULL"
                )
            joins = " ".join(f"LEFT JOIN {name} AS {name} USING (_row)" for name in parts)
            why = "coalesce(" + ", ".join(f"{name}._why" for name in parts) + ")"
            source_why = f"{staged.relation} {joins}"
        # Only narrow columns are kept; later steps read ids and names from the staged relation itself.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {CHK} AS
            SELECT _row, type, time, hash(event_id) AS _h, _why.r AS _reason, _why.f AS _field
            FROM (SELECT _row, type, time, event_id, {why} AS _why FROM {source_why})
            """
        )
        for name in parts:
            self.con.execute(f"DROP TABLE {name}")

    def _counts(self) -> Counter[tuple[str, bool]]:
        rows = self.con.execute(f"SELECT coalesce(type, '?'), _reason IS NULL, count(*) FROM {CHK} GROUP BY ALL")
        return Counter({(t, ok): n for t, ok, n in rows.fetchall()})

    def _write_rejects(self, staged: Staged, now_ms: int) -> int:
        """Keep each refused record with its reason and its input (the line, or the row as JSON)."""
        raw = "s._raw" if staged.raw_available else "to_json(s)::VARCHAR"
        (n,) = self.con.execute(
            f"INSERT INTO {self.project.table('rejects')} "
            f"SELECT ?, c._row, c._field, c._reason, {raw}, make_timestamp(? * 1000) "
            f"FROM {CHK} c JOIN {staged.relation} s USING (_row) WHERE c._reason IS NOT NULL",
            [staged.source, now_ms],
        ).fetchone() or (0,)
        return int(n)

    def _mark_duplicates(self, staged: Staged) -> int:
        """Rows to skip: an ``event_id`` repeated in the batch or already stored.

        Repeats inside the batch are found on a 64-bit hash of the id, so only colliding rows pay for the
        exact string comparison. Events are compared with the stored events of the batch's time span (a
        resent event keeps its time; DuckDB skips row groups outside the span), and only when that span holds
        any; profile, item and identity records are compared with the ids in ``records_seen``.
        """
        is_event = f"list_contains({literal(list(EVENT_RECORDS))}, type)"
        valid = f"_row NOT IN (SELECT _row FROM {CHK} WHERE _reason IS NOT NULL)"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {SKIP} (_row BIGINT, reason VARCHAR)")
        candidates = [
            r[0]
            for r in self.con.execute(
                f"SELECT _row FROM {CHK} WHERE _reason IS NULL AND _h IN ("
                f"SELECT _h FROM {CHK} WHERE _reason IS NULL GROUP BY _h HAVING count(*) > 1)"
            ).fetchall()
        ]
        if candidates:
            self.con.execute(
                f"""
                INSERT INTO {SKIP}
                SELECT _row, NULL FROM (
                    SELECT _row, row_number() OVER (PARTITION BY event_id ORDER BY _row) AS rn
                    FROM {staged.relation} WHERE list_contains(?, _row))
                WHERE rn > 1
                """,
                [candidates],
            )
        lo, hi = self.con.execute(
            f"SELECT min(time), max(time) FROM {CHK} WHERE _reason IS NULL AND {is_event}"
        ).fetchone() or (None, None)
        events = self.project.table("events")
        span = f"time BETWEEN make_timestamp({int(lo or 0)} * 1000) AND make_timestamp({int(hi or 0)} * 1000)"
        if lo is not None and self.con.execute(f"SELECT 1 FROM {events} WHERE {span} LIMIT 1").fetchone():
            self.con.execute(
                f"INSERT INTO {SKIP} SELECT s._row, NULL FROM {staged.relation} s "
                f"SEMI JOIN (SELECT event_id FROM {events} WHERE {span}) e USING (event_id) "
                f"WHERE {is_event} AND {valid}"
            )
        seen = self.project.table("records_seen")
        if self.con.execute(f"SELECT 1 FROM {CHK} WHERE NOT {is_event} LIMIT 1").fetchone():
            self.con.execute(
                f"INSERT INTO {SKIP} SELECT s._row, NULL FROM {staged.relation} s "
                f"SEMI JOIN {seen} r ON r.record_id = s.event_id WHERE NOT {is_event} AND {valid}"
            )
        (n,) = self.con.execute(f"SELECT count(DISTINCT _row) FROM {SKIP}").fetchone() or (0,)
        return int(n)

    def _remember_records(self, staged: Staged, now_ms: int) -> None:
        """Keep the ids of the non-event records written, so that loading them again adds nothing."""
        self.con.execute(
            f"INSERT INTO {self.project.table('records_seen')} "
            f"SELECT event_id, make_timestamp({now_ms} * 1000) FROM {staged.relation} "
            f"WHERE NOT list_contains({literal(list(EVENT_RECORDS))}, type) AND _row NOT IN (SELECT _row FROM {BAD})"
        )

    def _settle_bad_rows(self) -> None:
        """Gather every row that must not be written: rejected, duplicate, or refused by identity rules."""
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {BAD} AS "
            f"SELECT _row FROM {CHK} WHERE _reason IS NOT NULL UNION SELECT _row FROM {SKIP}"
        )

    _unbinds_written = 0

    def _identities(self, staged: Staged, now_ms: int) -> int:
        """Apply signup / bind / unbind records; returns how many were refused."""
        rows = self.con.execute(
            f"SELECT _row, type, distinct_id, is_login_id, original_id, identities::VARCHAR FROM {staged.relation} "
            "WHERE type IN ('track_signup', 'track_id_bind', 'track_id_unbind') "
            f"AND _row NOT IN (SELECT _row FROM {CHK} WHERE _reason IS NOT NULL) "
            f"AND _row NOT IN (SELECT _row FROM {SKIP}) ORDER BY time, _row"
        ).fetchall()
        self._unbinds_written = 0
        if not rows:
            return 0
        ops = [op for op in (bind_op(*r) for r in rows) if op is not None]
        keys = ident_mod.PersonKeys(self.project.take_person_keys)
        resolver = ident_mod.IdentityResolver(self.con, self.project.table("identities"), keys)
        plan = resolver.apply(ops)
        apply_plan(self.project, plan, now_ms)
        self._unbinds_written = sum(1 for op in ops if op.kind == "unbind" and op.row not in plan.rejects)
        if plan.rejects:
            rej = pa.table({"_row": list(plan.rejects), "reason": list(plan.rejects.values())})
            self.con.register("_ul_idrej", rej)
            self.con.execute(f"INSERT INTO {SKIP} SELECT _row, reason FROM _ul_idrej")
            self.con.execute(
                f"INSERT INTO {self.project.table('rejects')} "
                f"SELECT ?, c._row, 'identities', r.reason, to_json(c)::VARCHAR, make_timestamp(? * 1000) "
                f"FROM {staged.relation} c JOIN _ul_idrej r USING (_row)",
                [staged.source, now_ms],
            )
            self.con.unregister("_ul_idrej")
        return len(plan.rejects)

    def _allocate_persons(self, staged: Staged, now_ms: int) -> None:
        """Give every id seen for the first time a new person key (login ids typed as such); stamp first/last
        seen. One aggregate over the batch's ids serves both."""
        t = self.project.table
        records = literal(list(EVENT_RECORDS) + list(PROFILE_RECORDS))
        is_event = f"list_contains({literal(list(EVENT_RECORDS))}, type)"
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {IDS} AS
            SELECT 'd' AS _ns, distinct_id, min(_row) AS first_row, coalesce(bool_or(is_login_id), false) AS login,
                   min(time) FILTER (WHERE {is_event}) AS lo, max(time) FILTER (WHERE {is_event}) AS hi
            FROM {staged.relation}
            WHERE list_contains({records}, type) AND _row NOT IN (SELECT _row FROM {BAD})
            GROUP BY distinct_id
            """
        )
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {NEWIDS} AS
            SELECT n._ns AS ns,
                   CASE WHEN n.login THEN {literal(ident_mod.LOGIN)} ELSE {literal(ident_mod.ANONYMOUS)} END AS id_type,
                   n.distinct_id AS id_value, row_number() OVER (ORDER BY n.first_row) AS k
            FROM {IDS} n ANTI JOIN {t("identities")} i ON i.ns = n._ns AND i.id_value = n.distinct_id
            """
        )
        (count,) = self.con.execute(f"SELECT count(*) FROM {NEWIDS}").fetchone() or (0,)
        ts = f"make_timestamp({now_ms} * 1000)"
        if count:
            base = self.project.take_person_keys(int(count)) - 1
            self.con.execute(
                f"INSERT INTO {t('identities')} SELECT ns, id_type, id_value, k + {base}, {ts} FROM {NEWIDS}"
            )
            self.con.execute(
                f"INSERT INTO {t('users')} (user_id, first_id, created_at, updated_at) "
                f"SELECT k + {base}, id_value, {ts}, {ts} FROM {NEWIDS}"
            )
        # The batch's ids and their persons: a small map that the writes below join to, instead of every
        # identity of the project.
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {MAP} AS
            SELECT n.distinct_id, i.user_id, n.lo, n.hi
            FROM {IDS} n JOIN {t("identities")} i ON i.ns = n._ns AND i.id_value = n.distinct_id
            """
        )
        self.con.execute(
            f"""
            UPDATE {t("users")} AS u
            SET first_seen = least(coalesce(u.first_seen, s.lo), s.lo),
                last_seen = greatest(coalesce(u.last_seen, s.hi), s.hi)
            FROM (SELECT user_id, make_timestamp(min(lo) * 1000) AS lo, make_timestamp(max(hi) * 1000) AS hi
                  FROM {MAP} WHERE lo IS NOT NULL GROUP BY user_id) s
            WHERE u.user_id = s.user_id
            """
        )

    def _resolved(self, source: str, record_types: tuple[str, ...]) -> str:
        """Staged rows of these types that are to be written, joined to their person."""
        return (
            f"({source}) c JOIN {MAP} i ON i.distinct_id = c.distinct_id "
            f"WHERE list_contains({literal(list(record_types))}, c.type) AND c._row NOT IN (SELECT _row FROM {BAD})"
        )

    def _write_events(self, source: str, columns: list[_Column], now_ms: int) -> int:
        t = self.project.table
        props = [c for c in columns if c.table == "events"]
        names = ", ".join(ident(c.name) for c in props)
        values = ", ".join(value_expr(c.source, c.ptype) for c in props)
        # Events carry their own time; their physical order is free, which lets DuckDB write in parallel.
        self.con.execute("SET preserve_insertion_order = false")
        try:
            (n,) = self.con.execute(
                f"""
                INSERT INTO {t("events")} (event_id, event, user_id, distinct_id, time, received_at, lib
                                           {", " + names if props else ""})
                SELECT c.event_id, c.event, i.user_id, c.distinct_id, make_timestamp(c.time * 1000),
                       make_timestamp({now_ms} * 1000), c.lib {", " + values if props else ""}
                FROM {self._resolved(source, EVENT_RECORDS)}
                """
            ).fetchone() or (0,)
        finally:
            self.con.execute("RESET preserve_insertion_order")
        if n:
            written = f"list_contains({literal(list(EVENT_RECORDS))}, type) AND _row NOT IN (SELECT _row FROM {BAD})"
            event_names = self.con.execute(f"SELECT DISTINCT event FROM ({source}) WHERE {written}").fetchall()
            self.project.register_events([r[0] for r in event_names])
        return int(n)

    def _write_profiles(self, source: str, staged: Staged, columns: list[_Column], now_ms: int) -> int:
        props = [c for c in columns if c.table == "users"]
        values = "".join(f", {value_expr(c.source, c.ptype)} AS {ident(c.name)}" for c in props)
        keys = _keys_expr(staged) or "NULL::VARCHAR[]"
        (count,) = self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {profile_sql.OPS} AS "
            f"SELECT i.user_id, c.type, c.time, c._row, {keys} AS _keys {values} "
            f"FROM {self._resolved(source, PROFILE_RECORDS)}"
        ).fetchone() or (0,)
        if count:
            types = {c.name: c.ptype for c in props}
            mixed = profile_sql.apply_simple_ops(self.project, types, now_ms)
            ops = self.con.sql(
                f"SELECT * EXCLUDE (time, _row) FROM {profile_sql.OPS} WHERE user_id IN ({mixed}) "
                "ORDER BY time NULLS LAST, _row"
            ).to_arrow_table()
            if ops.num_rows:
                apply_profile_ops(self.project, ops, types, now_ms)
        self.con.execute(f"DROP TABLE {profile_sql.OPS}")
        return int(count)

    def _write_items(self, source: str, columns: list[_Column], now_ms: int) -> int:
        props = [c for c in columns if c.table == "items"]
        values = "".join(f", {value_expr(c.source, c.ptype)} AS {ident(c.name)}" for c in props)
        ops = self.con.sql(
            f"SELECT item_type, item_id, type {values} FROM ({source}) "
            f"WHERE list_contains({literal(list(ITEM_RECORDS))}, type) AND _row NOT IN (SELECT _row FROM {BAD}) "
            "ORDER BY time NULLS LAST, _row"
        ).to_arrow_table()
        if ops.num_rows == 0:
            return 0
        apply_item_ops(self.project, ops, now_ms)
        return ops.num_rows


def _case(checks: list[Check]) -> str:
    """One CASE: the first failing check gives both the field and the reason (built only for that row)."""
    whens = " ".join(f"WHEN {c.condition} THEN struct_pack(f := {c.field_expr}, r := {c.reason})" for c in checks)
    return f"CASE {whens} END"


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


def _table_case() -> str:
    whens = " ".join(
        f"WHEN list_contains({literal(list(r))}, type) THEN {literal(t)}" for t, r in TABLE_OF_RECORDS.items()
    )
    return f"CASE {whens} END"


def _keys_expr(staged: Staged) -> str | None:
    """Per record, the property names it carries (profile_unset needs them)."""
    if staged.json_props_column:
        return JSON_KEYS
    typed = [p for p in staged.props if p.kind == "typed"]
    if not typed:
        return None
    parts = ", ".join(f"CASE WHEN {ident(p.column)} IS NOT NULL THEN {literal(p.name)} END" for p in typed)
    return f"list_filter([{parts}], lambda x: x IS NOT NULL)"


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
