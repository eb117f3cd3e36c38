"""The person × local-day panel that difference-in-differences reads: one aggregation per kind of fact.

A treatment is *any* event (``member_join``, ``coupon_used`` …) with optional property filters; its first time
per person is the person's treatment day. The outcome is an event counted, or a numeric property of it summed,
per person and local day (``order_paid``, or its ``order_amount``). Alongside: the matching facts as of each day
(counts of the outcome event, active days from the project's active events, first local day seen, the first day
of each "had done X" event), so :mod:`userloop.experiment.did_estimate` never reads the store again.

Every statement is a sqlglot tree (:mod:`userloop.store.sqlbuild`): event names, property names and values enter
as quoted identifiers and literals, never as text. Times are naive UTC in the store; local days come from the
project's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlglot import exp

from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.experiment.causal_types import Outcome, Treatment
from userloop.schema.types import PropertyType
from userloop.store.activity import active_cond
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import col, sql

#: The longest window read (people × days matrices are held in memory).
MAX_DAYS = 3 * 366
#: A treatment day for people never treated inside the panel (larger than any day index).
NEVER = np.iinfo(np.int32).max


#: The condition template of each comparison (fixed text: the property and value enter as nodes).
_OPS = {"eq": "$p = $v", "ne": "$p <> $v", "gt": "$p > $v", "gte": "$p >= $v", "lt": "$p < $v", "lte": "$p <= $v"}


@dataclass(frozen=True)
class Panel:
    """People × local days of ``[start, start + days)``, rows sorted by ``user_id``.

    ``outcome``/``counts``: the outcome and the number of outcome events per person-day; ``active``: 1 where the
    person did an active event that day; ``first_day``: the day index of their first event (negative before the
    panel); ``treated``: the day index of their first treatment (:data:`NEVER` if none by the end; negative if
    before the panel); ``flags``: per "had done X" event, the day index of its first time (:data:`NEVER` if none);
    ``recent``: per "did X lately" event, 1 where the person had it that day (a push received says the app is still
    installed).
    """

    start: date
    user_id: npt.NDArray[np.int64]
    outcome: npt.NDArray[np.float64]
    counts: npt.NDArray[np.float64]
    active: npt.NDArray[np.float64]
    first_day: npt.NDArray[np.int64]
    treated: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]
    recent: tuple[npt.NDArray[np.float64], ...] = ()

    @property
    def days(self) -> int:
        return int(self.outcome.shape[1])


@dataclass(frozen=True)
class PanelReader:
    """Reads a :class:`Panel` of one project for the local days ``[start, end]`` in ``timezone``."""

    store: ProjectStore
    timezone: str
    start: date
    end: date

    def utc(self, day: date) -> datetime:
        local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    def day_index(self, stamp: exp.Expr) -> exp.Expr:
        """Local days from ``start`` to the day of a stored naive-UTC ``stamp``."""
        local = sql("CAST(timezone($tz, timezone('UTC', $v)) AS DATE)", tz=self.timezone, v=stamp)
        return sql("date_diff('day', $start, $local)", start=self.start, local=local)

    def read(
        self, treatment: Treatment, outcome: Outcome, had_done: tuple[str, ...], did_lately: tuple[str, ...] = ()
    ) -> Panel:
        """The panel: everyone first seen before the end, their outcomes, activity, treatment and flags."""
        self.check(treatment, outcome, had_done, did_lately)
        days = (self.end - self.start).days + 1
        people = self.fetch(
            sql(
                "SELECT user_id, $first AS first_day FROM $users WHERE first_seen < $end ORDER BY user_id",
                first=self.day_index(col("first_seen")),
                users=self.store.ref("users"),
                end=self.utc(self.end + timedelta(days=1)),
            )
        )
        user_id = people["user_id"].astype(np.int64)
        value = sql("sum($p)", p=col(outcome.property)) if outcome.property else sql("count(*)")
        outcome_rows = self.daily(sql("event = $e", e=outcome.event), [exp.alias_(value, "v"), sql("count(*) AS c")])
        active_rows = self.daily(active_cond(sorted(self.store.passive_events())), [sql("1 AS v")])
        return Panel(
            start=self.start,
            user_id=user_id,
            outcome=dense(user_id, days, outcome_rows, "v"),
            counts=dense(user_id, days, outcome_rows, "c"),
            active=dense(user_id, days, active_rows, "v"),
            first_day=people["first_day"].astype(np.int64),
            treated=self.first_days(user_id, treatment_cond(treatment)),
            flags=np.stack([self.first_days(user_id, sql("event = $e", e=e)) for e in had_done])
            if had_done
            else np.zeros((0, len(user_id)), dtype=np.int64),
            recent=tuple(
                np.minimum(dense(user_id, days, self.daily(sql("event = $e", e=e), [sql("1 AS v")]), "v"), 1.0)
                for e in did_lately
            ),
        )

    def check(
        self, treatment: Treatment, outcome: Outcome, had_done: tuple[str, ...], did_lately: tuple[str, ...] = ()
    ) -> None:
        """Unknown events are 404s and a property that is missing or not a number is a 400, each naming its field."""
        known = self.store.event_names()
        named = [("treatment.event", treatment.event), ("outcome.event", outcome.event)]
        named += [(f"had_done[{k}]", e) for k, e in enumerate(had_done)]
        for where, event in [*named, *((f"did_lately[{k}]", e) for k, e in enumerate(did_lately))]:
            if event not in known:
                raise NotFoundError(f"the project has no event {event!r}", code="unknown_event", field=where)
        props = self.store.properties("events")
        if outcome.property is not None and props.get(outcome.property) != PropertyType.NUMBER:
            raise ValidationError(
                f"outcome.property {outcome.property!r} must be a NUMBER event property to sum "
                f"(it is {props.get(outcome.property, 'unknown')})",
                code="invalid_value",
                field="outcome.property",
            )
        for k, f in enumerate(treatment.where):
            if f.property not in props:
                raise ValidationError(
                    f"treatment.where[{k}]: the project has no event property {f.property!r}",
                    code="invalid_value",
                    field=f"treatment.where[{k}].property",
                )
        if self.end < self.start:
            raise ValidationError(f"the window ends ({self.end}) before it starts ({self.start})", field="end")
        if self.start.year < 1971 or self.end.year > 2999 or (self.end - self.start).days >= MAX_DAYS:
            raise ValidationError(
                f"the window {self.start}..{self.end} must lie between 1971 and 2999 and span at most {MAX_DAYS} "
                "days; narrow it with start/end",
                code="invalid_value",
                field="start",
            )
        types = {PropertyType.NUMBER: (int, float), PropertyType.STRING: (str,), PropertyType.BOOL: (bool,)}
        for k, f in enumerate(treatment.where):
            kind = props.get(f.property)
            fits = (
                kind in types
                and isinstance(f.value, types[kind])
                and (kind == PropertyType.BOOL) == isinstance(f.value, bool)
            )
            if not fits:
                raise ValidationError(
                    f"treatment.where[{k}]: {f.property!r} is {kind} and cannot be compared with {f.value!r}",
                    code="invalid_value",
                    field=f"treatment.where[{k}].value",
                )

    def daily(self, cond: exp.Expr, values: list[exp.Expr]) -> dict[str, npt.NDArray[Any]]:
        """Per person and local day inside the panel, the ``values`` aggregated over rows passing ``cond``."""
        return self.fetch(
            sql(
                "SELECT user_id, $day AS day, $values FROM $events "
                "WHERE $cond AND time >= $lo AND time < $hi GROUP BY ALL",
                day=self.day_index(col("time")),
                values=values,
                events=self.store.ref("events"),
                cond=cond,
                lo=self.utc(self.start),
                hi=self.utc(self.end + timedelta(days=1)),
            )
        )

    def first_days(self, user_id: npt.NDArray[np.int64], cond: exp.Expr) -> npt.NDArray[np.int64]:
        """Per person, the day index of their first event passing ``cond`` up to the end; :data:`NEVER` if none."""
        rows = self.fetch(
            sql(
                "SELECT user_id, $day AS day FROM (SELECT user_id, min(time) AS time FROM $events "
                "WHERE $cond AND time < $hi GROUP BY user_id)",
                day=self.day_index(col("time")),
                events=self.store.ref("events"),
                cond=cond,
                hi=self.utc(self.end + timedelta(days=1)),
            )
        )
        out = np.full(len(user_id), NEVER, dtype=np.int64)
        at = np.searchsorted(user_id, rows["user_id"])
        known = (at < len(user_id)) & (user_id[np.minimum(at, len(user_id) - 1)] == rows["user_id"])
        out[at[known]] = rows["day"][known]
        return out

    def fetch(self, stmt: exp.Expr) -> dict[str, npt.NDArray[Any]]:
        with self.store.session() as session:
            raw = session.execute(stmt).numpy()
        return {k: np.asarray(v.filled(0) if isinstance(v, np.ma.MaskedArray) else v) for k, v in raw.items()}


def data_window(store: ProjectStore, timezone: str, start: date | None, end: date | None) -> tuple[date, date]:
    """``start`` and ``end``, each defaulting to the first or last local day with events."""
    if start is not None and end is not None:
        return start, end
    row = store.fetchall(
        sql(
            "SELECT CAST(timezone($tz, timezone('UTC', min(time))) AS DATE), "
            "CAST(timezone($tz, timezone('UTC', max(time))) AS DATE) FROM $events",
            tz=timezone,
            events=store.ref("events"),
        )
    )[0]
    if row[0] is None:
        raise UserloopError("the project has no events", code="model_no_data")
    return start or row[0], end or row[1]


def treatment_cond(treatment: Treatment) -> exp.Expr:
    """``event = 'x' AND p1 op v1 AND …``: the rows that are the treatment."""
    parts = [sql("event = $e", e=treatment.event)]
    for f in treatment.where:
        parts.append(sql(_OPS[f.op], p=col(f.property), v=f.value))
    return exp.and_(*parts)


def dense(
    user_id: npt.NDArray[np.int64], days: int, rows: dict[str, npt.NDArray[Any]], value: str
) -> npt.NDArray[np.float64]:
    """The rows' ``value`` as a people × days matrix (0 where no row; rows of unknown people are left out)."""
    out = np.zeros((len(user_id), days))
    if not len(user_id) or not len(rows["user_id"]):
        return out
    at = np.searchsorted(user_id, rows["user_id"])
    day = rows["day"].astype(np.int64)
    keep = (at < len(user_id)) & (user_id[np.minimum(at, len(user_id) - 1)] == rows["user_id"])
    keep &= (day >= 0) & (day < days)
    np.add.at(out, (at[keep], day[keep]), rows[value][keep].astype(np.float64))
    return out
