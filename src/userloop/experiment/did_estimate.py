"""Difference-in-differences with matched controls under staggered adoption, on a person × day :class:`Panel`.

Each treated person (a *joiner*) is compared with look-alikes who had not been treated by the joiner's own
treatment day ``d``, at the same calendar dates (so a concurrent sales week or the growth of member counts hits
both sides alike): risk-set matching (Li, Propert & Rosenbaum, "Balanced risk set matching", JASA 2001) by
coarsened exact matching (Iacus, King & Porro, "Causal inference without balance checking", Political Analysis
2012) on what the records show just before ``d``: the outcome event's count in the last ``pre_days`` days
(exactly, up to a cap), in the ``pre_days`` before those (coarsened), active days in the last ``pre_days``
(coarsened), tenure (coarsened), each "had done X before d" flag and, for a summed outcome, the recent sum on a
log₂ scale. The effect acts from the local day after ``d``; the join day itself is in neither period.

A control who is treated later stops being a control from that day on (censoring: the effect would leak into
the comparison, biasing it towards 0). Because who joins depends on recent behaviour, the controls who stay are
then not a random part of the cell, so each control-day is weighted by the inverse of the chance of having stayed
untreated so far (inverse probability of censoring weighting, Robins & Finkelstein, Biometrics 2000), from a
hazard of treatment estimated on the panel by recent count and flags.

The estimate, per person-day of the joiners after their join days (the average effect on the treated):

    θ = Σ_i Σ_k [(Y_ik − C_c(i),k) − (Ȳ_i,pre − C̄_c(i),pre)] / Σ_i n_i

with C the (weighted) control mean of the joiner's cohort cell on the day. Its standard error is cluster-robust
in two ways at once (Cameron, Gelbach & Miller, "Robust inference with multiway clustering", JBES 2011):

* by person (Liang & Zeger 1986): every person's total influence on θ, as a joiner and as a control in any
  number of cohorts, is one cluster. Controls are reused across many joiners and cohorts (matching with
  replacement); summing each control's influence over all of them is what Abadie & Imbens (Econometrica 2006)
  count with K(i), the times a unit is used as a match;
* by calendar day: every joiner of every cohort is compared with the *same* day's control means, and a day's
  shock that hits members and non-members unequally (a member day, a members-only coupon drop) moves all those
  differences together; clustering by person alone would treat them as independent.

V = V_person + V_day − V_person∩day, each with its G/(G−1) correction; the influence of each person-day is the
outcome of that day entering θ (a pre-period mean spreads over the pre days). The censoring weights are taken as
known: a bootstrap that resamples people and re-estimates the hazard and the cells (valid here, where it is not
for nearest-neighbour matching with a fixed number of matches: cell matching with all the cell's controls is a
stratification estimator, smooth in the data) gave no larger spread on the simulator. ``se_person`` keeps the
one-way figure for comparison. Beside it: the naive before/after comparison of the joiners, and the naive member
vs non-member comparison (Welch on per-person ratios, :mod:`userloop.experiment.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from userloop.experiment.causal_types import Censor
from userloop.experiment.did_panel import NEVER, Panel
from userloop.experiment.stats import Interval, Ratio, lift, t_test
from userloop.experiment.stats.frequentist import z_interval
from userloop.stats import Moments

F = npt.NDArray[np.float64]
I = npt.NDArray[np.int64]  # noqa: E741 - the int array alias reads as a type


@dataclass(frozen=True)
class Design:
    """How to match and censor: ``pre_days`` (the matching and pre-period window), ``recent_cap`` (recent counts
    above it share a cell), ``censor`` (``weighted``: IPCW; ``cut``: drop later-treated controls from their
    treatment on, unweighted; ``keep``: never censor, an intention-to-treat comparison biased towards 0),
    ``min_controls`` (a joiner whose cell has fewer is left unmatched: one control's residual says nothing of its
    noise), ``max_controls`` (candidates per cohort, a deterministic hash sample above it) and ``alpha``."""

    pre_days: int = 28
    recent_cap: int = 12
    min_controls: int = 2
    censor: Censor = "weighted"
    max_controls: int = 200_000
    alpha: float = 0.05


@dataclass(frozen=True)
class Balance:
    """Day-weighted pre-period outcome per day: the matched joiners' and their matched controls'."""

    treated: float
    controls: float


@dataclass(frozen=True)
class DidEstimate:
    """The DiD effect per person-day (``effect``, two-way clustered; ``se_person``: its one-way standard error by
    person alone) and relative to the counterfactual (``relative``), the naive
    ``before_after`` and ``members_vs_others`` differences, the joiners' post-period mean per day
    (``treated_mean``) and its counterfactual, and how many people and days went in."""

    effect: Interval
    se_person: float
    relative: Interval
    before_after: Interval
    members_vs_others: Interval
    treated_mean: float
    counterfactual_mean: float
    balance: Balance
    joiners: int
    matched: int
    unmatched: int
    cohorts: int
    controls: int
    treated_days: int
    matched_ids: npt.NDArray[np.int64]


@dataclass
class _Sums:
    """Per person and day: contribution to the effect's numerator (``e``), post days (``n``) and the post-period
    outcome (``t``); per person: contribution to the naive numerator (``naive``)."""

    e: F
    naive: F
    n: F
    t: F
    pre_t: float = 0.0
    pre_c: float = 0.0
    matched: int = 0
    unmatched: int = 0
    cohorts: int = 0

    @classmethod
    def zeros(cls, size: int, days: int) -> _Sums:
        return cls(np.zeros((size, days)), np.zeros(size), np.zeros((size, days)), np.zeros((size, days)))


class Matcher:
    """The matching facts of a panel as of every day, and the hazard of treatment for the censoring weights."""

    def __init__(self, panel: Panel, design: Design) -> None:
        self.panel, self.design = panel, design
        pre = design.pre_days
        self.recent = _window(panel.counts, pre, 0)
        self.earlier = _window(panel.counts, 2 * pre, pre)
        self.active = _window(panel.active, pre, 0)
        self.spend = _window(panel.outcome, pre, 0)
        days = np.arange(panel.days)
        self.flag_bits = np.zeros((len(panel.user_id), panel.days), dtype=np.int64)
        for k, first in enumerate(panel.flags):
            self.flag_bits |= (first[:, None] < days[None, :]).astype(np.int64) << k
        for k, had in enumerate(panel.recent, start=len(panel.flags)):
            self.flag_bits |= (_window(had, pre, 0) > 0).astype(np.int64) << k
        self.bits = len(panel.flags) + len(panel.recent)
        # The hazard of treatment by recent count, activity and flags: people who could not be treated (gone,
        # unregistered) are mostly inactive, and pooling them with the rest would understate everyone's hazard.
        capped = np.minimum(self.recent, design.recent_cap).astype(np.int64)
        active = np.searchsorted([1, 4, 11], self.active, side="right").astype(np.int64)
        self.hazard_key = (capped * 4 + active) * (1 << self.bits) + self.flag_bits
        self.hazard = self._hazard()

    def key(self, rows: I, d: int, summed: bool) -> I:
        """The cell of each of ``rows`` on day ``d``."""
        pre = self.design.pre_days
        r = np.minimum(self.recent[rows, d], self.design.recent_cap).astype(np.int64)
        e = np.searchsorted([1, 2, 4], self.earlier[rows, d], side="right")
        a = np.searchsorted([1, 4, 11], self.active[rows, d], side="right")
        tenure = np.searchsorted([pre, 2 * pre], d - self.panel.first_day[rows], side="right")
        key = (((r * 4 + e) * 4 + a) * 3 + tenure) * (1 << self.bits) + self.flag_bits[rows, d]
        if summed:
            s = self.spend[rows, d]
            key = key * 16 + np.where(s > 0, 1 + np.clip(np.floor(np.log2(np.maximum(s, 1.0))), 0, 14), 0).astype(
                np.int64
            )
        return key

    def _hazard(self) -> F:
        """Per hazard key: treatments over person-days at risk (seen before, untreated) from the first treatment."""
        panel = self.panel
        first = panel.treated[(panel.treated >= 0) & (panel.treated < NEVER)]
        days = np.arange(panel.days)
        at_risk = (panel.first_day[:, None] < days[None, :]) & (panel.treated[:, None] >= days[None, :])
        at_risk &= days[None, :] >= (first.min() if len(first) else panel.days)
        events = at_risk & (panel.treated[:, None] == days[None, :])
        size = int(self.hazard_key.max()) + 1 if self.hazard_key.size else 1
        risk = np.bincount(self.hazard_key[at_risk], minlength=size)
        joined = np.bincount(self.hazard_key[events], minlength=size)
        return np.where(risk > 0, joined / np.maximum(risk, 1), 0.0)

    def weights(self, rows: I, d: int) -> F:
        """Each control's weight on each day after ``d``: 0 once treated, else 1 (``cut``) or the inverse of the
        chance of having stayed untreated since ``d`` (``weighted``)."""
        days = np.arange(d + 1, self.panel.days)
        untreated = (self.panel.treated[rows][:, None] >= days[None, :]).astype(np.float64)
        if self.design.censor == "keep":
            return np.ones_like(untreated)
        if self.design.censor == "cut":
            return untreated
        step = -np.log1p(-np.minimum(self.hazard[self.hazard_key[rows, d + 1 :]], 0.999))
        log_w = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(step, axis=1)[:, :-1]], axis=1)
        return untreated * np.exp(log_w)


def _window(x: F, far: int, near: int) -> F:
    """Per person and day t, the sum of ``x`` over days ``[t − far, t − near)`` (clipped at the panel's start)."""
    cum = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    t = np.arange(x.shape[1])
    return cum[:, np.maximum(t - near, 0)] - cum[:, np.maximum(t - far, 0)]


def estimate(panel: Panel, design: Design = Design(), summed: bool = False) -> DidEstimate:
    """The matched DiD of the panel's treatment on its outcome, beside the two naive comparisons."""
    matcher = Matcher(panel, design)
    sums = _Sums.zeros(len(panel.user_id), panel.days)
    cohorts = np.unique(panel.treated[(panel.treated >= 1) & (panel.treated < panel.days - 1)])
    control_people = np.zeros(len(panel.user_id), dtype=bool)
    for d in cohorts.tolist():
        used = _cohort(matcher, sums, int(d), summed)
        control_people[used] = True
    joiners = int(((panel.treated >= 0) & (panel.treated < NEVER)).sum())
    theta, theta_se = _ratio(sums.e, sums.n)
    n_person = sums.n.sum(axis=1)
    tau = float(sums.t.sum() / n_person.sum()) if n_person.sum() else math.nan
    return DidEstimate(
        effect=_interval(theta, theta_se, design.alpha, "absolute"),
        se_person=_ratio(sums.e.sum(axis=1), n_person)[1],
        relative=_relative(sums, theta, tau, design.alpha),
        before_after=_interval(*_ratio(sums.naive, n_person), design.alpha, "absolute"),
        members_vs_others=_members_vs_others(panel, design.alpha),
        treated_mean=tau,
        counterfactual_mean=tau - theta,
        balance=Balance(sums.pre_t / max(n_person.sum(), 1.0), sums.pre_c / max(n_person.sum(), 1.0)),
        joiners=joiners,
        matched=sums.matched,
        unmatched=sums.unmatched,
        cohorts=sums.cohorts,
        controls=int(control_people.sum()),
        treated_days=int(n_person.sum()),
        matched_ids=panel.user_id[n_person > 0],
    )


def _cohort(m: Matcher, sums: _Sums, d: int, summed: bool) -> I:
    """Add the joiners of day ``d`` and their controls' influence to ``sums``; return the controls used."""
    panel, y = m.panel, m.panel.outcome
    joiners = np.flatnonzero((panel.treated == d) & (panel.first_day < d))
    candidates = np.flatnonzero((panel.treated > d) & (panel.first_day < d))
    candidates = _sample(candidates, panel.user_id, d, m.design.max_controls)
    cells, j_cell = np.unique(m.key(joiners, d, summed), return_inverse=True)
    c_key = m.key(candidates, d, summed)
    pos = np.minimum(np.searchsorted(cells, c_key), max(len(cells) - 1, 0))
    inside = (cells[pos] == c_key) if len(cells) else np.zeros(len(c_key), dtype=bool)
    ctrl, c_cell = candidates[inside], pos[inside]
    per_cell = np.bincount(c_cell, minlength=len(cells)).astype(np.float64)
    ok = per_cell[j_cell] >= max(m.design.min_controls, 1)
    sums.unmatched += int((~ok).sum())
    joiners, j_cell = joiners[ok], j_cell[ok]
    if not len(joiners):
        return ctrl[:0]
    sums.matched += len(joiners)
    sums.cohorts += 1
    lo = max(d - m.design.pre_days, 0)
    # Post period: the weighted control mean of each cell and day, and the days some control still covers.
    w = m.weights(ctrl, d)
    yc = y[ctrl, d + 1 :]
    w_cell = np.zeros((len(cells), w.shape[1]))
    s_cell = np.zeros_like(w_cell)
    np.add.at(w_cell, c_cell, w)
    np.add.at(s_cell, c_cell, w * yc)
    valid = w_cell > 0
    c_mean = np.where(valid, s_cell / np.where(valid, w_cell, 1.0), 0.0)
    pre_c = y[ctrl, lo:d].mean(axis=1)
    pre_cell = np.bincount(c_cell, pre_c, minlength=len(cells)) / np.maximum(per_cell, 1.0)
    # The joiners' contributions.
    yj, v = y[joiners, d + 1 :], valid[j_cell]
    n_i = v.sum(axis=1).astype(np.float64)
    post_i = (yj * v).sum(axis=1)
    pre_i = y[joiners, lo:d].mean(axis=1)
    # Rows are unique within a cohort (one treatment day per person; a control once per cohort), so ``+=`` adds.
    sums.e[joiners, d + 1 :] += (yj - c_mean[j_cell]) * v
    sums.e[joiners, lo:d] -= n_i[:, None] * (y[joiners, lo:d] - pre_cell[j_cell][:, None]) / (d - lo)
    sums.naive[joiners] += post_i - n_i * pre_i
    sums.n[joiners, d + 1 :] += v
    sums.t[joiners, d + 1 :] += yj * v
    sums.pre_t += float((n_i * pre_i).sum())
    sums.pre_c += float((n_i * pre_cell[j_cell]).sum())
    # Each control's influence through its cell's means (post days, then the pre-period mean); residuals about a
    # mean of k values are sqrt(k/(k-1)) too small (the HC2-like correction), which matters in small cells.
    joiners_cell = np.bincount(j_cell, minlength=len(cells)).astype(np.float64)
    days_cell = np.bincount(j_cell, n_i, minlength=len(cells))
    share = np.where(valid, joiners_cell[:, None] / np.where(valid, w_cell, 1.0), 0.0)
    small = np.sqrt(per_cell / np.maximum(per_cell - 1.0, 1.0))[c_cell][:, None]
    sums.e[ctrl, d + 1 :] -= small * share[c_cell] * w * (yc - c_mean[c_cell])
    pre_share = (days_cell / np.maximum(per_cell, 1.0) / (d - lo))[c_cell][:, None]
    sums.e[ctrl, lo:d] += small * pre_share * (y[ctrl, lo:d] - pre_cell[c_cell][:, None])
    return ctrl


def _sample(rows: I, user_id: I, d: int, limit: int) -> I:
    """At most ``limit`` of ``rows``, chosen by a hash of (user id, day): the same on every run."""
    if len(rows) <= limit:
        return rows
    mixed = (user_id[rows].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(d * 0x85EBCA6B + 1)
    mixed ^= mixed >> np.uint64(31)
    return np.sort(rows[np.argsort(mixed, kind="stable")[:limit]])


def _ratio(e: F, n: F) -> tuple[float, float]:
    """``Σe / Σn`` and its cluster-robust standard error: one cluster per person for vectors, two-way by person
    and day for person × day matrices."""
    total = float(n.sum())
    if total <= 0:
        return math.nan, math.nan
    theta = float(e.sum()) / total
    return theta, _clustered((e - theta * n) / total)


def _clustered(psi: F) -> float:
    """The standard error of a sum of influences ``psi``: clustered by person (rows) for a vector; for a person ×
    day matrix, two-way by person and day (Cameron, Gelbach & Miller 2011), each variance ``G/(G−1)`` corrected
    over the G clusters involved, the person-day term subtracted (it is in both)."""

    def one_way(by: F) -> float:
        g = int((by != 0).sum())
        return float((by * by).sum()) * g / (g - 1) if g >= 2 else math.nan

    if psi.ndim == 1:
        variance = one_way(psi)
    else:
        by_person = one_way(psi.sum(axis=1))
        variance = by_person + one_way(psi.sum(axis=0)) - one_way(psi.ravel())
        # The difference can go negative in small samples (CGM 2011 §2.3); the one-way variance stands in then.
        variance = variance if variance > 0 else by_person
    return math.sqrt(variance) if variance >= 0 else math.nan


def _relative(s: _Sums, theta: float, tau: float, alpha: float) -> Interval:
    """``θ / (τ − θ)``: the effect over the counterfactual mean, with the delta method's cluster-robust error."""
    total = float(s.n.sum())
    base = tau - theta
    if not total or not base:
        return _interval(math.nan, math.nan, alpha, "relative")
    psi_theta = (s.e - theta * s.n) / total
    psi_tau = (s.t - tau * s.n) / total
    return _interval(theta / base, _clustered((psi_theta * tau - theta * psi_tau) / base**2), alpha, "relative")


def _interval(estimate: float, se: float, alpha: float, scale: Literal["absolute", "relative"]) -> Interval:
    """A normal interval and two-sided p-value (the cluster-robust estimate is asymptotically normal)."""
    if not (math.isfinite(estimate) and math.isfinite(se)) or se <= 0:
        return Interval(0.0, 0.0, 0.0, 1.0, 0.0, scale, "too_few")
    from scipy.stats import norm

    low, high = z_interval(estimate, se, alpha)
    return Interval(estimate, low, high, float(2 * norm.sf(abs(estimate / se))), se, scale)


def _members_vs_others(panel: Panel, alpha: float) -> Interval:
    """Members' outcome per day after joining vs never-treated people's per day over the same span (Welch on
    per-person ratios, delta method): what a dashboard shows, confounded by who joins."""
    days = panel.days
    in_panel = (panel.treated >= 0) & (panel.treated < days - 1)
    launch = int(panel.treated[in_panel].min()) if in_panel.any() else days
    never = panel.treated == NEVER
    member_from = panel.treated[in_panel] + 1
    other_from = np.maximum(panel.first_day[never] + 1, launch + 1)
    members = _ratio_arm(panel.outcome[in_panel], member_from)
    others = _ratio_arm(panel.outcome[never], other_from)
    return t_test(lift(others, members, "absolute"), alpha)


def _ratio_arm(y: F, start: I) -> Ratio:
    """Per person: outcome from day ``start`` to the end over those days (people with no such day left out)."""
    days = np.arange(y.shape[1])
    mask = days[None, :] >= np.clip(start, 0, None)[:, None]
    x, n = (y * mask).sum(axis=1), mask.sum(axis=1).astype(np.float64)
    x, n = x[n > 0], n[n > 0]
    return Ratio(Moments(len(x), float(x.sum()), float((x * x).sum())),
                 Moments(len(n), float(n.sum()), float((n * n).sum())), float((x * n).sum()))  # fmt: skip
