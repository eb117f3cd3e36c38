"""The calibration/holdout validation that chooses the CLV purchase model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from tests.conftest import examples
from userloop.models.clv import CLVFitError
from userloop.models.clv.validation import (
    ERROR_TOLERANCE,
    Validation,
    choose_model,
    decile_table,
    rank_auc,
    validate_candidates,
)


@settings(max_examples=examples(30), deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=60))
def test_rank_auc_is_the_roc_auc(pairs) -> None:
    y = np.array([int(a) for a, _ in pairs])
    score = np.array([float(b) for _, b in pairs])
    if 0 < y.sum() < y.size:
        assert rank_auc(y, score) == pytest.approx(roc_auc_score(y, score))
    else:
        assert rank_auc(y, score) is None


def test_decile_table_adds_up() -> None:
    rng = np.random.default_rng(1)
    pred = rng.gamma(0.5, 2.0, 1003)
    actual = rng.poisson(pred).astype(float)
    table = decile_table(pred, actual)
    assert len(table) == 10 and sum(r["customers"] for r in table) == 1003
    assert sum(r["actual_mean"] * r["customers"] for r in table) == pytest.approx(actual.sum())
    means = [r["predicted_mean"] for r in table]
    assert means == sorted(means)


def _candidate(error: float, auc: float | None) -> dict:
    return {"decile_error": error, "p_alive_auc_bought_again": auc}


def test_choice_rule() -> None:
    close = ERROR_TOLERANCE / 2
    v = Validation(0.0, 30.0, 100, 50.0, {
        "bgnbd": _candidate(0.10, 0.50),
        "mbgnbd": _candidate(0.10 + close, 0.75),
        "paretonbd": _candidate(0.10 + 3 * ERROR_TOLERANCE, 0.90),  # ranks best but forecasts clearly worse
    })  # fmt: skip
    chosen, reason = choose_model(v)
    assert chosen == "mbgnbd"
    assert "mbgnbd" in reason and "30 days" in reason
    failed = Validation(0.0, 30.0, 100, 50.0, {"bgnbd": {"error": {"code": "clv_not_identified", "message": "x"}}})
    with pytest.raises(CLVFitError) as info:
        choose_model(failed)
    assert info.value.code == "clv_no_valid_candidate"


def _mbg_log(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Purchase days of an MBG/NBD population, event by event: births over 120 days, observed to day 200."""
    rng = np.random.default_rng(seed)
    birth = rng.uniform(0, 120, n)
    lam, p = rng.gamma(0.8, 1 / 10.0, n), rng.beta(1.2, 4.0, n)
    ids, days = [np.arange(n)], [birth]
    clock, alive = birth.copy(), rng.random(n) >= p
    while alive.any():
        idx = np.flatnonzero(alive)
        clock[idx] += rng.exponential(1 / lam[idx])
        inside = idx[clock[idx] < 200.0]
        alive[idx] = False
        alive[inside] = True
        ids.append(inside)
        days.append(clock[inside].copy())
        alive[inside[rng.random(inside.size) < p[inside]]] = False
    return np.concatenate(ids), np.floor(np.concatenate(days))


def test_validation_on_an_mbg_population_picks_a_model_that_forecasts_and_ranks() -> None:
    ids, days = _mbg_log(6000, 3)
    v = validate_candidates(ids, days, end_day=199.0, holdout_days=50)
    assert v.customers > 4000 and v.actual_total > 0
    c = v.candidates
    assert abs(c["mbgnbd"]["aggregate_error"]) < 0.1
    assert c["mbgnbd"]["p_alive_auc_bought_again"] > c["bgnbd"]["p_alive_auc_bought_again"] + 0.1
    chosen, _ = choose_model(v)
    assert chosen in {"mbgnbd", "paretonbd"}
    assert c[chosen]["decile_error"] <= min(x["decile_error"] for x in c.values()) + ERROR_TOLERANCE


def test_auto_falls_back_when_the_chosen_model_cannot_be_fitted_on_all_data(cdnow_daily, monkeypatch) -> None:
    import userloop.models.clv_model as clv_model
    from userloop.models.clv_model import CLVConfig, CLVRunModel

    real = clv_model.make_model

    class Refuses:
        def fit(self, *args: object) -> None:
            raise CLVFitError("refused", code="clv_not_identified")

    monkeypatch.setattr(clv_model, "make_model", lambda name: Refuses() if name == "mbgnbd" else real(name))
    validation = {"candidates": {"mbgnbd": _candidate(0.1, 0.8), "paretonbd": _candidate(0.2, 0.7),
                                 "bgnbd": _candidate(0.15, 0.5)}}  # fmt: skip
    choice = {"model": "mbgnbd", "mode": "auto", "reason": "test"}
    model = CLVRunModel()._fit_chosen(choice, validation, cdnow_daily)
    assert choice["model"] == "bgnbd" and type(model).__name__ == "BetaGeoModel"  # next by decile error
    assert "mbgnbd: clv_not_identified" in choice["fallback"]
    named = {"model": "mbgnbd", "mode": "named", "reason": "test"}
    with pytest.raises(CLVFitError):
        CLVRunModel(CLVConfig(clv_model="mbgnbd"))._fit_chosen(named, validation, cdnow_daily)
