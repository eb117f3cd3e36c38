"""The value of membership, or of any treatment defined by an event: difference-in-differences with matched
controls (issue 15 item 6, DOMAIN §9: did a member's contribution grow *because of* membership, and not because
member counts grew or a big campaign ran at the same time?).

One call reads the project's events (:mod:`userloop.experiment.did_panel`) and estimates
(:mod:`userloop.experiment.did_estimate`): each joiner against look-alikes not yet treated on the joiner's own
join day, at the same calendar dates, with a cluster-robust interval; beside it the two naive comparisons a
dashboard would show (the joiners before vs after, members vs non-members), so an operator sees how far off they
are. Sentences in Chinese and English say what was found.

Example::

    spec = DidSpec(treatment=Treatment(event="member_join"), outcome=Outcome(event="order_paid"),
                   had_done=("register",))
    found = difference_in_differences(store, spec, timezone="Asia/Shanghai")
    found.effect.estimate  # extra orders per member-day
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field

from userloop.core.errors import UserloopError
from userloop.experiment.causal_types import Name, Outcome, Strict, Treatment
from userloop.experiment.did_estimate import Censor, Design, DidEstimate, estimate
from userloop.experiment.did_panel import PanelReader, data_window
from userloop.experiment.stats import Interval
from userloop.store.duck import ProjectStore

__all__ = ["DidSpec", "difference_in_differences", "explain"]


class DidSpec(Strict):
    """What to estimate: a ``treatment`` event's effect on an ``outcome`` per person-day, over the local days
    ``start``–``end`` (default: the first and last day with events), matching on ``pre_days`` of history and on
    each ``had_done`` event having happened before the join day (e.g. ``register``: only registered people can
    join) and each ``did_lately`` event having happened in the ``pre_days`` before it (``push_received``: the app
    was still installed)."""

    treatment: Treatment = Treatment()
    outcome: Outcome = Outcome()
    start: date | None = None
    end: date | None = None
    pre_days: Annotated[int, Field(ge=7, le=180)] = 28
    had_done: tuple[Name, ...] = Field(default=(), max_length=4)
    did_lately: tuple[Name, ...] = Field(default=(), max_length=4)
    censor: Censor = "weighted"
    alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05
    max_controls: Annotated[int, Field(ge=100, le=5_000_000)] = 200_000


def difference_in_differences(store: ProjectStore, spec: DidSpec, timezone: str) -> DidEstimate:
    """The matched DiD estimate of ``spec`` on the project's events, with the naive comparisons beside it."""
    start, end = data_window(store, timezone, spec.start, spec.end)
    panel = PanelReader(store, timezone, start, end).read(spec.treatment, spec.outcome, spec.had_done, spec.did_lately)
    design = Design(pre_days=spec.pre_days, censor=spec.censor, max_controls=spec.max_controls, alpha=spec.alpha)
    found = estimate(panel, design, summed=spec.outcome.property is not None)
    if found.matched == 0:
        raise UserloopError(
            f"no person did {spec.treatment.event!r} with history before and days after it inside "
            f"{start}..{end}, or none had a look-alike; nothing to compare",
            code="model_no_data",
            field="treatment",
        )
    return found


def _pair(i: Interval, digits: int = 4) -> str:
    return f"{i.estimate:.{digits}f} ({i.low:.{digits}f} – {i.high:.{digits}f})"


def explain(found: DidEstimate, spec: DidSpec) -> list[dict[str, str]]:
    """What was found, in Chinese and English: the effect with its interval, then the naive comparisons."""
    level = round(100 * (1 - spec.alpha))
    what_en = spec.outcome.property or f"{spec.outcome.event} events"
    what_zh = spec.outcome.property or f"{spec.outcome.event} 次数"
    rel = found.relative
    return [
        {
            "zh": f"{spec.treatment.event} 之后每人每天 {what_zh} 因此多 {_pair(found.effect)}（{level}% 置信区间），"
            f"相对反事实 {rel.estimate:+.1%}（{rel.low:+.1%} – {rel.high:+.1%}）；"
            f"{found.matched} 人与同日尚未加入的相似用户比较。",
            "en": f"After {spec.treatment.event}, {what_en} per person-day rose by {_pair(found.effect)} "
            f"({level}% CI), {rel.estimate:+.1%} ({rel.low:+.1%} to {rel.high:+.1%}) over the counterfactual; "
            f"{found.matched} people compared with look-alikes not yet treated on the same day.",
        },
        {
            "zh": f"简单前后对比给出 {_pair(found.before_after)}：加入前正处高点，之后回落，不可信。",
            "en": f"The naive before/after comparison gives {_pair(found.before_after)}: people join at a high "
            "point of their own history and regress after it, so it misleads.",
        },
        {
            "zh": f"会员与非会员直接对比给出 {_pair(found.members_vs_others)}：加入的本来就是更好的顾客，高估。",
            "en": f"Members vs non-members gives {_pair(found.members_vs_others)}: joiners were better customers "
            "already, so it overstates.",
        },
    ]
