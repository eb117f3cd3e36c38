"""Uplift models graded against the simulator's per-person truth (issue 15 item 7): learnt from its randomized
coupon drops, the top 20% by predicted uplift hold at least 1.5 times the true uplift of a random 20%; the Qini
curve is recounted by brute force."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.experiment.causal_sim import load_latent, person_of
from userloop.core.errors import NotFoundError, UserloopError, ValidationError
from userloop.experiment.causal_types import Treatment
from userloop.experiment.uplift import UpliftFit, UpliftSpec, fit_uplift, qini, top_uplift
from userloop.sim import SimConfig
from userloop.store import Workspace

#: 120 days of a business whose coupons go to a random 30% of the registered audience every Monday and before
#: holidays (sim/timeline.py, ``_coupons``): 18 randomized drops. 10,000 people keep the test lean; the top fifth
#: then holds 1.66x (T) and 1.70x (X) the true uplift of everyone scored.
CONFIG = SimConfig(users=10_000, days=120, end_date=date(2024, 4, 20), seed=7)
SPEC = UpliftSpec(features=("age_band", "channel", "$os", "push_enabled"), value_property=None)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, UpliftFit], np.ndarray, np.ndarray]:
    path, truth = load_latent(CONFIG, tmp_path_factory.mktemp("uplift") / "ws")
    fits = {}
    with Workspace.open(path, read_only=True) as ws:
        for learner in ("t", "x"):
            spec = SPEC.model_copy(update={"learner": learner})
            fits[learner] = fit_uplift(ws.project("default"), spec, CONFIG.timezone, CONFIG.start_date,
                                       CONFIG.end_date)  # fmt: skip
    person = person_of(path, fits["x"].user_id, truth)
    return fits, _column(truth, "coupon_uplift")[person], _column(truth, "still_buying")[person]


def _column(truth: pa.Table, name: str) -> np.ndarray:
    return np.asarray(truth.column(name).to_numpy(zero_copy_only=False))


@pytest.mark.parametrize("learner", ["t", "x"])
def test_the_top_fifth_holds_half_as_much_again_of_the_true_uplift(
    fitted: tuple[dict[str, UpliftFit], np.ndarray, np.ndarray], learner: str
) -> None:
    fits, coupon_uplift, still_buying = fitted
    fit = fits[learner]
    assert np.array_equal(fit.user_id, fits["x"].user_id)
    top = np.isin(fit.user_id, top_uplift(fit, 0.2))
    assert top.sum() == round(0.2 * len(top))
    # A coupon now adds coupon_uplift to the daily purchase chance of someone still buying, nothing to a
    # customer who has dropped out (sim/timeline.py ``_purchases``): that is the true effect of targeting.
    now = coupon_uplift * still_buying
    assert now[top].mean() >= 1.5 * now.mean()
    # The latent trait alone (dropped-out people included) is concentrated too, though less.
    assert coupon_uplift[top].mean() >= 1.15 * coupon_uplift.mean()
    assert fit.curves.coefficient > 0 and fit.drops == 18 and 0.25 < fit.treated_share < 0.3


def test_the_qini_curve_is_the_brute_force_count() -> None:
    rng = np.random.default_rng(5)
    n = 500
    score, treated = rng.normal(size=n).round(1), rng.random(n) < 0.4
    y = rng.poisson(1.0 + 0.5 * treated * (score > 0)).astype(np.float64)
    curves = qini(score, treated, y, points=50)
    order = sorted(range(n), key=lambda i: (-score[i], i))
    for fraction, q, up in zip(curves.fraction, curves.qini, curves.uplift, strict=True):
        top = order[: round(fraction * n)]
        yt = sum(y[i] for i in top if treated[i])
        yc = sum(y[i] for i in top if not treated[i])
        nt = sum(1 for i in top if treated[i])
        nc = len(top) - nt
        assert q == pytest.approx(yt - yc * nt / nc if nc else 0.0)
        assert up == pytest.approx((yt / nt - yc / nc) * len(top) if nt and nc else 0.0)
    assert curves.coefficient > 0  # the score is the true uplift's sign: better than random
    assert qini(-score, treated, y, points=50).coefficient < 0


def test_a_share_outside_zero_to_one_is_refused(fitted: tuple[dict[str, UpliftFit], np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValidationError) as caught:
        top_uplift(fitted[0]["x"], 1.5)
    assert caught.value.field == "share"
    assert top_uplift(fitted[0]["x"], 0.01) == top_uplift(fitted[0]["x"], 0.01)


def test_learning_needs_randomized_drops(tmp_path: Path) -> None:
    path, _ = load_latent(SimConfig(users=300, days=20, end_date=date(2024, 4, 20)), tmp_path / "w")
    with Workspace.open(path, read_only=True) as ws:
        store, window = ws.project("default"), (date(2024, 4, 1), date(2024, 4, 20))
        with pytest.raises(UserloopError, match="no day") as few:
            fit_uplift(store, SPEC.model_copy(update={"min_treated": 10**6}), CONFIG.timezone, *window)
        assert few.value.code == "model_no_data"
        with pytest.raises(NotFoundError, match="no event 'sms_sent'") as unknown:
            fit_uplift(store, SPEC.model_copy(update={"treatment": Treatment(event="sms_sent")}), CONFIG.timezone,
                       *window)  # fmt: skip
        assert unknown.value.field == "treatment.event"
