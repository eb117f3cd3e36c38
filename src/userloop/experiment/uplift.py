"""Who is persuadable: uplift models learnt from a randomized treatment, their Qini and uplift curves, and the
top-uplift people a journey or a segment targets (issue 15 item 7).

Training data: a treatment given at random (a coupon drop that reaches a random share of its audience: the
simulator's are, ``sim/timeline.py``). Every day on which at least ``min_treated`` people got the treatment event
is a *drop*; its rows are the people eligible that day (seen before it, and having done each ``eligible`` event
before it), treated if they got the treatment that day, with their features as of the day before and the outcome
over the ``horizon_days`` days after it. Rows of every drop are stacked.

Two meta-learners (Künzel, Sekhon, Bickel & Yu, "Metalearners for estimating heterogeneous treatment effects
using machine learning", PNAS 2019), on gradient-boosted trees (scikit-learn's histogram GBM):

- **T-learner**: one outcome model per arm, ``τ(x) = μ₁(x) − μ₀(x)``.
- **X-learner**: imputed effects ``D₁ = Y₁ − μ₀(X₁)`` and ``D₀ = μ₁(X₀) − Y₀``, a model of each, mixed by the
  propensity: ``τ(x) = e(x) τ₀(x) + (1 − e(x)) τ₁(x)`` (``e`` is the treated share: the assignment is random).

The model learns from 70% of the people (a fixed split by a hash of their id); the other 30% grade it: the Qini
curve (Radcliffe, "Using control groups to target on predicted lift", 2007): ``Q(φ) = Y_T(φ) − Y_C(φ) ·
N_T(φ)/N_C(φ)`` over the top fraction φ by predicted uplift, its coefficient (area above the random line), and
the uplift curve ``(Ȳ_T(φ) − Ȳ_C(φ)) · N(φ)``. :func:`top_uplift` gives the top k% person ids to target.

Example::

    fit = fit_uplift(store, UpliftSpec(learner="x"), "Asia/Shanghai", date(2024, 1, 1), date(2024, 4, 30))
    targets = top_uplift(fit, 0.2)  # the person ids a journey's coupon should go to
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from userloop.core.errors import UserloopError, ValidationError
from userloop.experiment.causal_types import Learner, Name, Outcome, Strict, Treatment
from userloop.experiment.did_panel import Panel, PanelReader, data_window, dense, treatment_cond
from userloop.store.duck import ProjectStore
from userloop.store.sqlbuild import col, sql

__all__ = ["Curves", "UpliftFit", "UpliftSpec", "data_window", "fit_uplift", "learn", "qini", "top_uplift"]

F = npt.NDArray[np.float64]
#: Event features, as of a day: orders in the last 28 days and in the 56 before, spend in the last 84, days
#: since the last order, active days in the last 28, tenure, treatments received in the last 28.
EVENT_FEATURES = ("orders_28", "orders_84", "spend_84", "recency", "active_28", "tenure", "treated_28")
HOLDOUT = 0.3


class UpliftSpec(Strict):
    """A randomized ``treatment`` (its drops), the ``outcome`` over ``horizon_days`` after each, who was eligible,
    the profile properties to learn from, and the learner."""

    treatment: Treatment = Treatment(event="coupon_received")
    outcome: Outcome = Outcome(event="order_paid")
    value_property: Name | None = Field(default="order_amount", description="Spend features (if the event has it).")
    horizon_days: Annotated[int, Field(ge=1, le=60)] = 7
    eligible: tuple[Name, ...] = Field(default=("register",), max_length=4)
    features: tuple[Name, ...] = Field(default=("age_band", "channel", "$os", "gender", "push_enabled"), max_length=30)
    learner: Learner = "x"
    min_treated: Annotated[int, Field(ge=1)] = 50
    start: date | None = None
    end: date | None = None
    seed: int = Field(default=0, ge=0, lt=2**31)


@dataclass(frozen=True)
class Curves:
    """Qini and uplift curves at the top ``fraction`` of people by predicted uplift; ``coefficient``: the area
    between the Qini curve and the random line, per person (positive: better than random)."""

    fraction: F
    qini: F
    uplift: F
    coefficient: float


@dataclass(frozen=True)
class UpliftFit:
    """The fitted model's scores for every eligible person as of the window's end (``user_id``, ``score``: the
    predicted outcome gain from the treatment), its held-out curves and what it was learnt from."""

    learner: Learner
    features: tuple[str, ...]
    user_id: npt.NDArray[np.int64]
    score: F
    curves: Curves
    drops: int
    rows: int
    treated_share: float


def top_uplift(fit: UpliftFit, share: float) -> list[int]:
    """The person ids of the top ``share`` (0–1) by predicted uplift, best first: whom a journey should treat."""
    if not 0 < share <= 1:
        raise ValidationError(f"share must lie in (0, 1], not {share}", field="share", code="invalid_value")
    k = round(share * len(fit.score))
    order = np.lexsort((fit.user_id, -fit.score))[:k]
    return [int(u) for u in fit.user_id[order]]


def fit_uplift(store: ProjectStore, spec: UpliftSpec, timezone: str, start: date, end: date) -> UpliftFit:
    """Learn ``spec``'s uplift from the project's randomized drops in ``[start, end]`` and score everyone."""
    data = CampaignData.read(store, spec, timezone, start, end)
    x, treated, y, person = data.rows()
    if not len(y) or treated.all() or not treated.any():
        raise UserloopError(
            f"no day in {start}..{end} had at least {spec.min_treated} people given {spec.treatment.event!r} and "
            "eligible people left without it; nothing to learn from",
            code="model_no_data",
            field="treatment",
        )
    test = _held_out(data.panel.user_id[person], spec.seed)
    if min(int(test.sum()), int((~test).sum())) < 2:
        raise UserloopError("too few people to learn from and to grade on held-out ones", code="model_no_data",
                            field="treatment")  # fmt: skip
    model = learn(x[~test], treated[~test], y[~test], spec.learner, spec.seed)
    curves = qini(model(x[test]), treated[test], y[test])
    scored = data.eligible_at(data.panel.days)
    return UpliftFit(
        learner=spec.learner,
        features=data.names,
        user_id=data.panel.user_id[scored],
        score=model(data.features(scored, data.panel.days)),
        curves=curves,
        drops=len(data.drops),
        rows=len(y),
        treated_share=float(treated.mean()),
    )


@dataclass(frozen=True)
class CampaignData:
    """The panel of a randomized treatment: orders, spend, activity, treatments per person-day and profiles."""

    panel: Panel
    spec: UpliftSpec
    treatments: F
    profile: F
    profile_names: tuple[str, ...]
    drops: npt.NDArray[np.int64]

    @classmethod
    def read(cls, store: ProjectStore, spec: UpliftSpec, timezone: str, start: date, end: date) -> CampaignData:
        value = spec.outcome.property or (
            spec.value_property if store.properties("events").get(spec.value_property or "") else None
        )
        reader = PanelReader(store, timezone, start, end)
        panel = reader.read(Treatment(event=spec.treatment.event), Outcome(event=spec.outcome.event, property=value),
                            spec.eligible)  # fmt: skip
        rows = reader.daily(treatment_cond(spec.treatment), [sql("count(*) AS v")])
        treatments = np.minimum(dense(panel.user_id, panel.days, rows, "v"), 1.0)
        profile, names = _profile(store, panel.user_id, spec.features)
        per_day = treatments.sum(axis=0)
        drops = np.flatnonzero(per_day >= spec.min_treated)
        drops = drops[drops + spec.horizon_days < panel.days]
        return cls(panel, spec, treatments, profile, names, drops.astype(np.int64))

    @property
    def names(self) -> tuple[str, ...]:
        return EVENT_FEATURES + self.profile_names

    def eligible_at(self, d: int) -> npt.NDArray[np.int64]:
        """People seen before day ``d`` who had done every eligibility event before it."""
        ok = self.panel.first_day < d
        for first in self.panel.flags:
            ok &= first < d
        return np.flatnonzero(ok)

    def features(self, rows: npt.NDArray[np.int64], d: int) -> F:
        """The feature matrix of ``rows`` as of the start of day ``d`` (only days before it are read)."""
        p = self.panel
        lo = lambda k: max(d - k, 0)  # noqa: E731 - a window's first day
        orders = p.counts[rows]
        seen = orders[:, :d] > 0
        last = np.where(seen.any(axis=1), d - 1 - np.argmax(seen[:, ::-1], axis=1), -1)
        recency = np.where(last >= 0, d - last, np.minimum(d - p.first_day[rows], 400) + 30)
        events = [
            orders[:, lo(28) : d].sum(axis=1),
            orders[:, lo(84) : lo(28)].sum(axis=1),
            p.outcome[rows, lo(84) : d].sum(axis=1) if self.spend_read else orders[:, lo(84) : d].sum(axis=1),
            recency,
            p.active[rows, lo(28) : d].sum(axis=1),
            np.minimum(d - p.first_day[rows], 400),
            self.treatments[rows, lo(28) : d].sum(axis=1),
        ]
        return np.column_stack([*(np.asarray(e, dtype=np.float64) for e in events), self.profile[rows]])

    @property
    def spend_read(self) -> bool:
        return not np.array_equal(self.panel.outcome, self.panel.counts)

    def label(self, rows: npt.NDArray[np.int64], d: int) -> F:
        """The outcome over the ``horizon_days`` days after drop day ``d``."""
        source = self.panel.outcome if self.spec.outcome.property else self.panel.counts
        return source[rows, d + 1 : d + 1 + self.spec.horizon_days].sum(axis=1)

    def rows(self) -> tuple[F, npt.NDArray[np.bool_], F, npt.NDArray[np.int64]]:
        """Stacked over drops: features, treated, outcome and the person's row in the panel."""
        parts: list[tuple[F, npt.NDArray[np.bool_], F, npt.NDArray[np.int64]]] = []
        for d in self.drops.tolist():
            rows = self.eligible_at(d)
            parts.append((self.features(rows, d), self.treatments[rows, d] > 0, self.label(rows, d), rows))
        if not parts:
            width = len(self.names)
            return np.zeros((0, width)), np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0, dtype=np.int64)
        return (np.concatenate([q[0] for q in parts]), np.concatenate([q[1] for q in parts]),
                np.concatenate([q[2] for q in parts]), np.concatenate([q[3] for q in parts]))  # fmt: skip


def _profile(store: ProjectStore, user_id: npt.NDArray[np.int64], names: tuple[str, ...]) -> tuple[F, tuple[str, ...]]:
    """Profile properties as numbers: a number or a flag as it is (missing: -1), text one-hot per value."""
    known = store.properties("users")
    missing = [n for n in names if n not in known]
    if missing:
        raise ValidationError(f"the profiles have no property {missing[0]!r}", field="features", code="invalid_value")
    if not names:
        return np.zeros((len(user_id), 0)), ()
    with store.session() as session:
        got = session.execute(
            sql(
                "SELECT user_id, $cols FROM $users ORDER BY user_id",
                cols=[col(n) for n in names],
                users=store.ref("users"),
            )
        ).fetchall()
    at = {int(r[0]): k for k, r in enumerate(got)}
    index = np.array([at.get(int(u), -1) for u in user_id])
    columns: list[F] = []
    labels: list[str] = []
    for j, name in enumerate(names):
        values = [got[i][j + 1] if i >= 0 else None for i in index]
        if known[name].value in ("NUMBER", "BOOL"):
            columns.append(np.array([-1.0 if v is None else float(v) for v in values]))
            labels.append(name)
            continue
        for level in sorted({str(v) for v in values if v is not None})[:30]:
            columns.append(np.array([1.0 if v is not None and str(v) == level else 0.0 for v in values]))
            labels.append(f"{name}={level}")
    return np.column_stack(columns) if columns else np.zeros((len(user_id), 0)), tuple(labels)


def _held_out(user_id: npt.NDArray[np.int64], seed: int) -> npt.NDArray[np.bool_]:
    """A fixed ``HOLDOUT`` share of people, by a hash of (id, seed): the same on every run, all rows of a person
    on one side."""
    mixed = (user_id.astype(np.uint64) + np.uint64(seed)) * np.uint64(0x9E3779B97F4A7C15)
    mixed ^= mixed >> np.uint64(29)
    return (mixed % np.uint64(1000)).astype(np.int64) < int(HOLDOUT * 1000)


def _regressor(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=300, max_bins=64, l2_regularization=1.0,
        random_state=seed,
    )  # fmt: skip


def learn(x: F, treated: npt.NDArray[np.bool_], y: F, learner: Learner, seed: int = 0) -> Callable[[F], F]:
    """Fit the T- or X-learner; return a function from a feature matrix to predicted uplift.

    The trees are fitted and read on one thread (threadpoolctl, scikit-learn's own dependency): on a server
    that shares its cores with queries, OpenMP's spinning threads cost more than they save."""
    if min(int(treated.sum()), int((~treated).sum())) < 20:
        raise UserloopError("each arm needs at least 20 rows to learn an uplift", code="model_no_data",
                            field="treatment")  # fmt: skip
    with _one_thread():
        mu1 = _regressor(seed).fit(x[treated], y[treated])
        mu0 = _regressor(seed).fit(x[~treated], y[~treated])
        if learner == "t":
            return _Predict(lambda z: mu1.predict(z) - mu0.predict(z))
        tau1 = _regressor(seed).fit(x[treated], y[treated] - mu0.predict(x[treated]))
        tau0 = _regressor(seed).fit(x[~treated], mu1.predict(x[~treated]) - y[~treated])
    e = float(treated.mean())
    return _Predict(lambda z: e * tau0.predict(z) + (1 - e) * tau1.predict(z))


def _one_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


@dataclass(frozen=True)
class _Predict:
    """A fitted learner's predictions, read on one thread."""

    fn: Callable[[F], F]

    def __call__(self, z: F) -> F:
        with _one_thread():
            return np.asarray(self.fn(z), dtype=np.float64)


def qini(score: F, treated: npt.NDArray[np.bool_], y: F, points: int = 100) -> Curves:
    """Qini and uplift curves of ``score`` on randomized rows (Radcliffe 2007), at ``points`` fractions."""
    order = np.lexsort((np.arange(len(score)), -score))
    t, yy = treated[order].astype(np.float64), y[order]
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(yy * t), np.cumsum(yy * (1 - t))
    cut = np.unique(np.ceil(np.linspace(1, len(score), points)).astype(np.int64)) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c[cut] > 0, y_t[cut] - y_c[cut] * n_t[cut] / n_c[cut], 0.0)
        up = np.where((n_t[cut] > 0) & (n_c[cut] > 0), (y_t[cut] / n_t[cut] - y_c[cut] / n_c[cut]) * (cut + 1), 0.0)
    fraction = (cut + 1) / len(score)
    area = float(np.trapezoid(np.r_[0.0, q], np.r_[0.0, fraction]))
    coefficient = (area - 0.5 * float(q[-1])) / len(score)
    return Curves(fraction=fraction, qini=q, uplift=up, coefficient=coefficient)
