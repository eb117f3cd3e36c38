"""The simulator in the loop (预演, rehearsal): userloop's journeys act on the simulated business day by day, and
the simulator, which knows each person's true response, grades what the platform measures.

:func:`rehearse` builds a workspace and runs the simulated business (:mod:`userloop.sim`) forward one local day
at a time. Each day's records go through the one loader (:func:`userloop.ingest.api.load_table`, as
:func:`userloop.sim.run.run_simulation` loads them), split at the day's step time: what happened before it is loaded,
the journeys engine steps (:meth:`userloop.engage.engine.JourneyEngine.step`: entries, splits, delivery rules,
sends, ``$message_*`` events), then the rest of the day is loaded. Sends go through the simulated channels
(:mod:`userloop.engage.channels.simulated`, provider ``simulated``): a message reaches the simulated person only if
they are reachable at that moment (push switched on, app installed, an address), and then acts on them through the
simulator's hook (:meth:`userloop.sim.timeline.Timeline.treat`): a coupon adds the person's true
``coupon_uplift`` to their daily purchase probability for seven days, any other message their ``push_uplift``. The
business's own coupon drops and pushes are switched off, so the journey's sends are the only treatments.

The **measurement** is the journey's goal metric per arm of its random split: people enrolled, people with at
least one goal event (``order_paid``) within the goal window after their entry, and the goal events' revenue
(``order_amount``) per person, read from the events table with SQL (:mod:`userloop.store.sqlbuild`) as per-arm
sufficient statistics (:class:`~userloop.experiment.stats.Proportion`, :class:`userloop.stats.Moments`), compared
with :mod:`userloop.experiment.stats`.

The **truth** is each enrolled person's expected effect of what they were actually sent, against being sent
nothing, computed from the simulator's latent process (BG/NBD purchases, Fader, Hardie & Lee 2005, with the
additive uplift of :mod:`userloop.sim.timeline`): for days ``d`` from the day after the first treatment to the end
of the window, with purchase rate ``r_d = λ × activity_d``, uplift ``q_d`` and the share ``F_d`` of the day's
purchase times inside the window, ``P(no order | q) = Π exp(−r_d F_d)(1 − q_d F_d)`` (a dropout follows a purchase,
so it cannot stop a first order), and the expected orders ``Σ S_d (1 − exp(−r_d F_d p)(1 − q_d F_d p)) / p`` with
``S_d`` the chance of still buying at the start of day ``d`` (purchases are cut at the first one after which the
person drops out with chance ``p``). A person who already ordered inside the window before the treatment could act,
or who had dropped out, has effect 0. Revenue's effect is the orders' effect times the person's mean basket value
(:func:`userloop.sim.truth.expected_order_value`; baskets are drawn the same with or without a treatment). The effect
is exact for sends that do not depend on what the person did after the first one (a campaign's single send); later
sends that wait on behaviour make it an approximation.

The **fast path** (``fast=True``) runs the same simulated days, the same split hashing
(:func:`userloop.engage.rules.branch_index` with the journey's seed), the same reachability and the same responses,
and counts the goal from the simulator's records instead of a loaded workspace, for the thousands of rehearsals the
coverage benchmark needs (``bench/experiments/coverage.py``). It handles the campaign shape of :func:`campaign` (a
scheduled entry, a random split, one send per branch). Its person keys (what the split hashes) are the simulator's
person numbers plus one, a stand-in for the loader's keys (handed out in blocks as records arrive); ``keys`` gives a
loaded rehearsal's keys instead, to check that both paths agree exactly.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select

from userloop.core.errors import ValidationError
from userloop.engage import rules
from userloop.engage import settings as engage_settings
from userloop.engage.assets import create_benefit, save_material
from userloop.engage.catalog import Journeys
from userloop.engage.channels.base import Channel, ChannelError, ChannelKind
from userloop.engage.channels.registry import save_channel
from userloop.engage.channels.simulated import SimulatedChannel, Treatment
from userloop.engage.engine import JourneyEngine
from userloop.engage.journey import Journey, RandomSplit, ScheduleEntry, Send, parse
from userloop.engage.secrets import SecretBox
from userloop.engage.settings import EngageSettings
from userloop.engage.tables import RunRow
from userloop.experiment.stats import Interval, Proportion, SampleRatio, confidence_sequence, lift, sample_ratio, t_test
from userloop.ingest import TimePolicy
from userloop.ingest.api import load_table
from userloop.sim.calendar import _HOUR_CUM, DAY_MS, HOUR_MS
from userloop.sim.config import SimConfig
from userloop.sim.generator import simulate_days
from userloop.sim.timeline import UPLIFT_DAYS, DayPlan, Timeline
from userloop.sim.truth import expected_order_value
from userloop.sim.world import World
from userloop.stats import Moments
from userloop.store import sqlbuild as sb
from userloop.store.workspace import Workspace

#: The simulated channels every rehearsal workspace has, by name: a push channel and an SMS channel.
CHANNELS: dict[str, ChannelKind] = {"sim_push": "push", "sim_sms": "sms"}
#: The materials every rehearsal workspace has: a coupon by SMS and a nudge by push.
MATERIALS: dict[str, dict[str, Any]] = {
    "sim_coupon": {
        "channel": "sms",
        "body": {"zh-CN": "送你一张 {{ benefit.amount }} 元券：{{ benefit.code }}", "en": "¥{{ benefit.amount }} off"},
        "params": {"coupon": "{{ benefit.code }}"},
    },
    "sim_nudge": {
        "channel": "push",
        "subject": {"zh-CN": "新鲜到货", "en": "Fresh today"},
        "body": {"zh-CN": "今天的新鲜好货，来看看", "en": "Fresh picks today"},
    },
}
#: The coupon the ``sim_coupon`` material hands out.
BENEFIT = "sim_coupon10"
#: The goal event and its value property.
GOAL_EVENT, GOAL_VALUE = "order_paid", "order_amount"
#: Purchase-time offsets the simulator adds after a purchase session starts (ms): paid 90 s to 10.5 min later.
_PAID_AFTER = (90_000, 630_000)

Metric = Literal["conversion", "revenue"]


# -- the journey of a campaign -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One branch of a campaign's split: its ``name``, ``percent``, and what it sends (``"coupon"`` by SMS,
    ``"push"`` a nudge by push, None for a control branch that receives nothing)."""

    name: str
    percent: float
    treatment: Treatment | None = None


def campaign(arms: Sequence[Arm], at: datetime, *, goal_days: int = 7, name: str = "rehearsal") -> dict[str, Any]:
    """The journey document of a one-off campaign: everyone enters at ``at`` (project-local wall time), a random
    split ``split`` into ``arms``, one send per treated arm; the goal is an order within ``goal_days``."""
    nodes: list[dict[str, Any]] = [
        {
            "kind": "split",
            "id": "split",
            "branches": [
                {"name": a.name, "percent": a.percent, "control": True}
                if a.treatment is None
                else {"name": a.name, "percent": a.percent, "next": f"send_{a.name}"}
                for a in arms
            ],
        }
    ]
    for a in arms:
        if a.treatment == "coupon":
            nodes.append({"kind": "send", "id": f"send_{a.name}", "channel": "sim_sms", "material": "sim_coupon",
                          "benefit": BENEFIT})  # fmt: skip
        elif a.treatment == "push":
            nodes.append({"kind": "send", "id": f"send_{a.name}", "channel": "sim_push", "material": "sim_nudge"})
    return {
        "name": name,
        "entry": {"kind": "schedule", "once_at": at.isoformat()},
        "start": "split",
        "goal": {"event": GOAL_EVENT, "within_seconds": goal_days * 86_400, "exit": True},
        "nodes": nodes,
    }


# -- results --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmStats:
    """An arm's goal metric as sufficient statistics: people, converters (``conversion``) and revenue per person."""

    conversion: Proportion
    revenue: Moments


@dataclass(frozen=True)
class ArmTruth:
    """An arm's true average effect per person, against receiving nothing: among the ``people`` assigned to it,
    of what they were sent (``treated``: how many its sends reached), on conversion (probability points) and on
    revenue (yuan per person); and among everyone enrolled had they all been assigned to it (``enrolled_*``: the
    average treatment effect the comparison with the control estimates; for a campaign's arm, whose one send at
    entry reaches whoever is reachable on its channel then; 0 for a control arm)."""

    people: int
    treated: int
    conversion: float
    revenue: float
    enrolled_conversion: float = 0.0
    enrolled_revenue: float = 0.0


@dataclass
class Rehearsal:
    """What a rehearsal measured and what was true, per arm of the journey's split (``control`` names the arm
    the others are compared with). ``looks`` holds the same per day of the goal window (cumulative), for reading
    the result every day. ``workspace`` is the loaded workspace (None on the fast path; the caller closes it)."""

    journey: dict[str, Any]
    control: str
    arms: dict[str, ArmStats]
    truth: dict[str, ArmTruth]
    looks: list[tuple[dict[str, ArmStats], dict[str, ArmTruth]]]
    weights: dict[str, float]
    goal_ms: int
    enrolled: Enrolled
    goal: _GoalEvents
    people: int
    workspace: Workspace | None = None

    def recount(self, look: int | None = None) -> dict[str, ArmStats]:
        """The per-arm goal counted by brute force from the simulator's own records of the goal events (what the
        loaded workspace's SQL must equal)."""
        k = len(self.looks) - 1 if look is None else look
        window = min((k + 1) * DAY_MS, self.goal_ms)
        return recount(self.goal, self.people, self.enrolled, window)

    def effect(
        self, arm: str, metric: Metric = "conversion", *, look: int | None = None, sequential: bool = False
    ) -> Interval:
        """The absolute effect of ``arm`` against the control on ``metric`` with its 95% interval: Welch's t
        (fixed horizon), or the always-valid confidence sequence (``sequential``), at the end or at ``look``."""
        arms = self.arms if look is None else self.looks[look][0]
        a, c = arms[arm], arms[self.control]
        pair = (c.conversion, a.conversion) if metric == "conversion" else (c.revenue, a.revenue)
        e = lift(pair[0], pair[1], "absolute")
        return confidence_sequence(e) if sequential else t_test(e)

    def true_effect(
        self,
        arm: str,
        metric: Metric = "conversion",
        *,
        look: int | None = None,
        among: Literal["arm", "enrolled"] = "enrolled",
    ) -> float:
        """The true average effect of ``arm`` on ``metric`` (at the end or at ``look``): among everyone enrolled
        (what the comparison estimates), or among the arm's own people."""
        t = (self.truth if look is None else self.looks[look][1])[arm]
        if among == "arm":
            return t.conversion if metric == "conversion" else t.revenue
        return t.enrolled_conversion if metric == "conversion" else t.enrolled_revenue

    def srm(self) -> SampleRatio:
        """The sample ratio check of the split (people per arm against the planned percentages)."""
        names = list(self.weights)
        return sample_ratio([self.arms[n].conversion.n for n in names], [self.weights[n] for n in names])


# -- the simulated people as the channels see them ------------------------------------------------------------------


class _Population:
    """The simulated people behind the simulated channels: userloop person keys mapped to simulator people, their
    reachability checked against the simulator's state at the moment of sending, deliveries collected for the
    timeline."""

    def __init__(self, world: World, timeline: Timeline) -> None:
        self.world, self.timeline = world, timeline
        self.now_ms = 0
        self.key_to_person: dict[int, int] = {}
        self.received: list[tuple[int, Treatment]] = []
        self.id_to_person = _id_lookup(world)

    def learn(self, rows: Sequence[tuple[Any, Any]]) -> None:
        for key, first_id in rows:
            person = self.id_to_person.get(str(first_id))
            if person is not None:
                self.key_to_person[int(key)] = person

    def receive(self, person: int, kind: ChannelKind, treatment: Treatment) -> str | None:
        i = self.key_to_person.get(person)
        if i is None:
            return "unknown_person"
        why = reachability(self.world, self.timeline, np.array([i]), kind, self.now_ms)[0]
        if why:
            return str(why)
        self.received.append((i, treatment))
        return None


def reachability(world: World, timeline: Timeline, person: np.ndarray, kind: ChannelKind, at_ms: int) -> np.ndarray:
    """Why each simulated person cannot get a message of ``kind`` at ``at_ms`` ('' when they can): a push needs
    the app installed and not uninstalled, and push switched on; an SMS needs a phone number, which the business
    learns at registration."""
    people = world.people
    out = np.full(len(person), "", dtype=object)
    if kind == "push":
        out[~people.push_enabled[person]] = "push_off"
        out[timeline.uninstall_ms[person] <= at_ms] = "uninstalled"
        out[people.install_ms[person] >= at_ms] = "no_address"
    else:
        out[timeline.reg_ms[person] >= at_ms] = "no_address"
    return out


class _Book:
    """The rehearsal's channel source: the simulated channels' adapters, delivering to the population."""

    def __init__(self, population: _Population) -> None:
        self.channels = {name: SimulatedChannel(name, kind, population) for name, kind in CHANNELS.items()}

    def get(self, name: str, lane: int = 0) -> Channel:
        found = self.channels.get(name)
        if found is None:
            raise ChannelError(f"a rehearsal delivers only on its simulated channels, not {name!r}")
        return found


# -- the rehearsal --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """The journey's split and what each branch sends, read from its definition."""

    journey: Journey
    split: RandomSplit
    sends: dict[str, tuple[ChannelKind, Treatment] | None]
    goal_ms: int


def _plan(doc: Mapping[str, Any]) -> _Plan:
    journey = parse(dict(doc))
    splits = [n for n in journey.nodes if isinstance(n, RandomSplit)]
    if len(splits) != 1:
        raise ValidationError("a rehearsal measures a journey with exactly one random split", field="nodes")
    if journey.goal is None or journey.goal.event != GOAL_EVENT or journey.goal.filters:
        raise ValidationError(f"a rehearsal measures the goal {GOAL_EVENT!r} without filters", field="goal")
    nodes = {n.id: n for n in journey.nodes}
    sends: dict[str, tuple[ChannelKind, Treatment] | None] = {}
    for b in splits[0].branches:
        node = nodes.get(b.next) if b.next else None
        if isinstance(node, Send) and node.channel in CHANNELS:
            sends[b.name] = (CHANNELS[node.channel], "coupon" if node.benefit else "push")
        else:
            sends[b.name] = None
    return _Plan(journey, splits[0], sends, journey.goal.within_seconds * 1000)


def rehearse(
    config: SimConfig,
    journey_doc: Mapping[str, Any],
    days: int | None = None,
    *,
    step_hour: int = 10,
    settings: EngageSettings | None = None,
    path: Path | None = None,
    fast: bool = False,
    keys: Mapping[int, int] | None = None,
) -> Rehearsal:
    """Rehearse ``journey_doc`` on the business of ``config`` (its own coupons and pushes switched off) over its
    first ``days`` days (all of them by default), the journeys engine stepping once a day at ``step_hour`` local.

    The journey needs one random split (its branches are the arms; the first control branch is the control) and
    the goal ``order_paid``; it may send on the channels of :data:`CHANNELS` with the materials of
    :data:`MATERIALS` and the benefit :data:`BENEFIT`. The workspace is made under ``path`` (a temporary
    directory by default) and returned open in the result. ``fast`` skips the workspace (see the module doc)."""
    if config.end_date is None:
        raise ValidationError("the rehearsal's SimConfig needs an end_date", field="end_date")
    if config.membership is not None:
        raise ValidationError(
            "a rehearsal's truth knows coupons and pushes, not a membership programme: leave SimConfig.membership "
            "unset",
            field="membership",
        )
    config = config.model_copy(update={"coupon_share": 0.0, "push_share": 0.0, "chunk_days": 1})
    if days is not None:
        if not 1 <= days <= config.days:
            raise ValidationError(f"days must be 1 to {config.days}", field="days")
        config = config.model_copy(update={"days": days, "end_date": config.start_date + timedelta(days=days - 1)})
    plan = _plan(journey_doc)
    world = World.build(config)
    timeline = Timeline(world, external=True)
    settings = settings or EngageSettings()
    runner = _Fast(world, timeline, plan, settings, step_hour, keys) if fast else None
    loaded = None if fast else _Loaded(world, timeline, plan, settings, step_hour, path, journey_doc)
    sender = runner if runner is not None else loaded
    assert sender is not None
    orders: list[tuple[np.ndarray, np.ndarray]] = []
    treated: list[tuple[int, Treatment, int]] = []
    goals: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    lookup = _id_lookup(world)
    for day_plan, tables in simulate_days(world, timeline):
        orders.append((day_plan.buy_person, day_plan.buy_paid_ms))
        got = sender.day(day_plan, tables)
        for kind in ("coupon", "push"):
            people = np.array([i for i, t in got if t == kind], dtype=np.int64)
            if len(people):
                timeline.treat(people, kind, day_plan.day)
                treated += [(int(i), kind, day_plan.day) for i in people]
        goals.append(goal_events(tables, lookup))
    if loaded is not None:
        loaded.finish()
    enrolled = sender.enrolled()
    control = next((b.name for b in plan.split.branches if b.control), plan.split.branches[0].name)
    weights = {b.name: b.percent for b in plan.split.branches}
    end_ms = int(world.calendar.end_ms)
    goal = _GoalEvents(*(np.concatenate([g[k] for g in goals]) for k in range(3)))
    truth_of = _Truth(world, timeline, orders, treated)
    everyone = _everyone(world, timeline, plan, settings, enrolled, step_hour)
    looks = []
    horizon_days = math.ceil(plan.goal_ms / DAY_MS)
    for k in range(1, horizon_days + 1):
        window = min(k * DAY_MS, plan.goal_ms)
        measured = loaded.measure(enrolled, window) if loaded else recount(goal, world.people.size, enrolled, window)
        looks.append((measured, truth_of.per_arm(enrolled, window, end_ms, everyone)))
    final_measured, final_truth = looks[-1]
    return Rehearsal(
        journey=dict(journey_doc),
        control=control,
        arms=final_measured,
        truth=final_truth,
        looks=looks,
        weights=weights,
        goal_ms=plan.goal_ms,
        workspace=loaded.ws if loaded else None,
        enrolled=enrolled,
        goal=goal,
        people=world.people.size,
    )


@dataclass(frozen=True)
class Enrolled:
    """Who entered the journey: simulator person, userloop key, entry time (ms) and arm name."""

    person: np.ndarray
    key: np.ndarray
    entered_ms: np.ndarray
    arm: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"person": self.person, "key": self.key, "entered_ms": self.entered_ms, "arm": self.arm}


class _Loaded:
    """The full loop: a workspace, the loader, the journeys engine and the simulated channels."""

    def __init__(
        self,
        world: World,
        timeline: Timeline,
        plan: _Plan,
        settings: EngageSettings,
        step_hour: int,
        path: Path | None,
        journey_doc: Mapping[str, Any],
    ) -> None:
        self.world, self.timeline, self.plan, self.step_hour = world, timeline, plan, step_hour
        config = world.config
        where = path or Path(tempfile.mkdtemp(prefix="userloop-rehearsal-"))
        self.ws, _ = Workspace.init(where / "ws", timezone=config.timezone)
        self.store = self.ws.project()
        self.info = self.ws.project_info()
        meta = self.ws.meta
        box = SecretBox(SecretBox.generate_key())
        engage_settings.save(meta, self.info.id, settings)
        for name, kind in CHANNELS.items():
            save_channel(meta, self.info.id, name, kind, "simulated", {}, box)
        for name, doc in MATERIALS.items():
            save_material(meta, self.info, name, doc)
        create_benefit(meta, self.info, BENEFIT, amount=10, threshold=0, valid_days=7, stock=None)
        journeys = Journeys(meta, self.info)
        saved = journeys.create(dict(journey_doc))
        journeys.transition(saved.id, "start", _naive(int(world.calendar.day_start_ms[0])))
        self.journey_id = saved.id
        self.population = _Population(world, timeline)
        self.engine = JourneyEngine(
            meta, self.info, self.store, _Book(self.population), link_secret=box.derive("links")
        )
        self.policy = TimePolicy(max_past_days=config.days + 3650)
        self.first_step = _first_step(plan.journey, world)
        self.waiting: list[pa.Table] = []

    def day(self, plan: DayPlan, tables: list[pa.Table]) -> list[tuple[int, Treatment]]:
        cal = self.world.calendar
        step_ms = int(cal.day_start_ms[plan.day]) + self.step_hour * HOUR_MS
        tables = tables + _addresses(self.world, plan)
        self.population.received = []
        if plan.day < self.first_step:  # nothing can happen yet: the day waits to be loaded with the next ones
            self.waiting += tables
            return []
        self._load([*self.waiting, *(_part(t, None, step_ms) for t in tables)], step_ms)
        self.population.now_ms = step_ms
        self.engine.step(_naive(step_ms))
        # the rest of the day is loaded with the next day's morning: the engine reads nothing in between
        self.waiting = [p for p in (_part(t, step_ms, None) for t in tables) if p is not None]
        return self.population.received

    def finish(self) -> None:
        """Load what is left of the last day."""
        self._load(list(self.waiting), int(self.world.calendar.end_ms))
        self.waiting = []

    def _load(self, tables: list[pa.Table | None], now_ms: int) -> None:
        """Load the tables in one call (in order: identities before the events that need them), then learn the
        person keys of the new people."""
        present = [t for t in tables if t is not None and t.num_rows]
        if present:
            batch = pa.concat_tables(present, promote_options="permissive")
            result = load_table(self.store, batch, source="rehearsal", policy=self.policy, now_ms=now_ms)
            if result.rejected:
                raise AssertionError(f"the loader rejected {result.rejected} simulated records")
        users = sb.sql("SELECT user_id, first_id FROM $u", u=self.store.ref("users"))
        self.population.learn(self.store.fetchall(users))

    def enrolled(self) -> Enrolled:
        with self.ws.meta.session() as s:
            rows = s.execute(
                select(RunRow.person, RunRow.entered_at, RunRow.path)
                .where(RunRow.journey_id == self.journey_id)
                .order_by(RunRow.person)
            ).all()
        split = self.plan.split.id
        arms = [_branch(path, split) for _, _, path in rows]
        keys = np.array([int(r[0]) for r in rows], dtype=np.int64)
        return Enrolled(
            person=np.array([self.population.key_to_person.get(int(k), -1) for k in keys], dtype=np.int64),
            key=keys,
            entered_ms=np.array([_ms(r[1]) for r in rows], dtype=np.int64),
            arm=np.array(arms, dtype=object),
        )

    def measure(self, enrolled: Enrolled, window_ms: int) -> dict[str, ArmStats]:
        """Per arm: people, converters and the revenue moments of the goal within ``window_ms`` of each entry,
        from the events table."""
        stmt = sb.sql(
            "WITH r AS (SELECT unnest(?) AS person, unnest(?) AS since_ms, unnest(?) AS arm), "
            "o AS (SELECT r.person, count(*) AS orders, sum(coalesce(e.$v, 0)) AS revenue FROM r JOIN $e AS e "
            "ON e.user_id = r.person AND e.event = ? AND e.time >= make_timestamp(r.since_ms * 1000) "
            "AND e.time < make_timestamp((r.since_ms + ?) * 1000) GROUP BY r.person) "
            "SELECT r.arm, count(*), count(o.person), sum(coalesce(o.revenue, 0)), "
            "sum(coalesce(o.revenue, 0) * coalesce(o.revenue, 0)) FROM r LEFT JOIN o ON o.person = r.person "
            "GROUP BY r.arm",
            e=self.store.ref("events"),
            v=sb.name(GOAL_VALUE),
        )
        params = [enrolled.key.tolist(), enrolled.entered_ms.tolist(), [str(a) for a in enrolled.arm]]
        rows = self.store.fetchall(stmt, [*params, GOAL_EVENT, window_ms])
        out = {b.name: ArmStats(Proportion(), Moments()) for b in self.plan.split.branches}
        for arm, n, converted, total, total_sq in rows:
            out[str(arm)] = ArmStats(
                Proportion(int(n), float(converted)), Moments(int(n), float(total), float(total_sq))
            )
        return out


class _Fast:
    """The same days without a workspace: enrollment, split, reachability and delivery as the engine does them for
    a campaign (:func:`campaign`), from the simulator's state."""

    def __init__(
        self,
        world: World,
        timeline: Timeline,
        plan: _Plan,
        settings: EngageSettings,
        step_hour: int,
        keys: Mapping[int, int] | None,
    ) -> None:
        entry = plan.journey.entry
        if not isinstance(entry, ScheduleEntry) or entry.once_at is None or entry.segment is not None:
            raise ValidationError("the fast path rehearses a campaign: a one-off scheduled entry of everyone",
                                  field="entry")  # fmt: skip
        if plan.journey.start != plan.split.id or plan.journey.who.all:
            raise ValidationError("the fast path rehearses a campaign that starts at its split", field="start")
        self.world: World = world
        self.timeline: Timeline = timeline
        self.plan: _Plan = plan
        self.settings: EngageSettings = settings
        self.step_hour: int = step_hour
        self.entry_ms: int = _ms(rules.resolve_local(entry.once_at, world.config.timezone))
        self.keys: Mapping[int, int] | None = keys
        self.result: Enrolled | None = None

    def day(self, plan: DayPlan, tables: list[pa.Table]) -> list[tuple[int, Treatment]]:
        cal = self.world.calendar
        step_ms = int(cal.day_start_ms[plan.day]) + self.step_hour * HOUR_MS
        if self.result is not None or step_ms < self.entry_ms:
            return []
        people = np.flatnonzero(self.world.people.install_ms < step_ms)
        key = people + 1 if self.keys is None else np.array([self.keys.get(int(p), -1) for p in people], dtype=np.int64)
        split = self.plan.split
        seed = rules.split_seed(rules.journey_seed(1), split.id)
        percents = [b.percent for b in split.branches]
        arm = np.array([split.branches[rules.branch_index(seed, int(k), percents)].name for k in key], dtype=object)
        self.result = Enrolled(people.astype(np.int64), key.astype(np.int64), np.full(len(people), self.entry_ms), arm)
        out: list[tuple[int, Treatment]] = []
        share = self.settings.control_share
        for name, send in self.plan.sends.items():
            if send is None:
                continue
            kind, treatment = send
            mine = people[arm == name]
            reachable = mine[reachability(self.world, self.timeline, mine, kind, step_ms) == ""]
            if share > 0:
                keep = [
                    not rules.in_global_control(self.settings.control_salt, int(k), share) for k in key[arm == name]
                ]
                reachable = np.intersect1d(reachable, mine[np.array(keep, dtype=bool)])
            out += [(int(i), treatment) for i in reachable]
        return out

    def enrolled(self) -> Enrolled:
        if self.result is None:
            raise ValidationError("the campaign's entry falls after the rehearsal's last day", field="entry")
        return self.result


@dataclass(frozen=True)
class _GoalEvents:
    """The goal events of the simulator's records: simulator person, time (ms) and value."""

    person: np.ndarray
    time_ms: np.ndarray
    value: np.ndarray


def recount(goal: _GoalEvents, people: int, enrolled: Enrolled, window_ms: int) -> dict[str, ArmStats]:
    """Per arm, the goal within ``window_ms`` of each entry counted from the simulator's records (the fast path's
    measurement, and the brute-force recount a loaded rehearsal is checked against)."""
    first = np.full(people, -1, dtype=np.int64)
    first[enrolled.person[enrolled.person >= 0]] = enrolled.entered_ms[enrolled.person >= 0]
    since = first[goal.person]
    inside = (since >= 0) & (goal.time_ms >= since) & (goal.time_ms < since + window_ms)
    converted = np.zeros(people, dtype=bool)
    converted[goal.person[inside]] = True
    revenue = np.bincount(goal.person[inside], weights=goal.value[inside], minlength=people)
    out: dict[str, ArmStats] = {}
    for name in dict.fromkeys(enrolled.arm.tolist()):
        p = enrolled.person[enrolled.arm == name]
        r = revenue[p]
        out[str(name)] = ArmStats(
            Proportion(len(p), float(converted[p].sum())), Moments(len(p), float(r.sum()), float((r * r).sum()))
        )
    return out


def _id_lookup(world: World) -> dict[str, int]:
    """Every id the simulator gives a person (two devices, the login id) to the person's number."""
    n = world.people.size
    return {s: i % n for i, s in enumerate(world.ids.table.to_pylist())}


def goal_events(tables: Sequence[pa.Table], lookup: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The goal events among the simulator's record tables: simulator person, time (ms) and value."""
    people, times, values = [], [], []
    for t in tables:
        if t.column("type")[0].as_py() != "track":
            continue
        goal = t.filter(pc.equal(t.column("event"), GOAL_EVENT))
        if not goal.num_rows:
            continue
        people.append(np.array([lookup[d] for d in goal.column("distinct_id").to_pylist()], dtype=np.int64))
        times.append(goal.column("time").cast(pa.int64()).to_numpy())
        values.append(pc.fill_null(goal.column(GOAL_VALUE), 0.0).to_numpy())
    if not people:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(people), np.concatenate(times), np.concatenate(values)


# -- the truth ------------------------------------------------------------------------------------------------------


class _Truth:
    """Each enrolled person's expected effect of what they were sent (see the module doc)."""

    def __init__(
        self,
        world: World,
        timeline: Timeline,
        orders: list[tuple[np.ndarray, np.ndarray]],
        treated: list[tuple[int, Treatment, int]],
    ) -> None:
        self.world, self.timeline = world, timeline
        self.buy_person = np.concatenate([p for p, _ in orders]) if orders else np.empty(0, dtype=np.int32)
        self.buy_ms = np.concatenate([m for _, m in orders]) if orders else np.empty(0, dtype=np.int64)
        order = np.argsort(self.buy_person, kind="stable")
        self.buy_sorted, self.buy_ms_sorted = self.buy_person[order], self.buy_ms[order]
        self.sends: dict[int, list[tuple[Treatment, int]]] = {}
        for i, kind, day in treated:
            self.sends.setdefault(i, []).append((kind, day))
        self.value = expected_order_value(world)

    def individual(
        self, enrolled: Enrolled, sends_of: Mapping[int, list[tuple[Treatment, int]]], window_ms: int, end_ms: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each enrolled person's effect on conversion and on revenue of the sends ``sends_of`` gives them."""
        conv = np.zeros(len(enrolled.person))
        rev = np.zeros(len(enrolled.person))
        for j, (i, since) in enumerate(zip(enrolled.person.tolist(), enrolled.entered_ms.tolist(), strict=True)):
            sends = sends_of.get(i)
            if i >= 0 and sends:
                conv[j], orders = self.person(i, sends, since, min(since + window_ms, end_ms))
                rev[j] = orders * self.value[i]
        return conv, rev

    def per_arm(
        self,
        enrolled: Enrolled,
        window_ms: int,
        end_ms: int,
        everyone: Mapping[str, Mapping[int, list[tuple[Treatment, int]]]],
    ) -> dict[str, ArmTruth]:
        """Per arm, the effect among its people of what they were sent, and (for the arms in ``everyone``: the
        sends each enrolled person would have had in that arm) the effect among everyone enrolled."""
        conv, rev = self.individual(enrolled, self.sends, window_ms, end_ms)
        reached = np.array([i in self.sends for i in enrolled.person.tolist()], dtype=bool)
        out = {}
        for name in dict.fromkeys(enrolled.arm.tolist()):
            mine = enrolled.arm == name
            k = int(mine.sum())
            all_conv = all_rev = 0.0
            if name in everyone:
                c, r = self.individual(enrolled, everyone[name], window_ms, end_ms)
                all_conv, all_rev = float(c.mean()), float(r.mean())
            out[str(name)] = ArmTruth(
                people=k,
                treated=int(reached[mine].sum()),
                conversion=float(conv[mine].mean()) if k else 0.0,
                revenue=float(rev[mine].mean()) if k else 0.0,
                enrolled_conversion=all_conv,
                enrolled_revenue=all_rev,
            )
        return out

    def person(self, i: int, sends: list[tuple[Treatment, int]], since: int, until: int) -> tuple[float, float]:
        """(effect on the chance of an order in [since, until), effect on the expected orders there)."""
        people, cal = self.world.people, self.world.calendar
        first = min(day for _, day in sends) + 1
        if first >= cal.days or int(cal.day_start_ms[first]) >= until:
            return 0.0, 0.0
        if self.timeline.dropout_day[i] < first:
            return 0.0, 0.0
        lo, hi = np.searchsorted(self.buy_sorted, [i, i + 1])
        before = self.buy_ms_sorted[lo:hi]
        ordered = bool(((before >= since) & (before < int(cal.day_start_ms[first]))).any())
        last = int(np.searchsorted(cal.day_start_ms, until, side="left")) - 1
        days = np.arange(first, min(last, cal.days - 1) + 1)
        if not len(days):
            return 0.0, 0.0
        uplift = np.zeros(len(days))
        for kind, day in sends:
            on = (days >= day + 1) & (days <= day + UPLIFT_DAYS)
            uplift = uplift + on * (people.coupon_uplift[i] if kind == "coupon" else people.push_uplift[i])
        q = np.minimum(uplift, 1.0)
        share = np.array([_paid_share(until - int(cal.day_start_ms[d])) for d in days])
        r = people.purchase_rate[i] * cal.activity[days] * share
        qf = q * share
        none_plain = float(np.exp(-r.sum()))
        none_treated = float(np.exp(-r.sum()) * np.prod(1.0 - qf))
        conversion = 0.0 if ordered else none_plain - none_treated
        p = float(people.dropout_prob[i])
        return conversion, _orders(r, qf, p) - _orders(r, np.zeros(len(r)), p)


def _orders(r: np.ndarray, q: np.ndarray, p: float) -> float:
    """Expected orders over days with Poisson rates ``r`` and extra Bernoulli chances ``q``, each purchase ending
    the buying for good with chance ``p`` (purchases cut at the first such one), starting alive."""
    stay = np.exp(-r * p) * (1.0 - q * p)
    alive = np.r_[1.0, np.cumprod(stay)[:-1]]
    return float((alive * (1.0 - stay)).sum() / p) if p > 0 else float((r + q).sum())


@functools.lru_cache(maxsize=4096)
def _paid_share(until_in_day: int) -> float:
    """The share of a day's purchases paid before ``until_in_day`` ms after its midnight (1 for a whole day): the
    session start follows the hour profile (uniform within the hour), paid 90 s to 10.5 min later."""
    if until_in_day >= DAY_MS:
        return 1.0
    weights = np.diff(np.r_[0.0, _HOUR_CUM])
    lo, hi = _PAID_AFTER
    delay = lo + (np.arange(200) + 0.5) * (hi - lo) / 200  # the uniform delay, by its midpoints
    start = np.arange(len(weights))[:, None] * HOUR_MS
    within = np.clip((until_in_day - delay[None, :] - start) / HOUR_MS, 0.0, 1.0)
    return float((weights[:, None] * within).mean(axis=1).sum())


# -- helpers --------------------------------------------------------------------------------------------------------


def _addresses(world: World, plan: DayPlan) -> list[pa.Table]:
    """The addresses the business learns: a push token when the app is installed, a phone number at registration
    (profile records at those moments, on the ids the records carry then)."""
    ids, people = world.ids, world.people
    first = int(np.searchsorted(people.install_day, plan.day, side="left"))
    new = np.arange(first, plan.installed, dtype=np.int64)
    out = []
    if len(new):
        out.append(
            pa.table(
                {
                    "type": pa.array(["profile_set"] * len(new)).dictionary_encode(),
                    "distinct_id": ids.strings(ids.device_index(new, 0)),
                    "time": pa.array(people.install_ms[new], type=pa.int64()),
                    "push_token": [f"sim-token-{i}" for i in new.tolist()],
                }
            )
        )
    reg = plan.reg_person.astype(np.int64)
    if len(reg):
        out.append(
            pa.table(
                {
                    "type": pa.array(["profile_set"] * len(reg)).dictionary_encode(),
                    "distinct_id": ids.strings(ids.login_index(reg)),
                    "time": pa.array(plan.reg_ms, type=pa.int64()),
                    "phone": [f"+86138{i:08d}" for i in reg.tolist()],
                }
            )
        )
    return out


def _part(table: pa.Table, lo: int | None, hi: int | None) -> pa.Table | None:
    """The records of ``table`` with ``lo <= time < hi`` (item records, without a time that matters, go first)."""
    if table.column("type")[0].as_py() in ("item_set", "item_delete"):
        return table if lo is None else None
    t = table.column("time").cast(pa.int64())
    mask = None
    if lo is not None:
        mask = pc.greater_equal(t, lo)
    if hi is not None:
        below = pc.less(t, hi)
        mask = below if mask is None else pc.and_(mask, below)
    return table.filter(mask)


def _everyone(
    world: World, timeline: Timeline, plan: _Plan, settings: EngageSettings, enrolled: Enrolled, step_hour: int
) -> dict[str, dict[int, list[tuple[Treatment, int]]]]:
    """For a campaign (a one-off entry, then the split): per treated arm, the send each enrolled person would have
    had in it: at the entry day's step, when reachable on the arm's channel then and not in the global control
    group. Empty for other journeys."""
    entry = plan.journey.entry
    if not isinstance(entry, ScheduleEntry) or entry.once_at is None or plan.journey.start != plan.split.id:
        return {}
    day = _first_step(plan.journey, world)
    send_ms = int(world.calendar.day_start_ms[day]) + step_hour * HOUR_MS
    known = enrolled.person >= 0
    out: dict[str, dict[int, list[tuple[Treatment, int]]]] = {}
    for name, send in plan.sends.items():
        if send is None:
            continue
        kind, treatment = send
        ok = known.copy()
        ok[known] = reachability(world, timeline, enrolled.person[known], kind, send_ms) == ""
        if settings.control_share > 0:
            held = [
                rules.in_global_control(settings.control_salt, int(k), settings.control_share) for k in enrolled.key
            ]
            ok &= ~np.array(held, dtype=bool)
        out[name] = {int(i): [(treatment, day)] for i in enrolled.person[ok].tolist()}
    return out


def _first_step(journey: Journey, world: World) -> int:
    """The first day on which the engine can have anything to do: a one-off scheduled entry's day (the days before
    it are loaded in one batch, as a simulation's history is), else the first day."""
    entry = journey.entry
    if isinstance(entry, ScheduleEntry) and entry.once_at is not None:
        at = _ms(rules.resolve_local(entry.once_at, world.config.timezone))
        return max(0, int(np.searchsorted(world.calendar.day_start_ms, at, side="right")) - 1)
    return 0


def _branch(path: str, split: str) -> str:
    for part in (path or "").split("|"):
        node, _, branch = part.partition(":")
        if node == split:
            return branch
    return ""


def _naive(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None)


def _ms(at: datetime) -> int:
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)


__all__ = ["BENEFIT", "CHANNELS", "MATERIALS", "Arm", "ArmStats", "ArmTruth", "Rehearsal", "campaign", "rehearse"]
