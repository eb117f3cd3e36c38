"""After launch (数据分析, DOMAIN §8): what a journey, each of its branches, nodes and strategy sets, or a standalone
experiment did to its goal, against a control group.

**One aggregate.** Every number comes from one SQL statement over the events (:func:`arm_sums`): each person's
first exposure to each experiment (``$experiment_exposure``, :mod:`userloop.experiment.assignment`) opens a window
of the goal's length; the person's events in it give, per person, converted (the goal event, with its filters),
revenue (the project's money property on goal events), the cost of benefits granted (``$benefit_granted``
priced by :class:`userloop.benefits.BenefitRow` ``amount``), unsubscribed and complained; churned is the
profile's ``last_seen`` (the person's latest active event) earlier than a day after exposure: no activity since.
Only the events that count (goal, grants, guardrails) enter the join, so its cost follows them, not the
project's whole history of page views. The statement then sums per arm: ``n``, conversions, Σ revenue,
Σ revenue², Σ cost, Σ cost², Σ revenue·cost and the guardrail counts. Those are the sufficient statistics of
:mod:`userloop.experiment.stats`, which does all the statistics (Welch's t interval on the difference in
proportions and in means, the delta method for relative lifts, the chi-square sample ratio check).

**Against which control.**

- a journey as a whole: everyone who entered against its people in the project's **global control group** (they
  pass the same nodes but receive no marketing);
- a random split: each branch against the split's **control branch** (people outside the global control only,
  so the control branch and the branch differ by the branch alone);
- every branch of every split and strategy set: its people against its people in the global control group;
- a standalone experiment: each variant against its ``control`` variant.

**Return on benefits**: the revenue per person a branch adds over its control, divided by the benefits' cost per
person it adds (元 of GMV per 元 of coupons), when it spends any. The sample ratio check (Fabijan et al., KDD
2019) alerts below p 0.001; its alert says that every other number of that experiment is suspect.

The reply (:class:`Report` and its rows) lives in :mod:`userloop.experiment.report_types`, which loads without the
engines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlglot import exp

from userloop.benefits import BenefitRow
from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage.journey import Journey, RandomSplit, Split, StrategySet
from userloop.engage.settings import load as load_settings
from userloop.experiment import assignment
from userloop.experiment.report_types import (
    Against,
    ArmRow,
    Comparison,
    Metric,
    Report,
    Return,
    Sentence,
    SrmCheck,
)
from userloop.experiment.stats import Proportion, adjust, lift, sample_ratio, t_test
from userloop.query.compile import Context
from userloop.query.spec import Filter
from userloop.schema.types import PropertyType
from userloop.stats import Moments
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project
from userloop.store.settings import money_property
from userloop.store.sqlbuild import col, sql

#: Guardrail events by default: a person's unsubscribing (``$unsubscribed``, the engage feedback) and a complaint
#: (an event the app or a provider's report records).
UNSUBSCRIBE_EVENTS = ("$unsubscribed",)
COMPLAINT_EVENTS = ("complaint",)
#: A person who does no active event after this long from exposure to the end of the window counts as churned.
CHURN_AFTER_SECONDS = 86_400
GRANTED = "$benefit_granted"


# the one aggregate ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What :func:`arm_sums` reads: the exposures (``exposure_event`` whose ``experiment_property`` is one of
    ``experiments`` or starts with ``prefix``, the arm in ``variant_property``), the goal (``goal`` with
    ``goal_filters`` within ``window_seconds`` of the first exposure), the money property, the benefits' prices
    and the guardrail events."""

    goal: str
    window_seconds: int
    exposure_event: str = assignment.EXPOSURE_EVENT
    experiment_property: str | None = assignment.EXPERIMENT_PROPERTY
    experiments: tuple[str, ...] = ()
    prefix: str | None = None
    variant_property: str = assignment.VARIANT_PROPERTY
    goal_filters: tuple[Filter, ...] = ()
    money: str | None = None
    prices: Mapping[str, float] = field(default_factory=dict)
    unsubscribe_events: tuple[str, ...] = UNSUBSCRIBE_EVENTS
    complaint_events: tuple[str, ...] = COMPLAINT_EVENTS


@dataclass(frozen=True)
class ArmSums:
    """One arm's sufficient statistics: people ``n``, conversions, revenue and cost per person as
    :class:`~userloop.stats.Moments`, Σ revenue·cost, and the guardrail counts."""

    experiment: str
    variant: str
    global_control: bool
    n: int
    conversions: int
    revenue: Moments
    cost: Moments
    revenue_cost: float
    unsubscribed: int
    complained: int
    churned: int

    def __add__(self, other: ArmSums) -> ArmSums:
        return ArmSums(self.experiment, self.variant, self.global_control and other.global_control,
                       self.n + other.n, self.conversions + other.conversions, self.revenue + other.revenue,
                       self.cost + other.cost, self.revenue_cost + other.revenue_cost,
                       self.unsubscribed + other.unsubscribed, self.complained + other.complained,
                       self.churned + other.churned)  # fmt: skip


def arm_sums_sql(store: ProjectStore, scope: Scope, timezone: str, today: datetime) -> exp.Expr:
    """The statement :func:`arm_sums` runs (see the module): one row per experiment, arm and global control."""
    props = store.properties("events")
    ctx = Context(schema=store.schema, timezone=timezone, today=today.date(), event_props=props,
                  user_props=store.properties("users"), event_names=set(),
                  passive_events=store.passive_events())  # fmt: skip

    def prop(name: str | None, alias: str, kind: PropertyType | None = None) -> exp.Expr:
        found = props.get(name) if name is not None else None
        if found is None or (kind is not None and found is not kind):
            return exp.null()
        return col(name, alias)  # type: ignore[arg-type]  # name is set when found

    experiment = prop(scope.experiment_property, "e") if scope.experiment_property else exp.Literal.string("")
    if scope.experiment_property is not None and isinstance(experiment, exp.Null):
        raise ValidationError(f"no event has the property {scope.experiment_property!r}; nothing was exposed",
                              field="experiment_property")  # fmt: skip
    variant = prop(scope.variant_property, "e")
    if isinstance(variant, exp.Null):
        raise ValidationError(f"no event has the property {scope.variant_property!r}; nothing was exposed",
                              field="variant_property")  # fmt: skip
    which: list[exp.Expr] = [sql("$e = $name", e=col("event", "e"), name=scope.exposure_event)]
    if scope.experiment_property is not None:
        keys: list[exp.Expr] = []
        if scope.experiments:
            keys.append(sql("$x IN ($keys)", x=experiment, keys=[exp.Literal.string(k) for k in scope.experiments]))
        if scope.prefix is not None:
            keys.append(sql("starts_with($x, $p)", x=experiment, p=scope.prefix))
        if keys:
            which.append(exp.or_(*keys))
    goal = exp.and_(
        sql("$e = $g", e=col("event", "e"), g=scope.goal), *(ctx.filter_cond(f, "e") for f in scope.goal_filters)
    )
    money = prop(scope.money, "e", PropertyType.NUMBER)
    price = _price(prop("benefit", "e", PropertyType.STRING), scope.prices)
    # one experiment (a standalone one): its key is a constant, and the first exposures group by person alone,
    # an integer key, cheaper than person and experiment
    single = scope.experiment_property is None or (len(scope.experiments) == 1 and scope.prefix is None)
    key = exp.Literal.string(scope.experiments[0] if scope.experiments else "") if single else sql(
        "CAST($x AS VARCHAR)", x=experiment
    )  # fmt: skip
    exposures = sql(
        """SELECT row_number() OVER () AS k, f.*,
                  u.last_seen IS NULL OR u.last_seen < f.t0 + to_seconds($after) AS churned
           FROM (SELECT e.user_id AS user_id, $key AS experiment,
                        arg_min(CAST($v AS VARCHAR), e.time) AS variant,
                        coalesce(arg_min(CAST($gc AS BOOLEAN), e.time), false) AS gc, min(e.time) AS t0
                 FROM $events AS e WHERE $which AND $v IS NOT NULL GROUP BY $groups) AS f
           LEFT JOIN $users AS u ON u.user_id = f.user_id""",
        key=key, v=variant, gc=prop(assignment.GLOBAL_CONTROL_PROPERTY, "e", PropertyType.BOOL),
        events=store.ref("events"), users=store.ref("users"), which=exp.and_(*which), after=CHURN_AFTER_SECONDS,
        groups=[col("user_id", "e")] if single else [col("user_id", "e"), key],
    )  # fmt: skip
    # per exposure, over the few events that count (the goal, grants, guardrails), grouped by the exposure's
    # integer key: cheaper than by experiment, arm and person
    names = [scope.goal, GRANTED, *scope.unsubscribe_events, *scope.complaint_events]
    per_person = sql(
        """SELECT x.k,
                  count(*) FILTER (WHERE $goal) > 0 AS converted,
                  coalesce(sum(CASE WHEN $goal AND isfinite($money) THEN $money END), 0) AS revenue,
                  coalesce(sum(CASE WHEN e.event = $granted THEN $price END), 0) AS cost,
                  count(*) FILTER (WHERE e.event IN ($unsub)) > 0 AS unsubscribed,
                  count(*) FILTER (WHERE e.event IN ($complaint)) > 0 AS complained
           FROM x JOIN $events AS e
             ON e.user_id = x.user_id AND e.time >= x.t0 AND e.time < x.t0 + to_seconds($window)
           WHERE e.event IN ($names)
           GROUP BY x.k""",
        goal=goal, money=money, granted=GRANTED, price=price,
        unsub=[exp.Literal.string(n) for n in scope.unsubscribe_events] or [exp.null()],
        complaint=[exp.Literal.string(n) for n in scope.complaint_events] or [exp.null()],
        names=[exp.Literal.string(n) for n in dict.fromkeys(names)], events=store.ref("events"),
        window=scope.window_seconds,
    )  # fmt: skip
    return sql(
        """WITH x AS MATERIALIZED ($exposures), p AS ($per_person)
           SELECT x.experiment, x.variant, x.gc, count(*), count(*) FILTER (WHERE p.converted),
                  coalesce(sum(p.revenue), 0), coalesce(sum(p.revenue * p.revenue), 0), coalesce(sum(p.cost), 0),
                  coalesce(sum(p.cost * p.cost), 0), coalesce(sum(p.revenue * p.cost), 0),
                  count(*) FILTER (WHERE p.unsubscribed), count(*) FILTER (WHERE p.complained),
                  count(*) FILTER (WHERE x.churned)
           FROM x LEFT JOIN p ON p.k = x.k GROUP BY x.experiment, x.variant, x.gc ORDER BY 1, 2, 3""",
        exposures=exposures,
        per_person=per_person,
    )


def arm_sums(store: ProjectStore, scope: Scope, timezone: str, today: datetime) -> list[ArmSums]:
    """Per experiment, arm and global control: the :class:`ArmSums` of the people exposed (one statement); none
    when no event carries the experiment's properties yet."""
    props = store.properties("events")
    named = [scope.variant_property] + ([scope.experiment_property] if scope.experiment_property else [])
    if any(n not in props for n in named):
        return []  # no event carries the arm yet: nobody was exposed
    rows = store.fetchall(arm_sums_sql(store, scope, timezone, today))
    return [
        ArmSums(str(x), str(v), bool(gc), int(n), int(conv), Moments(int(n), float(r or 0), float(rr or 0)),
                Moments(int(n), float(c or 0), float(cc or 0)), float(rc or 0), int(u), int(k), int(ch))
        for x, v, gc, n, conv, r, rr, c, cc, rc, u, k, ch in rows
    ]  # fmt: skip


def _price(benefit: exp.Expr, prices: Mapping[str, float]) -> exp.Expr:
    """A granted benefit's amount by its name (literals; 0 for a name not priced)."""
    if not prices or isinstance(benefit, exp.Null):
        return exp.Literal.number(0)
    case = exp.Case(this=benefit)
    for name, amount in sorted(prices.items()):
        case = case.when(exp.Literal.string(name), exp.Literal.number(float(amount)))
    return case.else_(exp.Literal.number(0))


# the report -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How to read one experiment's arms: its node (None for a journey's entry or a standalone experiment), its
    kind, the control arms, and the planned weights by arm (percent) for the sample ratio check."""

    experiment: str
    node: str | None
    kind: Literal["entry", "split", "segment", "standalone"]
    controls: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    global_control_share: float = 0.0


def analyse(
    subject: str, kind: Literal["journey", "standalone"], scope: Scope, layouts: Sequence[Layout],
    sums: Sequence[ArmSums], as_of: datetime,
) -> Report:  # fmt: skip
    """The report of ``sums`` read by ``layouts`` (statistics by :mod:`userloop.experiment.stats`; no sentences:
    :func:`userloop.experiment.report_page.explain` writes them)."""
    by_experiment: dict[str, list[ArmSums]] = {}
    for s in sums:
        by_experiment.setdefault(s.experiment, []).append(s)
    arms: list[ArmRow] = []
    comparisons: list[Comparison] = []
    returns: list[Return] = []
    checks: list[SrmCheck] = []
    for layout in layouts:
        found = by_experiment.get(layout.experiment, [])
        arms += [_arm_row(s, layout.node) for s in found]
        pairs = _pairs(layout, found)
        for treatment, control, against in pairs:
            comparisons += _compare(layout, treatment, control, against)
            back = _return(layout, treatment, control, against)
            if back is not None:
                returns.append(back)
        check = _srm(layout, found)
        if check is not None:
            checks.append(check)
    comparisons = _holm(comparisons)
    return Report(subject=subject, kind=kind, goal=scope.goal, window_seconds=scope.window_seconds,
                  money_property=scope.money, as_of=as_of, arms=arms, comparisons=comparisons, returns=returns,
                  srm=checks)  # fmt: skip


def _holm(comparisons: list[Comparison]) -> list[Comparison]:
    """Each absolute comparison with its p-value adjusted by Holm's method (Holm 1979) within its experiment and
    control, over every arm and metric compared there (:func:`userloop.experiment.stats.adjust`)."""
    families: dict[tuple[str, str], dict[int, float | None]] = {}
    for i, c in enumerate(comparisons):
        if c.scale == "absolute":
            families.setdefault((c.experiment, c.against), {})[i] = None if c.code is not None else c.p_value
    adjusted: dict[int, float] = {}
    for family in families.values():
        adjusted.update(adjust(family, "holm"))
    return [c.model_copy(update={"p_adjusted": adjusted[i]}) if i in adjusted else c for i, c in enumerate(comparisons)]


def _arm_row(s: ArmSums, node: str | None) -> ArmRow:
    per = (lambda x: x / s.n) if s.n else (lambda x: None)
    return ArmRow(experiment=s.experiment, node=node, variant=s.variant, global_control=s.global_control,
                  people=s.n, conversions=s.conversions, conversion_rate=per(s.conversions),
                  revenue=s.revenue.total, revenue_per_person=per(s.revenue.total), cost=s.cost.total,
                  cost_per_person=per(s.cost.total), unsubscribed=s.unsubscribed, complained=s.complained,
                  churned=s.churned)  # fmt: skip


def _total(parts: Sequence[ArmSums]) -> ArmSums | None:
    total: ArmSums | None = None
    for p in parts:
        total = p if total is None else total + p
    return total


def _pairs(layout: Layout, found: Sequence[ArmSums]) -> list[tuple[ArmSums, ArmSums, Against]]:
    """(treatment, control, against) of one experiment, as the module lists them."""
    out: list[tuple[ArmSums, ArmSums, Against]] = []
    variants = sorted({s.variant for s in found})
    if layout.kind == "standalone":
        control = _total([s for s in found if s.variant in layout.controls])
        for v in variants:
            treated = _total([s for s in found if s.variant == v])
            if control is not None and treated is not None and v not in layout.controls:
                out.append((treated, control, "control_variant"))
        return out
    if layout.kind == "split":
        control = _total([s for s in found if s.variant in layout.controls and not s.global_control])
        for v in variants:
            treated = _total([s for s in found if s.variant == v and not s.global_control])
            if control is not None and treated is not None and v not in layout.controls:
                out.append((treated, control, "control_branch"))
    for v in variants:
        if v in layout.controls:
            continue
        held = _total([s for s in found if s.variant == v and s.global_control])
        exposed = _total([s for s in found if s.variant == v and not s.global_control])
        if held is not None and exposed is not None:
            out.append((exposed, held, "global_control"))
    return out


def _compare(layout: Layout, t: ArmSums, c: ArmSums, against: Against) -> list[Comparison]:
    def row(metric: Metric, scale: Literal["absolute", "relative"], ct: Proportion | Moments,
            cc: Proportion | Moments) -> Comparison:  # fmt: skip
        r = t_test(lift(cc, ct, scale))
        return Comparison(experiment=layout.experiment, node=layout.node, treatment=t.variant,
                          control=c.variant, against=against, metric=metric, scale=scale,
                          treatment_mean=_finite(ct.mean), control_mean=_finite(cc.mean), estimate=r.estimate,
                          low=r.low, high=r.high, p_value=r.p_value, significant=r.significant,
                          code=r.code)  # fmt: skip

    return [
        row("conversion", "absolute", Proportion(t.n, t.conversions), Proportion(c.n, c.conversions)),
        row("conversion", "relative", Proportion(t.n, t.conversions), Proportion(c.n, c.conversions)),
        row("revenue_per_person", "absolute", t.revenue, c.revenue),
        row("revenue_per_person", "relative", t.revenue, c.revenue),
        row("unsubscribed", "absolute", Proportion(t.n, t.unsubscribed), Proportion(c.n, c.unsubscribed)),
        row("complained", "absolute", Proportion(t.n, t.complained), Proportion(c.n, c.complained)),
        row("churned", "absolute", Proportion(t.n, t.churned), Proportion(c.n, c.churned)),
    ]


def _return(layout: Layout, t: ArmSums, c: ArmSums, against: Against) -> Return | None:
    if not t.n or not c.n:
        return None
    revenue = t.revenue.total / t.n - c.revenue.total / c.n
    cost = t.cost.total / t.n - c.cost.total / c.n
    if t.cost.total == 0:
        return None
    return Return(experiment=layout.experiment, node=layout.node, treatment=t.variant, control=c.variant,
                  against=against, revenue_per_person_added=revenue, cost_per_person_added=cost,
                  return_per_cost=revenue / cost if cost > 0 else None)  # fmt: skip


def _srm(layout: Layout, found: Sequence[ArmSums]) -> SrmCheck | None:
    if layout.kind == "entry":
        share = layout.global_control_share
        if share <= 0:
            return None
        held = sum(s.n for s in found if s.global_control)
        rest = sum(s.n for s in found if not s.global_control)
        names, counts, weights = ["global_control", "exposed"], [held, rest], [share * 100, (1 - share) * 100]
    elif layout.weights:
        names = [v for v, w in layout.weights.items() if w > 0]
        counts = [sum(s.n for s in found if s.variant == v) for v in names]
        weights = [layout.weights[v] for v in names]
    else:
        return None
    if len(names) < 2 or sum(counts) == 0:
        return None
    r = sample_ratio(counts, weights)
    return SrmCheck(experiment=layout.experiment, node=layout.node, arms=names, counts=counts, weights=weights,
                    p_value=r.p_value, alert=r.alert)  # fmt: skip


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# the subjects -----------------------------------------------------------------------------------------------------
def prices(meta: MetaStore, project: Project) -> dict[str, float]:
    """Every benefit's amount by name (:class:`userloop.benefits.BenefitRow`): what one grant costs."""
    with meta.session() as s:
        rows = s.execute(select(BenefitRow.name, BenefitRow.amount).where(BenefitRow.project_id == project.id))
        return {str(n): float(a) for n, a in rows}


def journey_layouts(meta: MetaStore, project: Project, journey_id: int, journey: Journey) -> list[Layout]:
    """The journey's entry against the global control, each random split by its control branches and weights,
    and each condition split and strategy set by the global control alone."""
    share = load_settings(meta, project.id).control_share
    out = [Layout(assignment.journey_experiment(journey_id), None, "entry", global_control_share=share)]
    for node in journey.nodes:
        key = assignment.journey_experiment(journey_id, node.id)
        if isinstance(node, RandomSplit):
            out.append(Layout(key, node.id, "split", tuple(b.name for b in node.branches if b.control),
                              {b.name: b.percent for b in node.branches}))  # fmt: skip
        elif isinstance(node, Split | StrategySet):
            out.append(Layout(key, node.id, "segment"))
    return out


def journey_report(
    meta: MetaStore, project: Project, store: ProjectStore, journey_id: int, journey: Journey, as_of: datetime,
    *, record: bool = True,
) -> Report:  # fmt: skip
    """The report of one journey (its latest version's nodes): exposures written first (``record``), then the one
    aggregate, the statistics and the findings."""
    from userloop.experiment.report_page import explain

    if journey.goal is None:
        raise ValidationError(f"journey {journey.name!r} has no goal to measure; give it a 'goal'", field="goal")
    if record:
        assignment.record_exposures(meta, project, store)
    scope = Scope(goal=journey.goal.event, window_seconds=journey.goal.within_seconds,
                  goal_filters=tuple(journey.goal.filters), experiments=(assignment.journey_experiment(journey_id),),
                  prefix=assignment.journey_experiment(journey_id) + ":", money=_money(store),
                  prices=prices(meta, project))  # fmt: skip
    sums = arm_sums(store, scope, project.timezone, as_of)
    layouts = journey_layouts(meta, project, journey_id, journey)
    return explain(analyse(journey.name, "journey", scope, layouts, sums, as_of))


def standalone_report(
    meta: MetaStore, project: Project, store: ProjectStore, experiment: assignment.Standalone, goal: str,
    window_seconds: int, as_of: datetime, *, goal_filters: Sequence[Filter] = (),
) -> Report:  # fmt: skip
    """The report of a test run elsewhere, known by its exposure events (:class:`~.assignment.Standalone`)."""
    from userloop.experiment.report_page import explain

    scope = Scope(goal=goal, window_seconds=window_seconds, exposure_event=experiment.exposure_event,
                  experiment_property=experiment.experiment_property,
                  experiments=(experiment.name,) if experiment.experiment_property else (),
                  variant_property=experiment.variant_property, goal_filters=tuple(goal_filters),
                  money=_money(store), prices=prices(meta, project))  # fmt: skip
    sums = arm_sums(store, scope, project.timezone, as_of)
    if not sums:
        raise NotFoundError(
            f"no {experiment.exposure_event!r} event exposes anyone to {experiment.name!r}", field="name"
        )
    key = experiment.name if experiment.experiment_property else ""
    layout = Layout(key, None, "standalone", (experiment.control,), dict(experiment.weights or {}))
    if experiment.weights is None:
        layout = Layout(
            key, None, "standalone", (experiment.control,), dict.fromkeys(sorted({s.variant for s in sums}), 1.0)
        )
    report = analyse(experiment.name, "standalone", scope, [layout], sums, as_of)
    return explain(report)


def standalone_experiments(store: ProjectStore) -> list[tuple[str, list[tuple[str, int]], datetime, datetime]]:
    """The standalone experiments exposed so far (``$experiment_exposure`` events whose experiment is not a
    journey's): name, (variant, people) by the variant of each person's first exposure, the first and the last
    exposure."""
    props = store.properties("events")
    if (
        props.get(assignment.EXPERIMENT_PROPERTY) is not PropertyType.STRING
        or props.get(assignment.VARIANT_PROPERTY) is not PropertyType.STRING
    ):
        return []
    x, v = col(assignment.EXPERIMENT_PROPERTY, "e"), col(assignment.VARIANT_PROPERTY, "e")
    first = sql(
        """SELECT $x AS experiment, arg_min($v, e.time) AS variant, min(e.time) AS first, max(e.time) AS last
           FROM $events AS e
           WHERE e.event = $exposure AND $x IS NOT NULL AND $v IS NOT NULL AND NOT starts_with($x, 'journey:')
           GROUP BY e.user_id, $x""",
        x=x, v=v, events=store.ref("events"), exposure=assignment.EXPOSURE_EVENT,
    )  # fmt: skip
    stmt = sql("SELECT f.experiment, f.variant, count(*), min(f.first), max(f.last) FROM ($f) AS f GROUP BY 1, 2 "
               "ORDER BY 1, 2", f=first)  # fmt: skip
    out: dict[str, tuple[list[tuple[str, int]], datetime, datetime]] = {}
    for name, variant, people, first, last in store.fetchall(stmt):
        seen = out.get(str(name))
        if seen is None:
            out[str(name)] = ([(str(variant), int(people))], first, last)
        else:
            seen[0].append((str(variant), int(people)))
            out[str(name)] = (seen[0], min(seen[1], first), max(seen[2], last))
    return [(name, variants, first, last) for name, (variants, first, last) in out.items()]


def _money(store: ProjectStore) -> str | None:
    name = money_property(store)
    return name if store.properties("events").get(name) is PropertyType.NUMBER else None


__all__ = [
    "ArmRow",
    "ArmSums",
    "Comparison",
    "Layout",
    "Report",
    "Return",
    "Scope",
    "Sentence",
    "SrmCheck",
    "analyse",
    "arm_sums",
    "arm_sums_sql",
    "journey_layouts",
    "journey_report",
    "prices",
    "standalone_experiments",
    "standalone_report",
]
