"""User 360: everything the project knows about one person, and their event timeline.

:func:`profile_360` gathers the profile row, every identity (including anonymous ids merged in at sign-up),
tags with their history, the latest outputs of every per-user model (with what changed since the run before),
segment membership with entered/left dates, orders and an activity summary. :func:`timeline` pages through the
person's events, newest first.

Times stored by the engine (event times, first/last seen, identity and profile timestamps) are naive UTC; here
they are shown in the project's zone as ISO 8601 with the offset (``2026-01-05T08:00:00+08:00``). DATETIME
properties are shown as they were sent. Phone and email fields (:mod:`userloop.query.masking`) are masked
unless ``unmask`` (the caller holds the ``pii`` grant).

>>> person = resolve(project, "L42")  # doctest: +SKIP
>>> profile_360(project, person, timezone="Asia/Shanghai")["summary"]["by_event"]  # doctest: +SKIP
{'$SignUp': 1, 'order_paid': 3, 'view': 41}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlglot import exp

from userloop.core.clock import check_timezone
from userloop.core.errors import NotFoundError, ValidationError
from userloop.ingest.identity import ANONYMOUS, LOGIN
from userloop.profile import history
from userloop.query.compile import EVENT_COLUMNS, and_, col, literal, sql
from userloop.query.masking import mask_field
from userloop.schema.types import PropertyType
from userloop.store.activity import active_cond
from userloop.store.duck import ProjectStore

ORDER_EVENT = "order_paid"
ORDER_AMOUNT = "order_amount"
ORDER_LIMIT = 50
TIMELINE_LIMIT = 50
TIMELINE_MAX = 500
MAX_EVENT_NAMES = 100
#: Profile columns the engine writes, as naive UTC (shown in the project's zone).
USER_TIMES = ("created_at", "updated_at", "first_seen", "last_seen")
#: Columns every event row has (the rest are its properties).
EVENT_FIXED = ("event_id", "event", "user_id", "distinct_id", "time", "received_at", "lib")
#: When one value is an id of several types (each type has its own namespace), the first type here wins.
ID_PREFERENCE = (LOGIN, ANONYMOUS)

Row = dict[str, Any]


# finding a person ---------------------------------------------------------------------------------------------
def resolve(project: ProjectStore, key: str) -> int:
    """The person key of ``key``: a person key itself (digits) or any id the person is known by.

    Digits are read as a person key first, when such a person exists; otherwise (and for any other text) the
    identities are searched. A value that is an id of several types (a login id that is also someone's
    ``$identity_email``) resolves to its login id's person, then its anonymous id's, then the other types in
    name order.

    Raises
    ------
    NotFoundError
        No person has this key or id.
    """
    key = key.strip()
    if not key or len(key) > 1000:
        raise ValidationError("a person is given by a person key or one of their ids (1 to 1000 characters)")
    if key.isascii() and key.isdigit() and len(key) < 19 and _exists(project, int(key)):
        return int(key)
    rows = _rows(project, sql("SELECT id_type, user_id FROM $i WHERE id_value = ?", i=project.ref("identities")), [key])
    if not rows:
        raise NotFoundError(f"no person with the key or id {key!r} in this project")
    rank = {t: i for i, t in enumerate(ID_PREFERENCE)}
    rows.sort(key=lambda r: (rank.get(r[0], len(rank)), r[0]))
    return int(rows[0][1])


def _exists(project: ProjectStore, user_id: int) -> bool:
    return bool(_rows(project, sql("SELECT 1 FROM $u WHERE user_id = ? LIMIT 1", u=project.ref("users")), [user_id]))


def _require(project: ProjectStore, user_id: int) -> None:
    if not _exists(project, user_id):
        raise NotFoundError(f"no person {user_id} in this project")


# the view -----------------------------------------------------------------------------------------------------
def profile_360(
    project: ProjectStore,
    user_id: int,
    *,
    timezone: str,
    tags: Sequence[tuple[str, str, str]] = (),
    segments: Sequence[tuple[int, str]] = (),
    unmask: bool = False,
    order_event: str = ORDER_EVENT,
    order_properties: list[str] | None = None,
    order_amount: str = ORDER_AMOUNT,
    order_limit: int = ORDER_LIMIT,
) -> dict[str, Any]:
    """Everything about one person, JSON-ready.

    Parameters
    ----------
    tags : list of (name, title_zh, title_en)
        The tags to show; a tag never materialised (no ``tag_<name>`` table) is left out.
    segments : list of (id, name)
        The segments to show; one never refreshed (no ``segment_<id>`` table) is left out.
    unmask : bool
        Show phone numbers and emails in clear (the caller holds the ``pii`` grant).
    order_event, order_properties, order_amount, order_limit
        Which events are orders, which of their properties to show (default: every non-null one), which
        property is the amount (summed when the project has it) and how many orders to list, newest first.

    Returns
    -------
    dict
        ``profile``, ``identities``, ``tags``, ``models``, ``segments``, ``orders``, ``summary``.
    """
    zone = ZoneInfo(check_timezone(timezone))
    profile = _profile(project, user_id, zone, unmask)
    return {
        "user_id": user_id,
        "profile": profile,
        "identities": _identities(project, user_id, zone, unmask),
        "tags": _tags(project, user_id, tags, unmask),
        "models": _models(project, user_id),
        "segments": _segments(project, user_id, segments),
        "orders": _orders(project, user_id, zone, order_event, order_properties, order_amount, order_limit, unmask),
        "summary": _summary(project, user_id, zone),
    }


def _profile(project: ProjectStore, user_id: int, zone: ZoneInfo, unmask: bool) -> Row:
    person = sql("SELECT * FROM $u WHERE user_id = ? LIMIT 1", u=project.ref("users"))
    columns, rows = _query(project, person, [user_id])
    if not rows:
        raise NotFoundError(f"no person {user_id} in this project")
    out: Row = {}
    for name, value in zip(columns, rows[0], strict=True):
        if name in USER_TIMES:
            out[name] = _local(value, zone)
        else:
            out[name] = _json(mask_field(name, value, unmask=unmask))
    return out


def _identities(project: ProjectStore, user_id: int, zone: ZoneInfo, unmask: bool) -> list[Row]:
    rows = _rows(
        project,
        sql(
            "SELECT id_type, id_value, created_at FROM $i WHERE user_id = ? ORDER BY created_at, id_type, id_value",
            i=project.ref("identities"),
        ),
        [user_id],
    )
    return [{"id_type": t, "id_value": mask_field(t, v, unmask=unmask), "since": _local(at, zone)} for t, v, at in rows]


def _tags(project: ProjectStore, user_id: int, tags: Sequence[tuple[str, str, str]], unmask: bool) -> list[Row]:
    out = []
    for name, title_zh, title_en in tags:
        table = f"tag_{name}"
        if not history.exists(project, table):
            continue
        intervals = history.user_history(project, table, user_id)
        for interval in intervals:
            interval["value"] = mask_field(name, interval["value"], unmask=unmask)
        current = next((i["value"] for i in intervals if i["to"] is None), None)
        out.append({"name": name, "title_zh": title_zh, "title_en": title_en, "value": current, "history": intervals})
    return out


def _segments(project: ProjectStore, user_id: int, segments: Sequence[tuple[int, str]]) -> list[Row]:
    out = []
    for segment_id, name in segments:
        table = f"segment_{int(segment_id)}"
        if not history.exists(project, table):
            continue
        intervals = [
            {"entered": i["from"], "left": i["to"]}
            for i in history.user_history(project, table, user_id)
            if i["value"] is True
        ]
        member = any(i["left"] is None for i in intervals)
        out.append({"id": int(segment_id), "name": name, "member": member, "intervals": intervals})
    return out


# models -------------------------------------------------------------------------------------------------------
def model_tables(project: ProjectStore) -> list[str]:
    """The per-user model output tables of the project (``model_<name>`` with user, run date and version)."""
    rows = _rows(
        project,
        sql(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = ? AND starts_with(table_name, ?) "
            "AND column_name IN ('user_id', 'run_date', 'model_version') GROUP BY table_name HAVING count(*) = 3 "
            "ORDER BY table_name"
        ),
        [project.schema, "model_"],
    )
    return [r[0] for r in rows]


def _models(project: ProjectStore, user_id: int) -> list[Row]:
    out = []
    for table in model_tables(project):
        view = _model_view(project, table, user_id)
        if view is not None:
            out.append(view)
    return out


def _model_view(project: ProjectStore, table: str, user_id: int) -> Row | None:
    """The person's outputs in the table's latest run, and the previous run's values of the fields that changed."""
    columns, rows = _query(
        project,
        sql(
            "WITH r AS (SELECT DISTINCT run_date FROM $m ORDER BY run_date DESC LIMIT 2) "
            "SELECT *, (SELECT max(run_date) FROM r) AS _latest FROM $m "
            "WHERE user_id = ? AND run_date IN (SELECT run_date FROM r) ORDER BY run_date DESC",
            m=project.ref(table),
        ),
        [user_id],
    )
    runs = [dict(zip(columns, r, strict=True)) for r in rows]
    if not runs or runs[0]["run_date"] != runs[0]["_latest"]:
        return None  # not scored in the latest run
    latest, previous = runs[0], runs[1] if len(runs) > 1 else None

    def outputs(run: Row) -> Row:
        return {k: _json(v) for k, v in run.items() if k not in ("user_id", "run_date", "model_version", "_latest")}

    now = outputs(latest)
    view: Row = {
        "model": table.removeprefix("model_"),
        "run_date": latest["run_date"].isoformat(),
        "model_version": latest["model_version"],
        "outputs": now,
        "previous": None,
    }
    if previous is not None:
        before = outputs(previous)
        changed = {k: v for k, v in before.items() if now.get(k) != v}
        if changed:
            view["previous"] = {
                "run_date": previous["run_date"].isoformat(),
                "model_version": previous["model_version"],
                "changed": changed,
            }
    return view


# orders and summary -------------------------------------------------------------------------------------------
def _orders(
    project: ProjectStore,
    user_id: int,
    zone: ZoneInfo,
    event: str,
    properties: list[str] | None,
    amount: str,
    limit: int,
    unmask: bool,
) -> Row:
    if not isinstance(event, str) or not 0 < len(event) <= 200:
        raise ValidationError("orders: the order event is a name of 1 to 200 characters")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= TIMELINE_MAX:
        raise ValidationError(f"orders: list 1 to {TIMELINE_MAX} orders, not {limit!r}")
    known = project.properties("events")
    names = sorted(known) if properties is None else _check_event_props(properties, known)
    total = exp.func("sum", col(amount, "e")) if known.get(amount) == PropertyType.NUMBER else exp.null()
    where = and_(
        [
            exp.EQ(this=col("user_id", "e"), expression=literal(user_id)),
            exp.EQ(this=col("event", "e"), expression=exp.Literal.string(event)),
        ]
    )
    events = exp.table_("events", db=project.schema, quoted=True, alias="e")
    head = exp.select(exp.func("count", exp.Star()), total).from_(events).where(where)
    ((count, total_amount),) = _rows(project, head)
    listing = (
        exp.select(col("event_id", "e"), col("time", "e"), *(col(n, "e") for n in names))
        .from_(events.copy())
        .where(where.copy())
        .order_by(exp.Ordered(this=col("time", "e"), desc=True), exp.Ordered(this=col("event_id", "e"), desc=True))
        .limit(limit)
    )
    items = [
        {"event_id": r[0], "time": _local(r[1], zone), "properties": _props(names, r[2:], unmask)}
        for r in _rows(project, listing)
    ]
    return {"event": event, "count": int(count), "amount": total_amount, "items": items}


def _check_event_props(names: list[str], known: dict[str, PropertyType]) -> list[str]:
    unknown = [n for n in names if n not in known and n not in EVENT_COLUMNS]
    if unknown:
        raise ValidationError(f"orders: unknown event properties {', '.join(map(repr, unknown))}")
    return list(dict.fromkeys(names))


def _summary(project: ProjectStore, user_id: int, zone: ZoneInfo) -> Row:
    events = project.ref("events")
    by_event = _rows(
        project,
        sql("SELECT event, count(*) FROM $e WHERE user_id = ? GROUP BY event ORDER BY event", e=events),
        [user_id],
    )
    # active days and the last active time count what the person did, not what was sent to them (a push)
    ((total, days, first, last, last_active),) = _rows(
        project,
        sql(
            "SELECT count(*), count(DISTINCT CAST(timezone(?, CAST(time AS TIMESTAMPTZ)) AS DATE)) "
            "FILTER (WHERE $active), min(time), max(time), "
            "max(time) FILTER (WHERE $active) FROM $e WHERE user_id = ?",
            e=events,
            active=active_cond(project.passive_events()),
        ),
        [zone.key, user_id],
    )
    return {
        "events": int(total),
        "by_event": {e: int(n) for e, n in by_event},
        "active_days": int(days),
        "first_event": _local(first, zone),
        "last_event": _local(last, zone),
        "last_active": _local(last_active, zone),
    }


# timeline -----------------------------------------------------------------------------------------------------
def timeline(
    project: ProjectStore,
    user_id: int,
    *,
    timezone: str,
    limit: int = TIMELINE_LIMIT,
    before: str | None = None,
    events: list[str] | None = None,
    unmask: bool = False,
) -> dict[str, Any]:
    """One page of the person's events, newest first: ``{"events": [...], "next": cursor or None}``.

    Pages are cut on (time, event_id), the events' total order, so walking the ``next`` cursors visits every
    event once, even when events share a time or arrive between pages (new events land on earlier pages).

    Parameters
    ----------
    limit : int
        Events per page, 1 to 500.
    before : str, optional
        The ``next`` cursor of the previous page (opaque; a cursor not given out for this person is refused).
    events : list of str, optional
        Only these event names.
    """
    zone = ZoneInfo(check_timezone(timezone))
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= TIMELINE_MAX:
        raise ValidationError(f"limit: 1 to {TIMELINE_MAX} events per page, not {limit!r}")
    _require(project, user_id)
    conds: list[exp.Expr] = [exp.EQ(this=col("user_id", "e"), expression=literal(user_id))]
    if events is not None:
        conds.append(exp.In(this=col("event", "e"), expressions=[exp.Literal.string(n) for n in _names(events)]))
    if before is not None:
        at, event_id = decode_cursor(before, user_id)
        conds.append(
            sql(
                "$t < $at OR ($t = $at AND $id < $eid)",
                t=col("time", "e"),
                at=literal(at),
                id=col("event_id", "e"),
                eid=exp.Literal.string(event_id),
            )
        )
    query = (
        exp.select(exp.Star())
        .from_(exp.table_("events", db=project.schema, quoted=True, alias="e"))
        .where(and_(conds))
        .order_by(exp.Ordered(this=col("time", "e"), desc=True), exp.Ordered(this=col("event_id", "e"), desc=True))
        .limit(limit + 1)
    )
    columns, rows = _query(project, query)
    page = [dict(zip(columns, r, strict=True)) for r in rows[:limit]]
    more = len(rows) > limit
    return {
        "events": [_event(row, zone, unmask) for row in page],
        "next": encode_cursor(user_id, page[-1]["time"], page[-1]["event_id"]) if more else None,
    }


def _names(events: list[str]) -> list[str]:
    if not isinstance(events, list) or not events or len(events) > MAX_EVENT_NAMES:
        raise ValidationError(f"events: a list of 1 to {MAX_EVENT_NAMES} event names")
    if not all(isinstance(n, str) and 0 < len(n) <= 200 for n in events):
        raise ValidationError("events: every event name is text of 1 to 200 characters")
    return list(dict.fromkeys(events))


def _event(row: Row, zone: ZoneInfo, unmask: bool) -> Row:
    names = [k for k in row if k not in EVENT_FIXED]
    return {
        "event_id": row["event_id"],
        "event": row["event"],
        "time": _local(row["time"], zone),
        "distinct_id": row["distinct_id"],
        "lib": row["lib"],
        "properties": _props(names, [row[n] for n in names], unmask),
    }


def _props(names: Sequence[str], values: Sequence[Any], unmask: bool) -> Row:
    """The non-null properties, JSON-ready and masked where sensitive."""
    return {n: _json(mask_field(n, v, unmask=unmask)) for n, v in zip(names, values, strict=True) if v is not None}


# cursors ------------------------------------------------------------------------------------------------------
def encode_cursor(user_id: int, at: datetime, event_id: str) -> str:
    """An opaque cursor: the last event shown (time, event_id) and whose timeline it belongs to."""
    raw = orjson.dumps([user_id, at.isoformat(), event_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, user_id: int) -> tuple[datetime, str]:
    """The (time, event_id) a cursor of ``user_id``'s timeline holds; a ValidationError for anything else."""
    bad = ValidationError("before: not a timeline cursor given out by this server; start from the first page")
    if not isinstance(cursor, str) or len(cursor) > 1000:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        owner, at, event_id = orjson.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise bad from exc
    if type(owner) is not int or not isinstance(event_id, str) or moment.tzinfo is not None:
        raise bad
    if owner != user_id:
        raise ValidationError("before: this cursor belongs to another person's timeline")
    return moment, event_id


# plumbing -----------------------------------------------------------------------------------------------------
def _query(
    project: ProjectStore, stmt: exp.Expr, params: list[Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    with project.writer() as s:
        result = s.execute(stmt, params or [])
        return result.columns, result.fetchall()


def _rows(project: ProjectStore, stmt: exp.Expr, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return _query(project, stmt, params)[1]


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    """A stored naive-UTC instant in the project's zone, ISO 8601 with its offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(zone).isoformat()


def _json(value: object) -> object:
    """A DuckDB value as JSON: dates and times ISO 8601, lists as lists, the rest as they are."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value
