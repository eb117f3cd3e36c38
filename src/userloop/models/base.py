"""What every per-user model shares: typed config, the run context, output tables and stored reports.

A model is one class on :class:`UserModel`: a pydantic config (``extra="forbid"``), a ``version`` string and a
:meth:`UserModel.compute` that reads the project with SQL (DuckDB does the per-user aggregation) and computes
with numpy. :meth:`UserModel.run` wraps it: it validates the inputs the config names once, computes, writes one
row per user to the project table ``model_<name>`` (``user_id, run_date, model_version, outputs…``) and stores
the report in ``model_reports``. Re-running a date replaces that date's rows; older dates stay, so the value a
user had on a past date can be read back with :func:`read_outputs`.

Dates are local days of the project's time zone: ``as_of`` means "at the end of that day", so a run sees the
events before local midnight that starts ``as_of + 1``.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Generic, Self, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from userloop.core.clock import DEFAULT_TIMEZONE, check_timezone, utcnow
from userloop.core.errors import UserloopError
from userloop.schema.types import PropertyType
from userloop.store import ProjectStore
from userloop.store.activity import active_cond
from userloop.store.backend import Params, Session
from userloop.store.sqlbuild import add_column, col, sql

__all__ = [
    "ModelConfig",
    "ModelError",
    "ModelInputError",
    "ModelRun",
    "NoDataError",
    "Outputs",
    "RunContext",
    "UserModel",
    "fetch_columns",
    "latest_report",
    "read_outputs",
]

REPORTS_TABLE = "model_reports"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class ModelError(UserloopError):
    """A user model cannot run on the data or the configuration given."""

    code = "model"


class ModelInputError(ModelError):
    """The configuration names an event or property the project does not have, or of the wrong type."""

    code = "model_invalid_input"


class NoDataError(ModelError):
    """There is nothing to model: no events, no purchases, or too few users for the method."""

    code = "model_no_data"


class ModelConfig(BaseModel):
    """Base of every model configuration: frozen, and unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def with_money(self, money: str) -> Self:
        """This configuration with ``money`` put in every purchase source (nested ones too) that leaves the money
        property to the project (a purchase source fills its own: :class:`userloop.models.purchases.PurchaseSource`)."""
        updates: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, ModelConfig) and (resolved := value.with_money(money)) is not value:
                updates[name] = resolved
        return self.model_copy(update=updates) if updates else self


@dataclass(frozen=True)
class RunContext:
    """Where and when a model runs: the project, the local day ``as_of`` and the project's time zone."""

    project: ProjectStore
    as_of: date
    timezone: str = DEFAULT_TIMEZONE

    def day_start(self, day: date) -> datetime:
        """Naive UTC time of local midnight at the start of ``day``."""
        local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    @property
    def end(self) -> datetime:
        """Naive UTC end (exclusive) of ``as_of``: events before it are known on ``as_of``."""
        return self.day_start(self.as_of + timedelta(days=1))

    def window_start(self, days: int) -> datetime:
        """Naive UTC start of the window of the last ``days`` local days ending with ``as_of``."""
        return self.day_start(self.as_of - timedelta(days=days - 1))

    def passive_events(self, configured: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The events that are not activity: ``configured`` when a model's configuration names them, else the
        project's passive events (:meth:`userloop.store.duck.ProjectStore.passive_events`)."""
        return tuple(configured) if configured is not None else tuple(sorted(self.project.passive_events()))

    def active(self, configured: tuple[str, ...] | None = None, table: str | None = None) -> exp.Expr:
        """The condition that an event row (of ``table``, an alias, when given) is activity: its ``event`` is not
        one of :meth:`passive_events` (:func:`userloop.store.activity.active_cond`; TRUE when nothing is
        passive)."""
        return active_cond(self.passive_events(configured), table)

    def local_day(self, stamp: exp.Expr | str) -> exp.Expr:
        """The local calendar day of a stored (naive UTC) timestamp (a column name or an expression)."""
        value = col(stamp) if isinstance(stamp, str) else stamp
        return sql("CAST(timezone($tz, CAST($value AS TIMESTAMPTZ)) AS DATE)", tz=self.timezone, value=value)

    def days_ago(self, stamp: exp.Expr | str) -> exp.Expr:
        """Whole local days between the day of ``stamp`` and ``as_of`` (0 = the same day)."""
        return sql("date_diff('day', $day, $as_of)", day=self.local_day(stamp), as_of=self.as_of)

    def events(self, alias: str | None = None) -> exp.Table:
        return self.project.ref("events", alias)

    def users(self, alias: str | None = None) -> exp.Table:
        return self.project.ref("users", alias)

    def require_event(self, event: str) -> None:
        """Raise :class:`NoDataError` (``model_unknown_event``) if the project never saw ``event``."""
        if event not in self.project.event_names():
            raise NoDataError(
                f"the project has no {event!r} events; check the event name (the project has "
                f"{len(self.project.event_names())} event names)",
                code="model_unknown_event",
            )

    def require_property(self, table: str, name: str, *kinds: PropertyType) -> None:
        """Raise :class:`ModelInputError` if ``table`` has no property ``name`` of one of ``kinds``."""
        known = self.project.properties(table)
        if name not in known:
            raise ModelInputError(f"the {table} table has no property {name!r}", code="model_unknown_property")
        if kinds and known[name] not in kinds:
            wanted = " or ".join(k.value for k in kinds)
            raise ModelInputError(
                f"property {name!r} of {table} is {known[name].value}, the model needs {wanted}",
                code="model_property_type",
            )


@dataclass(frozen=True)
class Outputs:
    """What :meth:`UserModel.compute` returns: one value per user in each column, and the report."""

    user_id: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[Any]]
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRun:
    """The outcome of one :meth:`UserModel.run`."""

    name: str
    table: str
    run_date: date
    version: str
    users: int
    seconds: float
    report: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "table": self.table,
            "run_date": self.run_date.isoformat(),
            "model_version": self.version,
            "users": self.users,
            "seconds": round(self.seconds, 3),
            "report": self.report,
        }


C = TypeVar("C", bound=ModelConfig)


class UserModel(ABC, Generic[C]):
    """Base of the per-user models; subclasses set ``name``, ``version``, ``config_class`` and ``compute``."""

    name: ClassVar[str]
    version: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]

    def __init__(self, config: C | None = None) -> None:
        self.config: C = config if config is not None else self.config_class()  # type: ignore[assignment]

    @property
    def output_name(self) -> str:
        """Name of this configured model's outputs (``model_<output_name>`` is its table)."""
        return self.name

    def run(self, project: ProjectStore, as_of: date, *, timezone: str = DEFAULT_TIMEZONE) -> ModelRun:
        """Compute the model as of the end of local day ``as_of`` and store its outputs and report.

        Parameters
        ----------
        project : ProjectStore
            The project to read and write.
        as_of : datetime.date
            Local day the outputs describe; only events before the end of that day are read.
        timezone : str
            The project's IANA time zone (``Workspace.project_info(name).timezone``).

        Returns
        -------
        ModelRun
        """
        from userloop.store.settings import money_property

        ctx = RunContext(project, as_of, check_timezone(timezone))
        started = time.perf_counter()
        # purchases valued by "the project's money property" read the project's setting, for this run only
        model = copy.copy(self)
        model.config = self.config.with_money(money_property(project))
        outputs = model.compute(ctx)
        report = {"config": model.config.model_dump(mode="json"), **outputs.report}
        table = f"model_{self.output_name}"
        write_outputs(project, table, as_of, self.version, outputs)
        save_report(project, self.output_name, as_of, self.version, report)
        seconds = time.perf_counter() - started
        return ModelRun(self.output_name, table, as_of, self.version, len(outputs.user_id), seconds, report)

    @abstractmethod
    def compute(self, ctx: RunContext) -> Outputs:
        """Per-user outputs and the report, read from ``ctx.project`` as of ``ctx.as_of``."""


def fetch_columns(project: ProjectStore, stmt: exp.Expr, params: Params = None) -> dict[str, npt.NDArray[Any]]:
    """Run ``stmt`` on a private session and return its columns as numpy arrays (NULLs filled with NaN, 0 or
    '')."""
    with project.session() as session:
        raw = session.execute(stmt, params).numpy()
    out: dict[str, npt.NDArray[Any]] = {}
    for name, values in raw.items():
        if isinstance(values, np.ma.MaskedArray):
            fill: Any = np.nan if values.dtype.kind == "f" else 0 if values.dtype.kind in "iub" else ""
            out[name] = np.asarray(values.filled(fill))
        else:
            out[name] = np.asarray(values)
    return out


def write_outputs(project: ProjectStore, table: str, run_date: date, version: str, outputs: Outputs) -> None:
    """Replace ``run_date``'s rows of ``table`` with ``outputs``; creates or widens the table as needed."""
    data = pa.table({"user_id": pa.array(outputs.user_id, pa.int64()), **_arrow_columns(outputs.columns)})
    write_rows(project, table, run_date, version, data)


def write_rows(project: ProjectStore, table: str, run_date: date, version: str, data: pa.Table) -> None:
    """Replace ``run_date``'s rows of project table ``table`` with ``data`` plus ``run_date, model_version``.

    Columns are ``user_id`` (if ``data`` has one), ``run_date``, ``model_version``, then the rest of ``data``.
    The table is created, or widened by the columns it lacks, in the same transaction.
    """
    target = project.ref(table)
    if "user_id" in data.column_names:
        template = "SELECT user_id, $day AS run_date, $version AS model_version, * EXCLUDE (user_id) FROM _ul_model_out"
    else:
        template = "SELECT $day AS run_date, $version AS model_version, * FROM _ul_model_out"
    select = sql(template, day=run_date, version=version)
    assert isinstance(select, exp.Select)
    with project.atomic() as session:
        session.register("_ul_model_out", data)
        try:
            session.execute(exp.Create(this=target, kind="TABLE", exists=True, expression=select.limit(0)))
            _add_missing_columns(session, target, select)
            session.execute(sql("DELETE FROM $target WHERE run_date = ?", target=target), [run_date])
            session.execute(exp.Insert(this=target, expression=select, by_name=True))
        finally:
            session.unregister("_ul_model_out")


def _arrow_columns(columns: dict[str, npt.NDArray[Any]]) -> dict[str, pa.Array]:
    out = {}
    for name, values in columns.items():
        arr = np.asarray(values)
        out[name] = pa.array(arr.tolist() if arr.dtype.kind == "O" else arr)
    return out


def _add_missing_columns(session: Session, target: exp.Table, select: exp.Expr) -> None:
    have = {row[0] for row in session.fetchall(exp.Describe(this=target.copy()))}
    for name, sql_type, *_ in session.fetchall(exp.Describe(this=select.copy())):
        if name not in have:
            session.execute(add_column(target, name, sql_type))


def save_report(project: ProjectStore, name: str, run_date: date, version: str, report: dict[str, Any]) -> None:
    """Store ``report`` as JSON in ``model_reports``, replacing the same model's report for ``run_date``."""
    reports = project.ref(REPORTS_TABLE)
    doc = orjson.dumps(report, default=str, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    with project.atomic() as session:
        session.execute(
            sql(
                "CREATE TABLE IF NOT EXISTS $reports (model VARCHAR NOT NULL, run_date DATE NOT NULL, "
                "model_version VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, report VARCHAR NOT NULL)",
                reports=reports,
            )
        )
        session.execute(sql("DELETE FROM $reports WHERE model = ? AND run_date = ?", reports=reports), [name, run_date])
        session.execute(
            sql("INSERT INTO $reports VALUES (?, ?, ?, ?, ?)", reports=reports),
            [name, run_date, version, utcnow(), doc],
        )


def latest_report(project: ProjectStore, name: str, run_date: date | None = None) -> dict[str, Any]:
    """The stored report of model ``name`` for ``run_date`` (default: the latest run).

    Raises
    ------
    NoDataError
        ``model_no_report`` when the model has no stored report (for that date).
    """
    if not table_exists(project, REPORTS_TABLE):
        row = None
    else:
        on_day = sql("TRUE") if run_date is None else sql("run_date = $day", day=run_date)
        rows = project.fetchall(
            sql(
                "SELECT run_date, model_version, created_at, report FROM $reports WHERE model = ? AND $on_day "
                "ORDER BY run_date DESC LIMIT 1",
                reports=project.ref(REPORTS_TABLE),
                on_day=on_day,
            ),
            [name],
        )
        row = rows[0] if rows else None
    if row is None:
        when = "" if run_date is None else f" for {run_date}"
        raise NoDataError(f"model {name!r} has no stored report{when}; run it first", code="model_no_report")
    return {"model": name, "run_date": row[0], "model_version": row[1], "created_at": row[2],
            "report": orjson.loads(row[3])}  # fmt: skip


def latest_runs(project: ProjectStore) -> dict[str, date]:
    """Each model's latest run day, for the models that have a stored report."""
    if not table_exists(project, REPORTS_TABLE):
        return {}
    rows = project.fetchall(
        sql("SELECT model, max(run_date) FROM $reports GROUP BY model", reports=project.ref(REPORTS_TABLE))
    )
    return {str(name): day for name, day in rows}


def read_outputs(project: ProjectStore, name: str, run_date: date) -> dict[str, npt.NDArray[Any]]:
    """The per-user outputs model ``name`` stored for ``run_date``, sorted by ``user_id``."""
    if not table_exists(project, f"model_{name}"):
        raise NoDataError(f"model {name!r} has no stored outputs; run it first", code="model_no_outputs")
    stmt = sql("SELECT * FROM $outputs WHERE run_date = ? ORDER BY user_id", outputs=project.ref(f"model_{name}"))
    return fetch_columns(project, stmt, [run_date])


def table_exists(project: ProjectStore, table: str) -> bool:
    """Whether the project's schema holds ``table``."""
    stmt = sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?")
    return bool(project.scalar(stmt, [project.schema, table]))
