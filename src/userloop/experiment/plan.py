"""Before launch (运营效果评估, DOMAIN §8): how many people a strategy can reach, what its goal does today, and how
long the test must run to see an effect.

One call, :func:`plan`, answers four questions for an audience (a segment, or everyone), the channels it would
use, a goal and a split:

1. **Reach** per channel, by the journeys' own delivery rules in their order (:mod:`userloop.engage.delivery`): the
   people outside the global control group (:func:`userloop.experiment.assignment.in_global_control`), with an
   address and reachable on the channel (:func:`userloop.engage.runtime.reach_of` over the facts
   :func:`userloop.engage.facts.load_facts` reads), not opted out of its topic
   (:func:`userloop.engage.delivery.opted_out`), under the frequency caps at launch
   (:func:`userloop.engage.rules.capped` over :func:`userloop.engage.delivery.sent_history`); those in quiet hours
   at launch (:func:`userloop.engage.rules.quiet`) are counted apart: deferred, or lost when the policy drops them.
2. **Baseline**: the goal's conversion rate and revenue per person over the audience in the last window of the
   goal's length before launch (one statement over the events).
3. **Power**: the minimum detectable effect after ``days`` days, or the people and days needed for an
   ``expected_effect`` (relative lift), for the chosen split, by :func:`userloop.experiment.stats.plan`.
4. **Expected effect**: given (a rehearsal, :mod:`userloop.experiment` item 5, fills it in), then also the power
   reached and the conversions it would add.

The request and reply (:class:`PlanInput`, :class:`PlanReport`) live in :mod:`userloop.experiment.plan_types`, which
loads without the engines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import pyarrow as pa
from sqlalchemy import select
from sqlglot import exp

from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage import rules
from userloop.engage.delivery import opted_out, sent_history
from userloop.engage.facts import Needs, load_facts
from userloop.engage.interpreter import Person
from userloop.engage.runtime import channel_plan, reach_of
from userloop.engage.settings import EngageSettings
from userloop.engage.settings import load as load_settings
from userloop.engage.tables import ChannelRow
from userloop.experiment.assignment import in_global_control
from userloop.experiment.plan_types import BaselineOut, ChannelReach, PlanInput, PlanReport, PowerOut, Sentence
from userloop.experiment.stats import Baseline, Design, Proportion, minimum_detectable_effect, power, sample_size
from userloop.experiment.stats import plan as power_plan
from userloop.profile import history, segments
from userloop.schema.types import PropertyType
from userloop.stats import Moments
from userloop.store.duck import ProjectStore
from userloop.store.meta import MetaStore, Project
from userloop.store.settings import money_property
from userloop.store.sqlbuild import col, sql

_AUDIENCE = "_ul_plan_audience"


# reach ------------------------------------------------------------------------------------------------------------
def audience(meta: MetaStore, project: Project, store: ProjectStore, segment: int | None) -> list[int]:
    """The people of ``segment`` as of its last refresh (everyone with a profile when None)."""
    if segment is None:
        stmt: exp.Expr = sql("SELECT user_id FROM $u ORDER BY user_id", u=store.ref("users"))
    else:
        row = segments.get(meta, project.id, segment)
        if not history.exists(store, row.table):
            raise ValidationError(f"segment {segment} has never been refreshed; refresh it first", field="segment",
                                  code="segment_not_computed")  # fmt: skip
        stmt = sql("SELECT DISTINCT m.user_id FROM ($m) AS m ORDER BY 1", m=segments.members(store.schema, row))
    return [int(r[0]) for r in store.fetchall(stmt)]


def reach(
    meta: MetaStore, project: Project, store: ProjectStore, people: Sequence[int], channels: Sequence[str],
    at: datetime,
) -> list[ChannelReach]:  # fmt: skip
    """Each channel's reach over ``people`` at ``at`` (the module's rules, in order)."""
    settings = load_settings(meta, project.id)
    found = _channels(meta, project.id, channels)
    props: set[str] = set()
    plans = {}
    for name, (kind, config) in found.items():
        address, conditions = channel_plan(kind, config)
        plans[name] = (kind, address, conditions, str(config.get("topic") or kind))
        props |= {address} if address else set()
        props |= {p for p, _ in conditions}
    facts = load_facts(store, meta, project, people, Needs(props=frozenset(props)),
                       zone_property=settings.zone_property)  # fmt: skip
    out_of = opted_out(meta, project.id, people)
    sent = sent_history(meta, project.id, people, at) if settings.caps else {}
    return [_channel_reach(name, plans[name], people, facts, out_of, sent, settings, at) for name in channels]


def _channel_reach(
    name: str, plan: tuple[str, str | None, tuple[tuple[str, object], ...], str], people: Sequence[int],
    facts: Mapping[int, Person], out_of: dict[int, set[str]], sent: dict[int, list[tuple[str, datetime]]],
    settings: EngageSettings, at: datetime,
) -> ChannelReach:  # fmt: skip
    kind, address, conditions, topic = plan
    counts = dict.fromkeys(("global_control", "no_address", "unreachable", "unsubscribed", "capped",
                            "quiet_deferred", "quiet_dropped", "reachable"), 0)  # fmt: skip
    for person in people:
        f = facts[person]
        if in_global_control(settings, person):
            counts["global_control"] += 1
            continue
        _, why = reach_of(kind, address, conditions, None, person, f.prop)
        if why is not None:
            counts["no_address" if why == "no_address" else "unreachable"] += 1
            continue
        gone = out_of.get(person, set())
        if topic in gone or name in gone or "*" in gone:
            counts["unsubscribed"] += 1
            continue
        zone = f.zone
        history_ = sent.get(person, [])
        if any(rules.capped([t for ch, t in history_ if rule.applies(ch)], at, zone, rule)
               for rule in settings.caps if rule.applies(name)):  # fmt: skip
            counts["capped"] += 1
            continue
        if settings.quiet_hours is not None and rules.quiet(at, zone, settings.quiet_hours):
            key = "quiet_dropped" if settings.quiet_hours.policy == "drop" else "quiet_deferred"
            counts[key] += 1
            if key == "quiet_dropped":
                continue
        counts["reachable"] += 1
    total = len(people)
    return ChannelReach(channel=name, kind=kind, audience=total, share=counts["reachable"] / total if total else None,
                        **counts)  # fmt: skip


def _channels(meta: MetaStore, project_id: int, names: Sequence[str]) -> dict[str, tuple[str, dict[str, object]]]:
    with meta.session() as s:
        rows = s.execute(
            select(ChannelRow.name, ChannelRow.kind, ChannelRow.config).where(
                ChannelRow.project_id == project_id, ChannelRow.name.in_(list(names))
            )
        ).all()
    found = {str(n): (str(k), _public(c)) for n, k, c in rows}
    missing = [n for n in names if n not in found]
    if missing:
        raise NotFoundError(f"no channel {missing[0]!r} in this project", field="channels", code="unknown_channel")
    return found


def _public(text: str | None) -> dict[str, object]:
    """The channel settings a plan reads (address property, reachability, topic); secrets are never opened."""
    doc = json.loads(text or "{}")
    return {k: v for k, v in doc.items() if k in ("address_property", "reach", "topic")}


# baseline ---------------------------------------------------------------------------------------------------------
def baseline(store: ProjectStore, people: Sequence[int], goal: str, start: datetime, end: datetime) -> tuple[
    Proportion, Moments
]:  # fmt: skip
    """Over ``people``: who did ``goal`` in ``[start, end)`` and the revenue per person (the money property on
    goal events), as sufficient statistics (one statement)."""
    money = money_property(store)
    amount = (col(money, "e") if store.properties("events").get(money) is PropertyType.NUMBER
              else exp.Literal.number(0))  # fmt: skip
    per_person = sql(
        """SELECT a.user_id, count(e.user_id) > 0 AS converted,
                  coalesce(sum(CASE WHEN isfinite($m) THEN $m END), 0) AS revenue
           FROM $a AS a LEFT JOIN $events AS e
             ON e.user_id = a.user_id AND e.event = $goal AND e.time >= $start AND e.time < $end
           GROUP BY a.user_id""",
        m=amount, a=exp.to_table(_AUDIENCE), events=store.ref("events"), goal=goal, start=start, end=end,
    )  # fmt: skip
    stmt = sql(
        "SELECT count(*), count(*) FILTER (WHERE p.converted), sum(p.revenue), sum(p.revenue * p.revenue) "
        "FROM ($p) AS p",
        p=per_person,
    )
    with store.session() as s:
        s.register(_AUDIENCE, pa.table({"user_id": pa.array(sorted(set(people)), pa.int64())}))
        try:
            n, conv, total, total_sq = s.fetchone(stmt) or (0, 0, 0, 0)
        finally:
            s.unregister(_AUDIENCE)
    return Proportion(int(n), int(conv or 0)), Moments(int(n), float(total or 0), float(total_sq or 0))


# power ------------------------------------------------------------------------------------------------------------
def power_of(history_: Proportion, people: int, spec: PlanInput) -> PowerOut:
    """Power, minimum detectable effect and duration for the split, by :mod:`userloop.experiment.stats.power` on
    the absolute scale (a difference in conversion rates, finite at any size; the relative figure is it over the
    baseline). An expected relative lift is read as that lift of the baseline rate."""
    design = Design(alpha=spec.alpha, power=spec.power, control_share=spec.control_share,
                    treatment_share=spec.treatment_share, scale="absolute")  # fmt: skip
    base = Baseline.of(history_)
    daily = spec.daily_people if spec.daily_people is not None else people / spec.days
    found = power_plan(base, daily, design, days=spec.days)
    if found.code is not None:
        return PowerOut(people=0, days=0, minimum_detectable_effect=None, minimum_detectable_points=None,
                        code=found.code)  # fmt: skip
    n = people if spec.daily_people is None else found.n
    mde = minimum_detectable_effect(base, n, design) if n > 0 else math.inf
    finite = math.isfinite(mde) and base.mean > 0
    out = PowerOut(people=n, days=spec.days, minimum_detectable_effect=mde / base.mean if finite else None,
                   minimum_detectable_points=mde * 100 if finite else None)  # fmt: skip
    if spec.expected_effect is None:
        return out
    effect = spec.expected_effect * base.mean
    needed = sample_size(base, effect, design)
    return out.model_copy(update={
        "expected_effect": spec.expected_effect,
        "required_people": needed,
        "required_days": None if needed is None else math.ceil(needed / daily),
        "power_at_expected": power(base, effect, n, design) if n > 0 else 0.0,
        "added_conversions": n * spec.treatment_share * effect,
    })  # fmt: skip


# the plan ---------------------------------------------------------------------------------------------------------
def plan(meta: MetaStore, project: Project, store: ProjectStore, spec: PlanInput, at: datetime) -> PlanReport:
    """Reach, baseline, power and the expected effect of ``spec`` launched at ``at`` (naive UTC)."""
    if spec.treatment_share + spec.control_share > 1 + 1e-9:
        raise ValidationError(
            f"the treatment and control shares add up to more than 1 ({spec.treatment_share} + "
            f"{spec.control_share})", field="control_share")  # fmt: skip
    people = audience(meta, project, store, spec.segment)
    channels = reach(meta, project, store, people, spec.channels, at) if spec.channels else []
    window = timedelta(days=spec.window_days)
    conv, revenue = baseline(store, people, spec.goal, at - window, at)
    reachable = min((c.reachable for c in channels), default=len(people))
    base = BaselineOut(people=conv.n, converters=int(conv.conversions),
                       conversion_rate=conv.mean if conv.n else None,
                       revenue_per_person=revenue.mean if revenue.n else None,
                       revenue_variance=revenue.variance if revenue.n > 1 else None)  # fmt: skip
    power_ = power_of(conv, reachable, spec)
    report = PlanReport(audience=len(people), as_of=at, goal=spec.goal, window_days=spec.window_days,
                        reach=channels, baseline=base, power=power_, sentences=[])  # fmt: skip
    return report.model_copy(update={"sentences": explain(report, spec)})


def explain(report: PlanReport, spec: PlanInput) -> list[Sentence]:
    """The plan's findings in Chinese and English."""
    out: list[Sentence] = []
    for c in report.reach:
        share = f"{c.share:.1%}" if c.share is not None else "—"
        out.append(Sentence(
            zh=f"渠道 {c.channel}：受众 {c.audience:,} 人中可触达 {c.reachable:,} 人（{share}）；"
               f"全局对照 {c.global_control:,}，无地址 {c.no_address:,}，"
               f"不可达 {c.unreachable:,}，已退订 {c.unsubscribed:,}，频控 {c.capped:,}，"
               f"勿扰时段顺延 {c.quiet_deferred:,}、丢弃 {c.quiet_dropped:,}。",
            en=f"Channel {c.channel}: {c.reachable:,} of {c.audience:,} people reachable ({share}); global control "
               f"{c.global_control:,}, no address {c.no_address:,}, unreachable {c.unreachable:,}, unsubscribed "
               f"{c.unsubscribed:,}, capped {c.capped:,}, quiet hours deferred {c.quiet_deferred:,} and dropped "
               f"{c.quiet_dropped:,}.",
        ))  # fmt: skip
    b = report.baseline
    rate = f"{b.conversion_rate:.2%}" if b.conversion_rate is not None else "—"
    out.append(Sentence(
        zh=f"基线：过去 {spec.window_days} 天受众 {b.people:,} 人中 {b.converters:,} 人完成 {spec.goal}（{rate}）。",
        en=f"Baseline: {b.converters:,} of {b.people:,} people did {spec.goal} in the last {spec.window_days} days "
           f"({rate}).",
    ))  # fmt: skip
    p = report.power
    if p.code is not None:
        out.append(Sentence(
            zh=f"无法计算检验功效（{p.code}）：基线没有波动或为零。",
            en=f"No power can be computed ({p.code}): the baseline does not vary or is zero.",
        ))  # fmt: skip
    elif p.minimum_detectable_effect is not None:
        split = f"{spec.treatment_share:.0%}/{spec.control_share:.0%}"
        out.append(Sentence(
            zh=f"按 {split} 分流、{p.people:,} 人，最小可检测提升为相对 {p.minimum_detectable_effect:.1%}"
               f"（约 {p.minimum_detectable_points:.2f} 个百分点，功效 {spec.power:.0%}，显著性 {spec.alpha:g}）。",
            en=f"With a {split} split and {p.people:,} people, the minimum detectable lift is "
               f"{p.minimum_detectable_effect:.1%} relative (about {p.minimum_detectable_points:.2f} percentage "
               f"points; power {spec.power:.0%}, alpha {spec.alpha:g}).",
        ))  # fmt: skip
    if p.expected_effect is not None and p.required_people is not None:
        out.append(Sentence(
            zh=f"预期相对提升 {p.expected_effect:.1%}：需要 {p.required_people:,} 人（约 {p.required_days} 天），"
               f"当前规模下功效 {p.power_at_expected:.0%}，预计多带来 {p.added_conversions:,.0f} 次转化。",
            en=f"Expected lift {p.expected_effect:.1%}: {p.required_people:,} people needed (about "
               f"{p.required_days} days); power at this size {p.power_at_expected:.0%}, about "
               f"{p.added_conversions:,.0f} more conversions.",
        ))  # fmt: skip
    return out


__all__ = ["ChannelReach", "PlanInput", "PlanReport", "audience", "baseline", "plan", "reach"]
