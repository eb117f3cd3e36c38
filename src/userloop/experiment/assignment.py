"""Who is in which arm of an experiment, and the record of it: the ``$experiment_exposure`` event.

**One hashing, one direction.** A person's bucket is :func:`userloop.engage.rules.bucket` (SHA-256 of
``(seed, person)``, its module says why not GrowthBook's FNV-1a), mapped to a branch by
:func:`userloop.engage.rules.branch_index`. The journeys' random splits draw with it when people pass them, and the
experiments read the same functions here: ``experiment`` imports ``engage`` (the plan reads its delivery rules,
the report its journeys), never the other way, so the hashing stays in the lower layer and this module only
names what it means for experiments.

Three kinds of assignment, all sticky (the same person, seed and weights give the same arm on every run):

- the **global control group** (:func:`in_global_control`): a stable share of everyone who receives no marketing
  at all (the project's ``control_share`` and ``control_salt``), so its outcomes measure what all journeys add;
- a journey's **holdouts**: the control branches of its random splits (a split at the start holding 10 % back is a
  per-journey holdout), drawn with the journey's and the node's seed (:func:`journey_arms`);
- **standalone experiments** (:class:`Standalone`): tests run elsewhere (in the app, on the server), known only by
  an exposure event and a variant property (GrowthBook's "experiment viewed" event, PostHog's
  ``$feature_flag_called`` with ``$feature_flag_response``); :func:`assign` gives such a test userloop's arms if it
  asks for them.

**Exposure** is a passive event, ``$experiment_exposure`` with ``experiment`` and ``variant`` (and
``global_control``, ``control``, ``journey_id``, ``node``), written by :func:`record_exposures` for every journey run
(its entry, and each split or strategy set it passed) at the run's entry time, the start of the journey's goal
window. Event ids are derived from the run and the node, so writing again is recognised by the loader's
de-duplication: exactly once in the events table. An app records its own exposures with the same event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from userloop.engage import rules
from userloop.engage.journey import Journey, RandomSplit, Split, StrategySet
from userloop.engage.settings import EngageSettings
from userloop.engage.settings import load as load_settings
from userloop.engage.tables import JourneyRow, JourneyVersion, RunRow
from userloop.ingest.api import distinct_ids, load_table
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project
from userloop.store.sqlbuild import sql

#: The passive event that records a person's arm of an experiment.
EXPOSURE_EVENT = "$experiment_exposure"
#: Its properties: which experiment, which arm.
EXPERIMENT_PROPERTY = "experiment"
VARIANT_PROPERTY = "variant"
#: True when the person is in the project's global control group (no marketing at all).
GLOBAL_CONTROL_PROPERTY = "global_control"
#: True when the arm is a control branch (it receives nothing).
CONTROL_PROPERTY = "control"
#: The arm of a journey's entry exposure (everyone who entered).
ENTERED = "entered"
#: The source the exposure events are loaded under.
SOURCE = "experiment"

Name = Annotated[str, Field(min_length=1, max_length=100)]


@dataclass(frozen=True)
class Arm:
    """One arm of an experiment: its ``name``, its share in percent (``weight``) and whether it is a control."""

    name: str
    weight: float
    control: bool = False


def journey_experiment(journey_id: int, node: str | None = None) -> str:
    """The experiment key of a journey (its entry: everyone who came in) or of one of its nodes."""
    return f"journey:{journey_id}" if node is None else f"journey:{journey_id}:{node}"


def assign(seed: str, person: int, arms: Sequence[Arm]) -> Arm:
    """The arm ``person`` falls in for ``seed``: :func:`userloop.engage.rules.split` over the arms' weights
    (percentages adding up to 100), the same draw the journeys' random splits make."""
    name = rules.split(seed, person, [(a.name, a.weight) for a in arms])
    return next(a for a in arms if a.name == name)


def in_global_control(settings: EngageSettings, person: int) -> bool:
    """Whether ``person`` is in the project's global control group (:func:`userloop.engage.rules.in_global_control`
    with the project's salt and share; nobody when the share is 0)."""
    return settings.control_share > 0 and rules.in_global_control(settings.control_salt, person, settings.control_share)


def journey_arms(journey_id: int, journey: Journey) -> dict[str, tuple[str, list[Arm]]]:
    """Each random split of ``journey``: node → (its seed, its arms), drawn as the runtime draws them."""
    seed = rules.journey_seed(journey_id)
    return {
        n.id: (rules.split_seed(seed, n.id), [Arm(b.name, b.percent, b.control) for b in n.branches])
        for n in journey.nodes
        if isinstance(n, RandomSplit)
    }


class Standalone(BaseModel):
    """A test run elsewhere, known by its exposure events: ``exposure_event`` whose ``experiment_property`` is
    ``name`` (or every such event, when ``experiment_property`` is None) and whose ``variant_property`` names the
    arm. ``control`` is the arm the others are compared with; ``weights`` the planned shares (percent, by arm)
    for the sample ratio check (equal shares when None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    exposure_event: Name = EXPOSURE_EVENT
    experiment_property: Name | None = EXPERIMENT_PROPERTY
    variant_property: Name = VARIANT_PROPERTY
    control: Name = "control"
    weights: dict[Name, Annotated[float, Field(gt=0)]] | None = None


# recording ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    journey_id: int
    version: int
    person: int
    occurrence: int
    entered_at: datetime
    path: str


def exposures_of(run: Run, journey: Journey, global_control: bool) -> list[dict[str, Any]]:
    """The exposure records of one run: its entry, and each random split, condition split or strategy set it
    passed (``node:branch`` in its path), with the arm it took."""
    nodes = journey.by_id()
    base = f"exposure:{run.journey_id}.{run.version}.{run.person}.{run.occurrence}"
    common = {"time": run.entered_at, "journey_id": run.journey_id, GLOBAL_CONTROL_PROPERTY: global_control,
              "person": run.person}  # fmt: skip
    out = [{**common, "event_id": f"{base}:$entry", EXPERIMENT_PROPERTY: journey_experiment(run.journey_id),
            VARIANT_PROPERTY: ENTERED, "node": None, CONTROL_PROPERTY: False}]  # fmt: skip
    for step in (p for p in run.path.split("|") if p):
        node_id, _, branch = step.partition(":")
        node = nodes.get(node_id)
        if not isinstance(node, RandomSplit | Split | StrategySet):
            continue
        control = isinstance(node, RandomSplit) and any(b.control and b.name == branch for b in node.branches)
        out.append({**common, "event_id": f"{base}:{node_id}",
                    EXPERIMENT_PROPERTY: journey_experiment(run.journey_id, node_id), VARIANT_PROPERTY: branch,
                    "node": node_id, CONTROL_PROPERTY: control})  # fmt: skip
    return out


def record_exposures(meta: MetaStore, project: Project, store: ProjectStore, *, chunk: int = 20_000) -> int:
    """Write the ``$experiment_exposure`` events of the project's journey runs that are not written yet (a run's
    entry, and each split or strategy set it has passed since); returns how many were handed to the loader.
    Those written before are known by their ids and skipped before the loader sees them (the loader would skip
    them too, at a cost)."""
    settings = load_settings(meta, project.id)
    definitions: dict[tuple[int, int], Journey] = {}
    exposing: dict[tuple[int, int], set[str]] = {}  # the nodes whose passage is an exposure, by version
    written = _recorded(store)
    handed = 0
    for runs in _runs(meta, project.id, chunk):
        records: list[dict[str, Any]] = []
        for run in runs:
            key = (run.journey_id, run.version)
            if key not in definitions:
                definitions[key] = _definition(meta, key)
                exposing[key] = {
                    n.id for n in definitions[key].nodes if isinstance(n, RandomSplit | Split | StrategySet)
                }
            base = f"exposure:{run.journey_id}.{run.version}.{run.person}.{run.occurrence}"
            steps = (p.partition(":")[0] for p in run.path.split("|") if p)
            if f"{base}:$entry" in written and all(f"{base}:{n}" in written for n in steps if n in exposing[key]):
                continue  # the usual case once a run has been seen: nothing new
            found = exposures_of(run, definitions[key], in_global_control(settings, run.person))
            records += [r for r in found if r["event_id"] not in written]
        if not records:
            continue
        ids = distinct_ids(store, sorted({int(r["person"]) for r in records}))
        known = [r for r in records if r["person"] in ids]
        if known:
            load_table(store, _table(known, ids), source=SOURCE)
            handed += len(known)
    return handed


def _recorded(store: ProjectStore) -> set[str]:
    """The ids of the journey exposures written so far."""
    if EXPOSURE_EVENT not in store.event_names():
        return set()
    stmt = sql("SELECT event_id FROM $e WHERE event = $x AND starts_with(event_id, 'exposure:')",
               e=store.ref("events"), x=EXPOSURE_EVENT)  # fmt: skip
    return {str(r[0]) for r in store.fetchall(stmt)}


def _runs(meta: MetaStore, project_id: int, chunk: int) -> Iterator[list[Run]]:
    stmt = (
        select(RunRow.journey_id, RunRow.version, RunRow.person, RunRow.occurrence, RunRow.entered_at, RunRow.path)
        .join(JourneyRow, JourneyRow.id == RunRow.journey_id)
        .where(JourneyRow.project_id == project_id, RunRow.status != "door")
        .order_by(RunRow.id)
    )
    with meta.engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk).execute(stmt)
        for part in result.partitions(chunk):
            yield [Run(int(j), int(v), int(p), int(o), at, str(path or "")) for j, v, p, o, at, path in part]


def _definition(meta: MetaStore, key: tuple[int, int]) -> Journey:
    with meta.session() as s:
        row = s.get(JourneyVersion, key)
        assert row is not None  # a run's version exists: versions are never deleted
        return Journey.model_validate_json(row.definition)


def _ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _table(records: list[dict[str, Any]], ids: dict[int, str]) -> pa.Table:
    return pa.table(
        {
            "type": pa.array(["track"] * len(records), pa.string()),
            "event": pa.array([EXPOSURE_EVENT] * len(records), pa.string()),
            "distinct_id": pa.array([ids[r["person"]] for r in records], pa.string()),
            "time": pa.array([_ms(r["time"]) for r in records], pa.int64()),
            "event_id": pa.array([r["event_id"] for r in records], pa.string()),
            EXPERIMENT_PROPERTY: pa.array([r[EXPERIMENT_PROPERTY] for r in records], pa.string()),
            VARIANT_PROPERTY: pa.array([r[VARIANT_PROPERTY] for r in records], pa.string()),
            "journey_id": pa.array([r["journey_id"] for r in records], pa.int64()),
            "node": pa.array([r["node"] for r in records], pa.string()),
            CONTROL_PROPERTY: pa.array([r[CONTROL_PROPERTY] for r in records], pa.bool_()),
            GLOBAL_CONTROL_PROPERTY: pa.array([r[GLOBAL_CONTROL_PROPERTY] for r in records], pa.bool_()),
        }
    )


__all__ = [
    "CONTROL_PROPERTY",
    "ENTERED",
    "EXPERIMENT_PROPERTY",
    "EXPOSURE_EVENT",
    "GLOBAL_CONTROL_PROPERTY",
    "VARIANT_PROPERTY",
    "Arm",
    "Standalone",
    "assign",
    "exposures_of",
    "in_global_control",
    "journey_arms",
    "journey_experiment",
    "record_exposures",
]
