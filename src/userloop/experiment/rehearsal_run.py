"""A rehearsal as the operator runs it (``userloop experiments rehearse``, ``experiments plan --rehearse``): a journey
document played on a small simulated business in a scratch workspace (:func:`userloop.experiment.rehearsal.rehearse`,
the simulator in the loop of issue 15 item 5), read back as per-arm tables and sentences with the simulator's true
effect beside each estimate, and the relative conversion lift the plan takes as its expected effect.

The simulated business knows two treatments (:mod:`userloop.sim.timeline`): a coupon and any other message. A
journey written for the real channels is rehearsed as the simulator can play it (:func:`simulated`): a send with a
benefit becomes the simulated coupon by SMS, any other send a nudge by push. A one-off scheduled entry is moved
onto the simulated calendar so that the goal window ends on its last day (the history before it builds the
audience); another entry runs over the whole simulated window.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from userloop.core.clock import utcnow
from userloop.core.errors import ValidationError
from userloop.engage.journey import ScheduleEntry, parse
from userloop.experiment.rehearsal import BENEFIT, CHANNELS, Rehearsal, rehearse
from userloop.experiment.rehearsal_types import (
    RehearsalInput,
    RehearsalReport,
    RehearsalSentence,
    RehearsedArm,
    RehearsedEffect,
    RehearsedRatio,
)
from userloop.sim.config import SimConfig

#: What a rehearsed send becomes: (channel, material, benefit) for a coupon and for any other message.
_COUPON = ("sim_sms", "sim_coupon", BENEFIT)
_NUDGE = ("sim_push", "sim_nudge", None)


def simulated(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with each send the simulator cannot play as written moved onto the simulated channels: a send with
    a benefit becomes the coupon by SMS, any other a nudge by push (sends already on :data:`CHANNELS` stay)."""
    return {**doc, "nodes": [_simulated_node(node) for node in doc.get("nodes") or []]}


def _simulated_node(node: Any) -> Any:
    if not isinstance(node, Mapping) or node.get("kind") != "send" or node.get("channel") in CHANNELS:
        return node
    channel, material, benefit = _COUPON if node.get("benefit") else _NUDGE
    out = {**{k: v for k, v in node.items() if k != "benefit"}, "channel": channel, "material": material}
    if benefit is not None:
        out["benefit"] = benefit
    return out


def sim_config(spec: RehearsalInput, doc: Mapping[str, Any], today: date) -> tuple[SimConfig, date | None]:
    """The simulated business for ``doc`` and the local day its one-off entry falls on (None for another entry):
    the window ends the day after the goal window closes, or yesterday (by ``today``) for another entry."""
    journey = parse(dict(doc))
    entry = journey.entry
    if isinstance(entry, ScheduleEntry) and entry.once_at is not None:
        goal_days = math.ceil(journey.goal.within_seconds / 86_400) if journey.goal else 7
        if spec.days < goal_days + 2:
            raise ValidationError(
                f"a rehearsal of a goal within {goal_days} days needs at least {goal_days + 2} simulated days, "
                f"not {spec.days}",
                field="days",
            )
        day = entry.once_at.date()
        end = day + timedelta(days=goal_days + 1)
    else:
        day, end = None, today - timedelta(days=1)
    return SimConfig(users=spec.users, days=spec.days, seed=spec.seed, end_date=end), day


def run(spec: RehearsalInput, scratch: Path, today: date | None = None) -> RehearsalReport:
    """Rehearse ``spec`` in a workspace under ``scratch`` (a new directory, removed afterwards) and report it."""
    doc = simulated(spec.journey)
    config, day = sim_config(spec, doc, today or utcnow().date())
    where = scratch / f"rehearsal-{uuid.uuid4().hex[:12]}"
    where.mkdir(parents=True)
    try:
        r = rehearse(config, doc, path=where)
        try:
            return report(spec, r, day)
        finally:
            if r.workspace is not None:
                r.workspace.close()
    finally:
        shutil.rmtree(where, ignore_errors=True)


def report(spec: RehearsalInput, r: Rehearsal, day: date | None) -> RehearsalReport:
    """Per arm what ``r`` measured, each treated arm's effects beside the truth, the sample ratio, sentences."""
    arms = []
    for name, stats in r.arms.items():
        c, m = stats.conversion, stats.revenue
        arms.append(RehearsedArm(arm=name, control=name == r.control, people=c.n, reached=r.truth[name].treated,
                                 conversions=int(c.conversions), conversion_rate=c.mean if c.n else None,
                                 revenue_per_person=m.mean if m.n else None))  # fmt: skip
    effects = [_effect(r, name, metric) for name in r.arms if name != r.control for metric in ("conversion", "revenue")]
    check = r.srm()
    names = list(r.weights)
    ratio = RehearsedRatio(arms=names, counts=[r.arms[n].conversion.n for n in names],
                           weights=[r.weights[n] for n in names], p_value=check.p_value,
                           alert=bool(check.alert))  # fmt: skip
    found = RehearsalReport(journey=str(spec.journey.get("name", "")), users=spec.users, days=spec.days,
                            seed=spec.seed, entry_day=day.isoformat() if day else None, control=r.control,
                            arms=arms, effects=effects, srm=ratio, sentences=[])  # fmt: skip
    return found.model_copy(update={"sentences": explain(found)})


def _effect(r: Rehearsal, arm: str, metric: str) -> RehearsedEffect:
    fixed = r.effect(arm, metric)  # type: ignore[arg-type]
    seq = r.effect(arm, metric, sequential=True)  # type: ignore[arg-type]
    truth = r.true_effect(arm, metric)  # type: ignore[arg-type]
    control = r.arms[r.control]
    base = control.conversion.mean if metric == "conversion" else control.revenue.mean
    relative = fixed.estimate / base if fixed.code is None and base > 0 else None
    return RehearsedEffect(arm=arm, metric=metric, estimate=fixed.estimate, low=fixed.low, high=fixed.high,
                           p_value=fixed.p_value, sequential_low=seq.low, sequential_high=seq.high,
                           true_effect=truth, covered=fixed.low <= truth <= fixed.high, relative=relative,
                           code=fixed.code)  # fmt: skip


def explain(found: RehearsalReport) -> list[RehearsalSentence]:
    """The rehearsal's findings in Chinese and English, the first saying the business is simulated."""
    when = f"，在 {found.entry_day} 进入" if found.entry_day else ""
    when_en = f", entering on {found.entry_day}" if found.entry_day else ""
    out = [RehearsalSentence(
        zh=f"这是在模拟业务上的预演：{found.users:,} 个模拟用户、{found.days} 天（种子 {found.seed}）{when}；"
           "数字来自模拟器，不是真实用户，用来在花钱前检验策略和估计方法。",
        en=f"This is a rehearsal on a simulated business: {found.users:,} simulated people over {found.days} days "
           f"(seed {found.seed}){when_en}; the figures come from the simulator, not from real customers, to try the "
           "strategy and the estimates before spending on them.",
    )]  # fmt: skip
    for e in found.effects:
        inside, inside_en = ("在区间内", "inside the interval") if e.covered else ("不在区间内", "outside the interval")
        if e.metric == "conversion":
            p = 100.0
            out.append(RehearsalSentence(
                zh=f"{e.arm} 组比 {found.control} 组转化率高 {e.estimate * p:.2f} 个百分点（95% 置信区间 "
                   f"{e.low * p:.2f}–{e.high * p:.2f}，序贯区间 {e.sequential_low * p:.2f}–"
                   f"{e.sequential_high * p:.2f}）；模拟器中的真实效果是 {e.true_effect * p:.2f} 个百分点，{inside}。",
                en=f"{e.arm} converts {e.estimate * p:.2f} percentage points above {found.control} (95% CI "
                   f"{e.low * p:.2f} to {e.high * p:.2f}; sequential {e.sequential_low * p:.2f} to "
                   f"{e.sequential_high * p:.2f}); the simulator's true effect is {e.true_effect * p:.2f} points, "
                   f"{inside_en}.",
            ))  # fmt: skip
        else:
            out.append(RehearsalSentence(
                zh=f"{e.arm} 组人均收入比 {found.control} 组多 {e.estimate:.2f} 元（95% 置信区间 {e.low:.2f}–"
                   f"{e.high:.2f}）；真实效果 {e.true_effect:.2f} 元，{inside}。",
                en=f"{e.arm} brings {e.estimate:.2f} yuan per person more than {found.control} (95% CI {e.low:.2f} "
                   f"to {e.high:.2f}); the true effect is {e.true_effect:.2f} yuan, {inside_en}.",
            ))  # fmt: skip
    s = found.srm
    counts = "/".join(f"{n:,}" for n in s.counts)
    out.append(RehearsalSentence(
        zh=f"分流人数 {counts}：样本比例{'异常' if s.alert else '正常'}（SRM p={s.p_value:.3g}）。",
        en=f"People per arm {counts}: the sample ratio is {'off (SRM alert)' if s.alert else 'as planned'} "
           f"(p={s.p_value:.3g}).",
    ))  # fmt: skip
    return out


def expected_effect(found: RehearsalReport) -> RehearsedEffect:
    """The rehearsal's estimate the plan takes as its expected effect: the relative conversion lift of the first
    treated arm against the control (a clear 400 when the rehearsal cannot give one)."""
    for e in found.effects:
        if e.metric == "conversion":
            if e.relative is None or e.relative <= -1:
                raise ValidationError(
                    f"the rehearsal gives no relative lift of arm {e.arm!r}: its control arm {found.control!r} "
                    "converted nobody, or the arms are empty; rehearse more people (users) or days",
                    field="rehearse",
                )
            return e
    raise ValidationError("the rehearsed journey has no treated arm beside its control", field="rehearse")


def source_sentence(e: RehearsedEffect, found: RehearsalReport) -> RehearsalSentence:
    """Where a plan's expected effect came from: this rehearsal's arm, on a simulated business."""
    rel = e.relative or 0.0
    return RehearsalSentence(
        zh=f"预期效果来自预演：在模拟业务（{found.users:,} 人、{found.days} 天、种子 {found.seed}）上，"
           f"{e.arm} 组相对 {found.control} 组的转化率提升估计为 {rel:.1%}（模拟器真实效果 "
           f"{e.true_effect * 100:.2f} 个百分点）。",
        en=f"The expected effect comes from a rehearsal on a simulated business ({found.users:,} people, "
           f"{found.days} days, seed {found.seed}): {e.arm} against {found.control} lifts conversion by an "
           f"estimated {rel:.1%} relative (the simulator's true effect: {e.true_effect * 100:.2f} points).",
    )  # fmt: skip


__all__ = ["expected_effect", "report", "run", "sim_config", "simulated", "source_sentence"]
