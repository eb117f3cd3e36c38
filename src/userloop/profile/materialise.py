"""Computing tags for a date: full or incremental runs, their history, coverage and value distributions.

:func:`materialise` computes tags as of the end of a local day and writes each one's dated run through
:func:`userloop.profile.history.apply_snapshot`. The long reads run on a private session (so the store's lock
is held only while a run is written): the event tags in one grouped scan per event name
(:func:`tagsql.event_batch`), the profile tags in one pass over ``users``, each model tag from its model's latest
run, each SQL tag in the sandbox with a timeout. Upload tags change only when a CSV is uploaded (:func:`upload_values`).

**Incremental runs.** A tag that aggregates events over all time, with no profile filter and no date-relative
value (see :attr:`TagDef.incremental`), changes for a person only when the person's events change. So when such
a tag was computed for an earlier date, the next run recomputes only the people *touched* since, and leaves
everyone else's interval alone (``apply_snapshot(only_users=…)``). Touched people are those with

- events received since the last run's watermark (``max(received_at)`` when it started, stored in its stats,
  less a margin for loads that were in flight) — new and late events, and the sign-up or bind event that every
  identity merge writes for the surviving person;
- events dated between the end of the last run's date and the end of this one (already loaded, newly counted);
- identities or person rows created since the watermark (new persons, unbinds that start a new person);
- a current value but no row in ``users`` any more: persons merged into another, whose events moved
  (the loader rewrites their ``user_id`` and deletes the old person), so their value must end.

Windowed and date-relative tags change for everyone as the date moves, and a re-run of the latest date replaces
that date's run: those runs are full. ``tests/profile/test_tags_reference.py`` checks incremental == full.

**Statistics.** Each run stores, with the history, how many people have a value, the coverage (share of the
persons known by the end of the run date) and the value distribution: counts per value (top 50 and the rest)
for enumerations, text and yes/no values; min, deciles, max, mean and a 10-bin histogram for numbers; the first
and last date and counts per month (per year over long spans) for dates. :func:`coverage` reads them back.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from userloop.core.clock import utcnow
from userloop.core.errors import QueryError, UserloopError, ValidationError
from userloop.profile import history, tags, tagsql
from userloop.profile.history import RunStats
from userloop.profile.ids import resolve_ids
from userloop.profile.tagdefs import (
    MAX_DAY,
    MIN_DAY,
    EventSource,
    ModelSource,
    ProfileSource,
    SqlSource,
    TagDef,
    UploadSource,
)
from userloop.query.compile import Context
from userloop.store.duck import DuckSession, ProjectStore
from userloop.store.meta import MetaStore
from userloop.store.sqlbuild import sql, type_

DEFAULT_SQL_TIMEOUT_S = 60.0
#: Loads stamp ``received_at`` when they start; a load in flight while a run read its watermark may commit rows
#: stamped a little earlier, so the next run looks back this much further.
WATERMARK_MARGIN = timedelta(minutes=10)
#: An incremental run that would recompute more than this share of the persons runs in full instead.
INCREMENTAL_MAX_SHARE = 0.3
TOP_VALUES = 50
HISTOGRAM_BINS = 10
MAX_UPLOAD_ROWS = 2_000_000
MAX_REPORTED_REJECTS = 1000
TOUCHED = "_ul_touched"
VALUES = "_ul_values"


# runs ------------------------------------------------------------------------------------------------------------
def materialise(
    project: ProjectStore,
    meta: MetaStore,
    project_id: int,
    timezone: str,
    run_date: date,
    *,
    names: list[str] | None = None,
    full: bool = False,
    sql_timeout_s: float = DEFAULT_SQL_TIMEOUT_S,
) -> list[RunStats]:
    """Compute tags as of the end of local day ``run_date`` and record the run in each tag's history.

    Parameters
    ----------
    names : list of str, optional
        The tags to compute (default: every enabled tag except upload tags).
    full : bool
        Recompute everyone even where an incremental run would do.

    Returns
    -------
    list of RunStats
        One per tag computed, in name order; ``stats`` holds the mode, watermark, coverage and distribution.
    """
    if not MIN_DAY <= run_date <= MAX_DAY:
        raise ValidationError(f"a run date lies between {MIN_DAY} and {MAX_DAY}, not {run_date}")
    chosen = _chosen(meta, project_id, names)
    ctx = tagsql.context(project, timezone, run_date)
    planned = [(tag, _checked(tag, project, ctx)) for tag in chosen]
    with project.session() as session:
        run = _Run.start(project, ctx, run_date, session)
        out: dict[str, RunStats] = {}
        events = [(t, k) for t, k in planned if isinstance(t.source, EventSource)]
        incremental = [(t, k) for t, k in events if _previous(project, t, run_date, full) is not None]
        out.update(run.events([p for p in events if p not in incremental], incremental=False))
        out.update(run.events(incremental, incremental=True))
        out.update(run.profiles([(t, k) for t, k in planned if isinstance(t.source, ProfileSource)]))
        for tag, kind in planned:
            if isinstance(tag.source, ModelSource):
                out[tag.name] = run.model(tag, kind)
            elif isinstance(tag.source, SqlSource):
                out[tag.name] = run.sql(tag, sql_timeout_s)
    return [out[t.name] for t, _ in planned if t.name in out]


def _checked(tag: TagDef, project: ProjectStore, ctx: Context) -> tagsql.ValueKind | None:
    """The tag checked again against the project as it is now (a property or model output may have gone)."""
    try:
        return tagsql.check(tag, project, ctx)
    except UserloopError as exc:
        raise type(exc)(f"tag {tag.name!r}: {exc.message}", code=exc.code) from exc


def _chosen(meta: MetaStore, project_id: int, names: list[str] | None) -> list[TagDef]:
    rows = tags.listing(meta, project_id)
    if names is None:
        return [tags.tag_of(r) for r in rows if r.enabled and r.kind != "upload"]
    by_name = {r.name: r for r in rows}
    out = []
    for name in dict.fromkeys(names):
        if name not in by_name:
            tags.get(meta, project_id, name)  # raises NotFoundError with suggestions
        tag = tags.tag_of(by_name[name])
        if isinstance(tag.source, UploadSource):
            raise ValidationError(f"tag {name!r} takes its values from uploads; it is not computed")
        out.append(tag)
    return out


@dataclass(frozen=True)
class _Previous:
    run_date: date
    watermark: datetime


def _previous(project: ProjectStore, tag: TagDef, run_date: date, full: bool) -> _Previous | None:
    """The last run an incremental run of ``tag`` can build on, or None when it must be full."""
    if full or not tag.incremental:
        return None
    last = history.runs(project, tag.table, limit=1)
    if not last:
        return None
    previous, mark = date.fromisoformat(last[0]["run_date"]), last[0]["stats"].get("watermark")
    if previous >= run_date or not mark:
        return None
    return _Previous(previous, datetime.fromisoformat(mark))


@dataclass
class _Run:
    """One materialisation: the project, the day, a private session for the reads and what every tag's stats
    share."""

    project: ProjectStore
    ctx: Context
    run_date: date
    session: DuckSession
    hi: datetime  # naive UTC end of run_date
    watermark: datetime | None
    persons: int
    first_day: date

    @classmethod
    def start(cls, project: ProjectStore, ctx: Context, run_date: date, session: DuckSession) -> _Run:
        hi = ctx.utc_bounds(run_date, run_date)[1]
        # on the writer: no load is half-written while the watermark is read
        bounds = sql("SELECT max(received_at), min(time) FROM $e", e=project.ref("events"))
        [(mark, earliest)] = project.fetchall(bounds)
        # results are read to their end (fetchall): DuckDB refuses the next statement while one is half read
        [(persons,)] = session.fetchall(
            sql("SELECT count(*) FROM $u WHERE first_seen < ? OR first_seen IS NULL", u=project.ref("users")), [hi]
        )
        first_day = run_date if earliest is None else min(run_date, earliest.date() - timedelta(days=1))
        return cls(project, ctx, run_date, session, hi, mark, int(persons), first_day)

    # event tags -------------------------------------------------------------------------------------------------
    def events(
        self, planned: list[tuple[TagDef, tagsql.ValueKind | None]], *, incremental: bool
    ) -> dict[str, RunStats]:
        if not planned:
            return {}
        touched = self._touched([t for t, _ in planned]) if incremental else None
        if touched is not None and touched.num_rows > INCREMENTAL_MAX_SHARE * self.persons:
            touched = None  # most people changed: recomputing everyone is cheaper than picking them out
        if touched is not None:
            self.session.register(TOUCHED, touched)
        try:
            query = tagsql.event_batch(self.ctx, planned, self.run_date, self.first_day,
                                       touched=TOUCHED if touched is not None else None)  # fmt: skip
            wide = self.session.arrow(query)
            return {t.name: self.apply(t, _column(wide, t.name), touched) for t, _ in planned}
        finally:
            if touched is not None:
                self.session.unregister(TOUCHED)

    def _touched(self, planned: list[TagDef]) -> pa.Table:
        """The people an incremental run recomputes (see the module's docstring)."""
        previous = [p for p in (_previous(self.project, t, self.run_date, False) for t in planned) if p is not None]
        since = min(p.watermark for p in previous) - WATERMARK_MARGIN
        prev_hi = self.ctx.utc_bounds(min(p.run_date for p in previous), min(p.run_date for p in previous))[1]
        t = self.project.ref
        parts = [
            sql("SELECT user_id FROM $e WHERE received_at > $since", e=t("events"), since=since),
            sql("SELECT user_id FROM $e WHERE time >= $lo AND time < $hi", e=t("events"), lo=prev_hi, hi=self.hi),
            sql("SELECT user_id FROM $i WHERE created_at > $since", i=t("identities"), since=since),
            sql("SELECT user_id FROM $u WHERE created_at > $since", u=t("users"), since=since),
        ]
        merged = (
            "SELECT h.user_id FROM $h h WHERE h.valid_to IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM $u u WHERE u.user_id = h.user_id)"
        )
        for tag in planned:
            if history.exists(self.project, tag.table):
                parts.append(sql(merged, h=t(tag.table), u=t("users")))
        return self.session.arrow(exp.union(*parts, distinct=True, copy=False))

    # other sources ----------------------------------------------------------------------------------------------
    def profiles(self, planned: list[tuple[TagDef, tagsql.ValueKind | None]]) -> dict[str, RunStats]:
        if not planned:
            return {}
        wide = self.session.arrow(tagsql.profile_batch(self.ctx, planned, self.run_date))
        return {t.name: self.apply(t, _column(wide, t.name), None) for t, _ in planned}

    def model(self, tag: TagDef, kind: tagsql.ValueKind | None) -> RunStats:
        assert isinstance(tag.source, ModelSource)
        if tagsql.model_columns(self.project, tag.source.model) is None:
            note = f"model {tag.source.model!r} has not run yet: nobody has a value"
            return self.apply(tag, _empty(), None, note=note)
        values = self.session.arrow(tagsql.model_select(self.ctx, tag, kind, self.run_date))
        return self.apply(tag, values, None)

    def sql(self, tag: TagDef, timeout_s: float) -> RunStats:
        try:
            values = tagsql.sql_values(self.project, tag, timeout_s)
        except QueryError as exc:
            if exc.code == "query_timeout":
                raise QueryError(f"the query of SQL tag {tag.name!r} ran longer than {timeout_s:g} s and was stopped",
                                 code="query_timeout") from exc  # fmt: skip
            raise QueryError(f"the query of SQL tag {tag.name!r} failed: {exc.message}") from exc
        return self.apply(tag, values, None)

    # writing ----------------------------------------------------------------------------------------------------
    def apply(self, tag: TagDef, values: pa.Table, touched: pa.Table | None, *, note: str | None = None) -> RunStats:
        """Write one tag's snapshot (with ``touched``: only those people's) and its statistics."""
        stats = self._stats(tag, values, touched)
        if note:
            stats["note"] = note
        if touched is None:
            return history.apply_snapshot(self.project, tag.table, tag.sql_type, self.run_date, values, stats=stats)
        with self.project.writer() as writer:  # the snapshot is written on the writer, which reads the touched
            writer.register(TOUCHED, touched)
            try:
                return history.apply_snapshot(self.project, tag.table, tag.sql_type, self.run_date, values,
                                              only_users=sql("SELECT user_id FROM $t", t=exp.to_table(TOUCHED)),
                                              stats=stats)  # fmt: skip
            finally:
                writer.unregister(TOUCHED)

    def _stats(self, tag: TagDef, values: pa.Table, touched: pa.Table | None) -> dict[str, Any]:
        source = sql("SELECT $v AS value FROM $values WHERE value IS NOT NULL",
                     v=exp.cast(exp.column("value"), type_(tag.sql_type)), values=exp.to_table(VALUES))  # fmt: skip
        if touched is not None and history.exists(self.project, tag.table):
            # everyone else keeps their current value
            kept = sql("SELECT k.value FROM ($kept) k WHERE k.user_id NOT IN (SELECT user_id FROM $t)",
                       kept=history.values_on(self.project.schema, tag.table), t=exp.to_table(TOUCHED))  # fmt: skip
            source = exp.union(source, kept, distinct=False, copy=False)
        self.session.register(VALUES, values)
        try:
            dist = distribution(self.session, source, tag)
        finally:
            self.session.unregister(VALUES)
        users = int(dist.pop("users"))
        return {
            "mode": "full" if touched is None else "incremental",
            "watermark": self.watermark.isoformat() if self.watermark is not None else None,
            "recomputed": values.num_rows,  # people with a value among those computed
            "touched": None if touched is None else touched.num_rows,
            "persons": self.persons,
            "users": users,
            "coverage": round(users / self.persons, 6) if self.persons else 0.0,
            "distribution": dist,
        }


def _column(wide: pa.Table, name: str) -> pa.Table:
    return pa.table({"user_id": wide.column("user_id"), "value": wide.column(name)})


def _empty() -> pa.Table:
    return pa.table({"user_id": pa.array([], pa.int64()), "value": pa.array([], pa.string())})


# statistics ------------------------------------------------------------------------------------------------------
def distribution(session: DuckSession, source: exp.Expr, tag: TagDef) -> dict[str, Any]:
    """The value distribution of ``source`` (a SELECT of non-null ``value``) for ``tag``'s type, with ``users``."""
    [(users,)] = session.fetchall(sql("SELECT count(*) FROM ($s)", s=source))
    out: dict[str, Any] = {"users": int(users)}
    if tag.type == "number":
        out.update(_numeric(session, source))
    elif tag.type == "date":
        out.update(_dates(session, source))
    else:
        out.update(_counts(session, source, tag))
    return out


def _counts(session: DuckSession, source: exp.Expr, tag: TagDef) -> dict[str, Any]:
    rows = session.fetchall(sql("SELECT value, count(*) AS n FROM ($s) GROUP BY value ORDER BY n DESC, value",
                                s=source))  # fmt: skip
    if tag.order is not None:  # an enumeration: every value, in its order
        counted = dict(rows)
        listed = [{"value": v, "count": int(counted.get(v, 0))} for v in tag.order]
        return {"kind": "counts", "values": listed, "other": 0, "distinct": sum(1 for r in listed if r["count"])}
    top = [{"value": v, "count": int(n)} for v, n in rows[:TOP_VALUES]]
    return {"kind": "counts", "values": top, "other": int(sum(n for _, n in rows[TOP_VALUES:])), "distinct": len(rows)}


def _numeric(session: DuckSession, source: exp.Expr) -> dict[str, Any]:
    [(lo, hi, mean, qs)] = session.fetchall(sql(
        "SELECT min(value), max(value), avg(value), quantile_cont(value, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, "
        "0.9]) FROM ($s)", s=source,
    ))  # fmt: skip
    if lo is None:
        return {"kind": "numeric", "min": None, "max": None, "mean": None, "quantiles": {}, "histogram": []}
    width = (hi - lo) / HISTOGRAM_BINS if hi > lo else 1.0
    bins = dict(session.fetchall(
        sql("SELECT least(CAST(floor((value - ?) / ?) AS BIGINT), ?) AS b, count(*) FROM ($s) GROUP BY b", s=source),
        [lo, width, HISTOGRAM_BINS - 1],
    ))  # fmt: skip
    n_bins = HISTOGRAM_BINS if hi > lo else 1
    histogram = [{"from": lo + i * width, "to": lo + (i + 1) * width if hi > lo else hi, "count": int(bins.get(i, 0))}
                 for i in range(n_bins)]  # fmt: skip
    quantiles = {f"p{10 * (i + 1)}": _finite(q) for i, q in enumerate(qs)}
    return {"kind": "numeric", "min": _finite(lo), "max": _finite(hi), "mean": _finite(mean), "quantiles": quantiles,
            "histogram": histogram}  # fmt: skip


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _dates(session: DuckSession, source: exp.Expr) -> dict[str, Any]:
    [(lo, hi)] = session.fetchall(sql("SELECT min(value), max(value) FROM ($s)", s=source))
    if lo is None:
        return {"kind": "dates", "min": None, "max": None, "by": "month", "counts": []}
    by = "month" if (hi.year - lo.year) * 12 + hi.month - lo.month < 120 else "year"
    fmt = "%Y-%m" if by == "month" else "%Y"
    rows = session.fetchall(sql("SELECT strftime(value, ?) AS p, count(*) FROM ($s) GROUP BY p ORDER BY p", s=source),
                            [fmt])  # fmt: skip
    return {"kind": "dates", "min": lo.isoformat(), "max": hi.isoformat(), "by": by,
            "counts": [{"period": p, "count": int(n)} for p, n in rows]}  # fmt: skip


def coverage(project: ProjectStore, meta: MetaStore, project_id: int, name: str) -> dict[str, Any]:
    """A tag's latest run statistics and its coverage by run date (oldest first).

    >>> coverage(project, meta, 1, "orders_30d")["series"][-1]  # doctest: +SKIP
    {'run_date': '2026-06-30', 'users': 2712, 'coverage': 0.904}
    """
    row = tags.get(meta, project_id, name)
    runs = history.runs(project, row.table, limit=366)
    latest = None
    if runs:
        last = runs[0]
        latest = {"run_date": last["run_date"], "seconds": last["seconds"], "opened": last["opened"],
                  "closed": last["closed"], **last["stats"], "users": last["users"]}  # fmt: skip
    series = [{"run_date": r["run_date"], "users": r["users"], "coverage": r["stats"].get("coverage")}
              for r in reversed(runs)]  # fmt: skip
    return {"name": name, "type": row.type, "latest": latest, "series": series}


# uploads -----------------------------------------------------------------------------------------------------------
@dataclass
class _Upload:
    rows: int = 0
    ids: list[tuple[int, str]] = field(default_factory=list)  # row, id
    values: dict[int, object] = field(default_factory=dict)  # row → value
    raw: dict[int, str] = field(default_factory=dict)
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # row, field, reason


def upload_values(
    project: ProjectStore,
    tag: TagDef,
    csv_text: str,
    *,
    id_column: str,
    id_kind: str,
    value_column: str | None,
    run_date: date,
) -> dict[str, Any]:
    """Set an upload tag's values for ``run_date`` from CSV text: the list replaces the previous one.

    Each data row (numbered from 1 after the header) names a person by ``user_id`` or ``distinct_id`` and, in
    ``value_column``, the value (no value column: TRUE, for a yes/no tag). Rows with an unknown id, a value that
    does not fit the tag's type, or a person already given are refused with their row number and reason; they
    are returned and stored in the project's ``rejects`` (source ``tag_upload:<name>``), the others are kept.
    A file with a header and no rows clears the tag; one whose every row is refused changes nothing.
    """
    if not isinstance(tag.source, UploadSource):
        raise ValidationError(f"tag {tag.name!r} takes its values from {tag.source.source_from}, not from uploads")
    if id_kind not in ("user_id", "distinct_id"):
        raise ValidationError(f"id_kind is user_id or distinct_id, not {id_kind!r}")
    if value_column is None and tag.type != "bool":
        raise ValidationError(f"tag {tag.name!r} holds {tag.type} values: name the CSV column that has them")
    try:
        parsed = _read_csv(tag, csv_text, id_column, value_column, id_kind)
    except csv.Error as exc:
        raise ValidationError(f"the CSV cannot be read: {exc}") from exc
    people = resolve_ids(project, parsed.ids, id_kind)
    kept: dict[int, int] = {}  # person → row
    for row, ident in parsed.ids:
        person = people.get(row)
        if person is None:
            parsed.rejects.append((row, id_column, f"unknown {id_kind} {ident!r}"))
        elif person in kept:
            parsed.rejects.append((row, id_column, f"this person is already given on row {kept[person]}"))
        else:
            kept[person] = row
    source = f"tag_upload:{tag.name}"
    _store_rejects(project, source, parsed)
    if parsed.rows and not kept:
        raise ValidationError(f"no row of the CSV could be used; {_reject_summary(parsed)}", code="upload_rejected")
    column = pa.array([parsed.values[r] for r in kept.values()], _ARROW_TYPES[tag.type])
    values = pa.table({"user_id": pa.array(list(kept), pa.int64()), "value": column})
    with project.session() as session:
        ctx = tagsql.context(project, "UTC", run_date)
        stats = _Run.start(project, ctx, run_date, session).apply(tag, values, None)
    rejects = sorted(parsed.rejects)
    return {
        "tag": tag.name,
        "run_date": run_date.isoformat(),
        "rows": parsed.rows,
        "accepted": len(kept),
        "rejected": len(rejects),
        "rejects": [{"row": r, "field": f, "reason": why} for r, f, why in rejects[:MAX_REPORTED_REJECTS]],
        "run": stats.as_dict(),
    }


_ARROW_TYPES: dict[str, pa.DataType] = {"enum": pa.string(), "string": pa.string(), "number": pa.float64(),
                                        "bool": pa.bool_(), "date": pa.date32()}  # fmt: skip
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _read_csv(tag: TagDef, text: str, id_column: str, value_column: str | None, id_kind: str) -> _Upload:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise ValidationError("the CSV is empty: it needs a header row naming its columns")
    at_id = _column_at(header, id_column)
    at_value = _column_at(header, value_column) if value_column is not None else None
    out = _Upload()
    for row, record in enumerate(reader, start=1):
        if not any(cell.strip() for cell in record):
            continue
        out.rows += 1
        if out.rows > MAX_UPLOAD_ROWS:
            raise ValidationError(f"an upload holds at most {MAX_UPLOAD_ROWS:,} rows; split the file")
        out.raw[row] = orjson.dumps(dict(zip(header, record, strict=False))).decode()
        ident = record[at_id].strip() if at_id < len(record) else ""
        if not ident:
            out.rejects.append((row, id_column, "no id"))
            continue
        if id_kind == "user_id" and not _is_key(ident):
            out.rejects.append((row, id_column, f"user_id {ident!r} is not a person key (a 64-bit whole number)"))
            continue
        cell = record[at_value].strip() if at_value is not None and at_value < len(record) else None
        value, reason = _parse_value(tag, cell) if value_column is not None else (True, None)
        if reason is not None:
            out.rejects.append((row, value_column or "", reason))
            continue
        out.ids.append((row, ident))
        out.values[row] = value
    return out


def _is_key(text: str) -> bool:
    try:
        return -(2**63) <= int(text) < 2**63
    except ValueError:
        return False


def _column_at(header: list[str], name: str) -> int:
    if name not in header:
        raise ValidationError(f"the CSV has no column {name!r}; its columns are {', '.join(header)}")
    return header.index(name)


def _parse_value(tag: TagDef, cell: str | None) -> tuple[object, str | None]:
    if not cell:
        return None, "no value"
    if tag.type == "bool":
        low = cell.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE, None
        return None, f"{cell!r} is not yes/no (true/false, 1/0, yes/no)"
    if tag.type == "number":
        try:
            number = float(cell)
        except ValueError:
            return None, f"{cell!r} is not a number"
        return (number, None) if math.isfinite(number) else (None, f"{cell!r} is not a finite number")
    if tag.type == "date":
        try:
            return date.fromisoformat(cell), None
        except ValueError:
            return None, f"{cell!r} is not a date (YYYY-MM-DD)"
    if tag.type == "enum" and tag.values and cell not in tag.values:
        return None, f"{cell!r} is not one of the tag's values ({', '.join(tag.values[:10])})"
    if len(cell) > 1000:
        return None, "the value is longer than 1,000 characters"
    return cell, None


def _store_rejects(project: ProjectStore, source: str, parsed: _Upload) -> None:
    if not parsed.rejects:
        return
    now = utcnow()
    rows = [[source, r, f, why, parsed.raw.get(r, ""), now] for r, f, why in sorted(parsed.rejects)]
    with project.atomic() as s:
        s.executemany(sql("INSERT INTO $r VALUES (?, ?, ?, ?, ?, ?)", r=project.ref("rejects")), rows)


def _reject_summary(parsed: _Upload) -> str:
    first = sorted(parsed.rejects)[:3]
    return "; ".join(f"row {r}: {why}" for r, _, why in first)


__all__ = ["coverage", "distribution", "materialise", "upload_values"]


def upload(
    meta: MetaStore,
    project: ProjectStore,
    project_id: int,
    name: str,
    csv_text: str,
    *,
    id_column: str,
    id_kind: str,
    value_column: str | None,
    run_date: date,
) -> dict[str, Any]:
    """Set upload tag ``name``'s values from CSV text (see :func:`upload_values`)."""
    return upload_values(project, tags.tag_of(tags.get(meta, project_id, name)), csv_text, id_column=id_column,
                         id_kind=id_kind, value_column=value_column, run_date=run_date)  # fmt: skip
