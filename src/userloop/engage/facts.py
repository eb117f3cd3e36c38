"""The facts a journey may ask about, loaded for a batch of people at once.

The interpreter (:mod:`userloop.engage.interpreter`) is pure: it reads a person's profile properties, tag values,
segment membership, user-model outputs and time zone through the :class:`~userloop.engage.interpreter.Facts`
protocol. The runtime moves people through a journey in batches, so it asks first what a journey can read
(:func:`needs_of`, merged over journeys with ``|``) and then loads exactly that for the whole batch
(:func:`load_facts`): one statement per kind of fact (properties with the zone, tags, segments, models), the
batch's person keys handed to the store as a registered Arrow table, never one statement per person and never
ids as SQL text. Every statement is a sqlglot tree (:mod:`userloop.store.sqlbuild`); user-given names enter as
quoted identifiers or are only ever matched against the project's own definitions.

Where each fact comes from:

- **properties**: the ``users`` table's typed columns (the registry, :meth:`ProjectStore.properties`), plus the
  columns every person row has (:data:`userloop.query.compile.USER_COLUMNS`). A property the project has never
  seen is ``None`` for everyone (with a warning), not an error: a journey may be written before the data arrives.
- **zone**: the person's ``zone_property`` (``$timezone``, as Sensors' SDKs and the ingest name it) when it holds
  an IANA zone name :class:`zoneinfo.ZoneInfo` accepts, else the project's zone.
- **tags**: each tag's current values, read from its history table (:func:`userloop.profile.history.values_on`);
  a tag never computed is ``None`` for everyone (warning).
- **segments**: each segment's members as of its last refresh (:func:`userloop.profile.segments.members`); a
  segment never refreshed, or deleted, has no members (warning).
- **models**: the latest run (greatest ``run_date``) of each user-model table ``model_<name>``
  (:mod:`userloop.models.base`), through :data:`MODEL_OUTPUTS`; ``None`` when the model has not run (warning).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import func, or_, select
from sqlglot import exp

from userloop.core.clock import utcnow
from userloop.core.errors import NotFoundError
from userloop.engage.interpreter import Person
from userloop.engage.journey import (
    AllOf,
    DateEntry,
    InSegment,
    Journey,
    MemberIs,
    ModelIs,
    PropertyIs,
    Split,
    StrategySet,
    TagIs,
    Wait,
)
from userloop.membership.ledger_tables import PointsLot
from userloop.membership.members import MemberRow, ProgrammeRow
from userloop.profile import history, segments
from userloop.profile import tags as tag_store
from userloop.profile.rulesql import model_fields
from userloop.query.compile import USER_COLUMNS
from userloop.schema.types import PropertyType
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project
from userloop.store.sqlbuild import col, sql

__all__ = ["MODEL_OUTPUTS", "Loaded", "Needs", "load_facts", "needs_of"]

#: The journey's model names (:class:`userloop.engage.journey.ModelIs`) → (model, output column): the table is
#: ``model_<model>`` and the value is the column of the model's latest run.
#:
#: - ``rfm_class``: :class:`userloop.models.rfm.RFMModel`'s class code (``"HHH"`` … ``"LLL"``, R/F/M above or
#:   below the median; the code, not the localised name, so a journey reads the same in any language);
#: - ``lifecycle``: :class:`userloop.models.lifecycle.LifecycleModel`'s ``stage`` (``introduction``, ``growth``,
#:   ``maturity``, ``dormancy``, ``churn``);
#: - ``churn_tier``: :class:`userloop.models.churn.ChurnModel`'s ``risk_tier`` (``low``, ``medium``, ``high``);
#: - ``churn_probability``: its ``churn_probability`` (0 to 1);
#: - ``clv``: :class:`userloop.models.clv_model.CLVRunModel`'s ``clv`` (discounted expected value, in the
#:   project's money unit).
MODEL_OUTPUTS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "rfm_class": ("rfm", "rfm_class"),
        "lifecycle": ("lifecycle", "stage"),
        "churn_tier": ("churn", "risk_tier"),
        "churn_probability": ("churn", "churn_probability"),
        "clv": ("clv", "clv"),
    }
)

#: The name the batch's person keys are read by while the facts load (on a private session).
IDS_VIEW = "_ul_facts_ids"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


# what a journey reads -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Needs:
    """The facts a journey (or several, merged with ``|``) may read: property, tag, segment and model names, and
    the membership facts it reads as ``(programme, field, wallet)``."""

    props: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    segments: frozenset[int] = frozenset()
    models: frozenset[str] = frozenset()
    members: frozenset[tuple[str, str, str]] = frozenset()

    def __or__(self, other: Needs) -> Needs:
        return Needs(
            self.props | other.props,
            self.tags | other.tags,
            self.segments | other.segments,
            self.models | other.models,
            self.members | other.members,
        )

    def __bool__(self) -> bool:
        return bool(self.props or self.tags or self.segments or self.models or self.members)


def needs_of(journey: Journey) -> Needs:
    """Every fact ``journey`` can read: the conditions of its audience (``who``), of every condition split's
    branches and every strategy set's sub-strategies, the date property of each ``Wait.until_property``, and
    the date property a date entry (birthday journeys) is timed by."""
    whens: list[AllOf] = [journey.who]
    props: set[str] = set()
    if isinstance(journey.entry, DateEntry):
        props.add(journey.entry.property)
    for node in journey.nodes:
        match node:
            case Split():
                whens.extend(b.when for b in node.branches)
            case StrategySet():
                whens.extend(s.when for s in node.strategies)
            case Wait() if node.until_property is not None:
                props.add(node.until_property)
    tags: set[str] = set()
    segs: set[int] = set()
    models: set[str] = set()
    members: set[tuple[str, str, str]] = set()
    for when in whens:
        for c in when.all:
            match c:
                case PropertyIs():
                    props.add(c.property)
                case TagIs():
                    tags.add(c.tag)
                case InSegment():
                    segs.add(c.segment)
                case ModelIs():
                    models.add(c.model)
                case MemberIs():
                    members.add((c.programme, c.field, c.wallet))
    return Needs(frozenset(props), frozenset(tags), frozenset(segs), frozenset(models), frozenset(members))


# loading ------------------------------------------------------------------------------------------------------
class Loaded(dict[int, Person]):
    """The facts of a batch, by person key, with ``warnings``: what could not be read and why (a property the
    project does not have, a tag never computed, a segment never refreshed, a model that has not run)."""

    def __init__(self, persons: Mapping[int, Person], warnings: list[str]) -> None:
        super().__init__(persons)
        self.warnings = warnings


def load_facts(
    project: ProjectStore,
    meta: MetaStore,
    info: Project,
    persons: Sequence[int],
    needs: Needs,
    *,
    zone_property: str = "$timezone",
    at: datetime | None = None,
) -> Loaded:
    """The :class:`~userloop.engage.interpreter.Person` facts of every person in ``persons`` that ``needs``
    names, read with one statement per kind of fact for the whole batch.

    Every key in ``persons`` gets a :class:`Person`, also one the project has no profile for (empty properties,
    the project's zone). ``zone`` is the person's ``zone_property`` when it is a valid IANA zone, else
    ``info.timezone``; ``project_zone`` is ``info.timezone``. Points balances are as of ``at`` (naive UTC; now
    when None). The result's ``warnings`` say which facts are missing for everyone (see the module's doc).
    """
    ids = sorted({int(p) for p in persons})
    warnings: list[str] = []
    zone_of = _zones(info.timezone)
    batch = pa.table({"user_id": pa.array(ids, pa.int64())})
    with project.session() as session:
        session.register(IDS_VIEW, batch)
        try:
            props, zones = _props(session, project, sorted(needs.props), zone_property, zone_of, warnings)
            tag_values = _tags(session, project, meta, info, sorted(needs.tags), warnings)
            members = _segments(session, project, meta, info, sorted(needs.segments), warnings)
            model_values = _models(session, project, sorted(needs.models), warnings)
        finally:
            session.unregister(IDS_VIEW)
    memberships = _memberships(meta, info, sorted({m[0] for m in needs.members}), ids, at or utcnow(), warnings)
    project_zone = info.timezone
    out: dict[int, Person] = {}
    for p in ids:
        out[p] = Person(
            person=p,
            zone=zones.get(p, project_zone),
            project_zone=project_zone,
            props=props.get(p, _EMPTY),
            tags=tag_values.get(p, _EMPTY),
            segments=members.get(p, frozenset()),
            models=model_values.get(p, _EMPTY),
            members=memberships.get(p, _EMPTY),
        )
    return Loaded(out, warnings)


def _ids(alias: str = "i") -> exp.Table:
    return exp.table_(IDS_VIEW, quoted=True, alias=alias)


def _zones(project_zone: str) -> Any:
    """A cached ``value → zone`` for one load: the value when it is a zone name ZoneInfo loads, else the
    project's zone."""

    @functools.cache
    def zone_of(value: object) -> str:
        return value if isinstance(value, str) and _valid_zone(value) else project_zone

    return zone_of


@functools.lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError (a path), OSError (a directory such as "America")
        return False
    return True


def _rows(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    """An Arrow result's rows as Python tuples, column by column (faster than row by row)."""
    return zip(*(c.to_pylist() for c in table.columns), strict=True)


def _props(
    session: Any,
    project: ProjectStore,
    names: list[str],
    zone_property: str,
    zone_of: Any,
    warnings: list[str],
) -> tuple[dict[int, Mapping[str, Any]], dict[int, str]]:
    """``person → {property: value}`` (every needed name, None where unset) and ``person → zone`` for the
    people with a profile row."""
    known: dict[str, PropertyType] = {**USER_COLUMNS, **project.properties("users")}
    readable = [n for n in names if n in known]
    for n in names:
        if n not in known:
            warnings.append(f"property {n!r} is not a profile property of this project; it is empty for everyone")
    zone_col = zone_property if known.get(zone_property) == PropertyType.STRING else None
    if not readable and zone_col is None:
        return {}, {}
    select = [col("user_id", "u"), *(exp.alias_(col(n, "u"), f"v{k}") for k, n in enumerate(readable))]
    if zone_col is not None:
        select.append(exp.alias_(col(zone_col, "u"), "zone"))
    stmt = sql(
        "SELECT $cols FROM $users AS u JOIN $ids ON u.user_id = i.user_id",
        cols=select,
        users=project.ref("users"),
        ids=_ids(),
    )
    props: dict[int, Mapping[str, Any]] = {}
    zones: dict[int, str] = {}
    empty = dict.fromkeys(names)
    for row in _rows(session.arrow(stmt)):
        person = int(row[0])
        values = dict(empty)
        values.update(zip(readable, row[1 : 1 + len(readable)], strict=True))
        props[person] = values
        if zone_col is not None:
            zones[person] = zone_of(row[-1])
    return props, zones


def _tags(
    session: Any, project: ProjectStore, meta: MetaStore, info: Project, names: list[str], warnings: list[str]
) -> dict[int, Mapping[str, Any]]:
    """``person → {tag: current value}`` for the people with a value of at least one needed tag."""
    if not names:
        return {}
    defined = {row.name: row for row in tag_store.listing(meta, info.id)}
    readable: list[tuple[str, str]] = []  # (tag, history table)
    for n in names:
        found = defined.get(n)
        if found is None:
            warnings.append(f"tag {n!r} is not defined in this project; it is empty for everyone")
        elif not history.exists(project, found.table):
            warnings.append(f"tag {n!r} has not been computed yet; it is empty for everyone")
        else:
            if not found.enabled:
                warnings.append(f"tag {n!r} is disabled; its values are those of its last run")
            readable.append((n, found.table))
    if not readable:
        return {}
    stmt: exp.Select = exp.select(col("user_id", "i")).from_(_ids())
    present: list[exp.Expr] = []
    for k, (_, table) in enumerate(readable):
        alias = f"t{k}"
        current = exp.Subquery(
            this=history.values_on(project.schema, table), alias=exp.TableAlias(this=exp.to_identifier(alias))
        )
        stmt = stmt.join(current, on=sql("$a = $b", a=col("user_id", alias), b=col("user_id", "i")), join_type="left")
        stmt = stmt.select(exp.alias_(col("value", alias), f"v{k}"))
        present.append(exp.Not(this=exp.Is(this=col("user_id", alias), expression=exp.null())))
    stmt = stmt.where(exp.or_(*present))
    out: dict[int, Mapping[str, Any]] = {}
    for row in _rows(session.arrow(stmt)):
        out[int(row[0])] = {n: v for (n, _), v in zip(readable, row[1:], strict=True) if v is not None}
    return out


def _segments(
    session: Any, project: ProjectStore, meta: MetaStore, info: Project, ids: list[int], warnings: list[str]
) -> dict[int, frozenset[int]]:
    """``person → the needed segments they are a member of`` (as of each segment's last refresh)."""
    parts: list[exp.Expr] = []
    for segment_id in ids:
        try:
            row = segments.get(meta, info.id, segment_id)
        except NotFoundError:
            warnings.append(f"segment {segment_id} does not exist in this project; nobody is a member")
            continue
        if not history.exists(project, row.table):
            warnings.append(f"segment {segment_id} has never been refreshed; nobody is a member")
            continue
        parts.append(
            sql(
                "SELECT s.user_id, $id AS segment FROM ($members) AS s",
                members=segments.members(project.schema, row),
                id=segment_id,
            )
        )
    if not parts:
        return {}
    union = parts[0] if len(parts) == 1 else exp.union(*parts, distinct=False)
    stmt = sql(
        "SELECT m.user_id, list(DISTINCT m.segment) AS segments FROM ($union) AS m JOIN $ids ON m.user_id = i.user_id "
        "GROUP BY m.user_id",
        union=union,
        ids=_ids(),
    )
    return {int(person): frozenset(int(s) for s in segs) for person, segs in _rows(session.arrow(stmt))}


def _models(session: Any, project: ProjectStore, names: list[str], warnings: list[str]) -> dict[int, Mapping[str, Any]]:
    """``person → {model name: output}`` from each model table's latest run, for the people it holds."""
    if not names:
        return {}
    fields = model_fields(project)
    by_table: dict[str, list[tuple[str, str]]] = {}  # model → [(journey name, column)]
    for n in names:
        if n not in MODEL_OUTPUTS:
            warnings.append(f"{n!r} is not a model output a journey reads ({', '.join(MODEL_OUTPUTS)}); it is empty")
            continue
        model, column = MODEL_OUTPUTS[n]
        if column not in fields.get(model, {}):
            warnings.append(f"model output {n!r} ({model}.{column}) is not there: the {model} model has not run")
            continue
        by_table.setdefault(model, []).append((n, column))
    if not by_table:
        return {}
    stmt: exp.Select = exp.select(col("user_id", "i")).from_(_ids())
    readable: list[str] = []
    present: list[exp.Expr] = []
    for k, (model, outputs) in enumerate(sorted(by_table.items())):
        alias = f"m{k}"
        table = project.ref(f"model_{model}")
        latest = sql(
            "SELECT o.user_id, $cols FROM $t AS o WHERE o.run_date = (SELECT max(r.run_date) FROM $t AS r)",
            cols=[col(c, "o") for _, c in outputs],
            t=table,
        )
        run = exp.Subquery(this=latest, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        stmt = stmt.join(run, on=sql("$a = $b", a=col("user_id", alias), b=col("user_id", "i")), join_type="left")
        for n, c in outputs:
            stmt = stmt.select(exp.alias_(col(c, alias), f"v{len(readable)}"))
            readable.append(n)
        present.append(exp.Not(this=exp.Is(this=col("user_id", alias), expression=exp.null())))
    stmt = stmt.where(exp.or_(*present))
    out: dict[int, Mapping[str, Any]] = {}
    for row in _rows(session.arrow(stmt)):
        out[int(row[0])] = {n: v for n, v in zip(readable, row[1:], strict=True) if not _missing(v)}
    return out


def _memberships(
    meta: MetaStore, info: Project, names: list[str], ids: list[int], at: datetime, warnings: list[str]
) -> dict[int, dict[str, dict[str, Any]]]:
    """``person → {programme: {"member": True, "level": n, "points:<wallet>": balance}}`` for the active members
    among ``ids`` of each programme named, from the member system's tables (a few statements per programme).

    A balance is what the member can spend at ``at``: the remaining points of their lots that are unlocked and
    not lapsed by then (as :meth:`userloop.membership.ledger.Ledger.balance` counts), not the wallet row, which
    is as of the member's last write."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    if not names or not ids:
        return out
    lot = PointsLot
    live = (lot.remaining > 0, lot.expired.is_(False), lot.reversed.is_(False), lot.spendable_at <= at,
            or_(lot.expires_at.is_(None), lot.expires_at > at))  # fmt: skip
    with meta.session() as s:
        for name in names:
            pid = s.scalar(select(ProgrammeRow.id).where(ProgrammeRow.project_id == info.id, ProgrammeRow.name == name))
            if pid is None:
                warnings.append(f"no member programme {name!r} in this project: nobody is its member")
                continue
            for chunk in _chunks(ids):
                here = (MemberRow.programme_id == pid, MemberRow.person.in_(chunk), MemberRow.status == "active")
                for person, level in s.execute(select(MemberRow.person, MemberRow.level).where(*here)):
                    out.setdefault(int(person), {})[name] = {"member": True, "level": int(level)}
                balances = (
                    select(lot.person, lot.wallet, func.sum(lot.remaining))
                    .where(lot.programme_id == pid, lot.person.in_(chunk), *live)
                    .group_by(lot.person, lot.wallet)
                )
                for person, wallet, spendable in s.execute(balances):
                    facts = out.get(int(person), {}).get(name)
                    if facts is not None:
                        facts[f"points:{wallet}"] = int(spendable)
    return out


def _chunks(ids: list[int], size: int = 5000) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _missing(value: Any) -> bool:
    """NULL, or a NaN a model wrote for a person it could not score."""
    return value is None or (isinstance(value, float) and math.isnan(value))
