"""The models on simulated data, checked against the simulator's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.models.conftest import SIM_END
from userloop.models.base import read_outputs
from userloop.models.churn import ChurnConfig, ChurnModel
from userloop.models.clv_model import CLVConfig, CLVRunModel
from userloop.models.pipeline import run_models
from userloop.store import ProjectStore, Workspace

pytestmark = pytest.mark.slow

#: The configuration the acceptance (AUC >= 0.80, ECE <= 0.05) is stated for: 3,000 people, 120 days.
CHURN_TEST_CONFIG = ChurnConfig(horizon_days=21, training_snapshots=6)
TZ = "Asia/Shanghai"


def truth_by_user(project: ProjectStore, truth_path: Path) -> dict[str, np.ndarray]:
    """Ground-truth columns aligned to ``user_id`` (through the first anonymous id of each person)."""
    truth = pq.read_table(truth_path).to_pydict()
    first_ids = [ids[0] for ids in truth["anonymous_ids"]]
    rows = project.con.execute(
        f"SELECT id_value, user_id FROM {project.table('identities')} WHERE id_value IN (SELECT unnest(?))",
        [first_ids],
    ).fetchall()
    user_of = dict(rows)
    users = np.array([user_of.get(i, -1) for i in first_ids])
    keep = users >= 0
    out: dict[str, Any] = {"user_id": users[keep]}
    for col in ("dropout_time", "purchase_rate", "dropout_prob"):
        out[col] = np.array(truth[col], dtype=object)[keep]
    return out


@pytest.fixture(scope="module")
def sim(sim_workspace: tuple[Workspace, Path]) -> tuple[ProjectStore, dict[str, np.ndarray], dict[str, Any]]:
    ws, truth_path = sim_workspace
    project = ws.project("default")
    results = run_models(project, SIM_END, timezone="Asia/Shanghai", models={"churn": ChurnModel(CHURN_TEST_CONFIG)})
    return project, truth_by_user(project, truth_path), results


def test_every_model_runs_on_the_simulator(sim: Any) -> None:
    _, _, results = sim
    assert set(results) == {"rfm", "lifecycle", "clv", "value", "activity", "preference", "churn"}
    for name, res in results.items():
        assert "error" not in res, (name, res)
        assert res["users"] > 0


def test_churn_meets_acceptance_and_matches_dropouts(sim: Any) -> None:
    project, truth, results = sim
    val = results["churn"]["report"]["validation"]
    assert val["auc"] >= 0.80, val
    assert val["ece"] <= 0.05, val
    assert val["top_decile_lift"] > 1.2
    out = read_outputs(project, "churn", SIM_END)
    at = {u: i for i, u in enumerate(truth["user_id"].tolist())}
    idx = np.array([at[u] for u in out["user_id"].tolist()])
    dropped = np.array([t is not None for t in truth["dropout_time"][idx]])
    high, low = out["risk_tier"] == "high", out["risk_tier"] == "low"
    assert dropped[high].mean() > dropped[low].mean() + 0.2
    assert set(out["driver_1"].tolist()) - {""}


def test_lifecycle_stages_agree_with_ground_truth(sim: Any) -> None:
    project, truth, _ = sim
    out = read_outputs(project, "lifecycle", SIM_END)
    at = {u: i for i, u in enumerate(truth["user_id"].tolist())}
    idx = np.array([at[u] for u in out["user_id"].tolist()])
    dropped = np.array([t is not None for t in truth["dropout_time"][idx]])
    rate = truth["purchase_rate"][idx].astype(float)
    stage = out["stage"]
    assert dropped[stage == "churn"].mean() > 0.6
    assert dropped[stage == "maturity"].mean() < 0.3
    assert np.median(rate[stage == "maturity"]) > np.median(rate[stage == "growth"])


def test_clv_recovers_the_simulated_purchase_process(sim: Any) -> None:
    project, _, results = sim
    report = results["clv"]["report"]
    assert report["choice"]["mode"] == "auto" and report["choice"]["model"] in report["validation"]["candidates"]
    # The MBG/NBD is the simulator's process (a dropout is possible right after any purchase, the first too).
    run = CLVRunModel(CLVConfig(clv_model="mbgnbd", validate_models=False)).run(project, SIM_END, timezone=TZ)
    mbg = run.report["transaction_model"]["params"]
    out = read_outputs(project, "clv", SIM_END)
    # Buyers are a rate-biased sample of the simulated people (and channels scale λ and b), so the check is on
    # the means over the customers the model saw: E[λ] = r/α and E[p] = a/(a+b) against their true λ and p.
    truth = sim[1]
    at = {u: i for i, u in enumerate(truth["user_id"].tolist())}
    idx = np.array([at[u] for u in out["user_id"].tolist()])
    true_rate = float(truth["purchase_rate"][idx].astype(float).mean())
    true_p = float(truth["dropout_prob"][idx].astype(float).mean())
    assert mbg["r"] / mbg["alpha"] == pytest.approx(true_rate, rel=0.15)
    assert mbg["a"] / (mbg["a"] + mbg["b"]) == pytest.approx(true_p, rel=0.25)
    assert np.all((out["p_alive"] >= 0) & (out["p_alive"] <= 1)) and np.all(out["clv"] >= 0)


def test_preferences_value_and_activity_outputs(sim: Any) -> None:
    project, _, results = sim
    pref = read_outputs(project, "preference", SIM_END)
    has = pref["category"] != ""
    assert np.all((pref["category_confidence"][has] > 0) & (pref["category_confidence"][has] <= 1))
    assert results["preference"]["report"]["associations"]["rules"] > 0
    rules = project.con.execute(
        f"SELECT min(lift), min(confidence) FROM {project.table('model_preference_associations')}"
    ).fetchone()
    assert rules is not None and rules[1] > 0
    jump = results["value"]["report"]["value_jump"]
    diffs = [abs(b["std_diff"]) for b in jump["behaviours"]]
    assert diffs == sorted(diffs, reverse=True) and jump["reached_users"] > 0 and jump["stuck_users"] > 0
    period = next(b for b in jump["behaviours"] if b["behaviour"] == "period_days")
    assert period["mean_reached"] < period["mean_stuck"]  # fast buyers (high true rate) reach order 2 sooner
    activity = read_outputs(project, "activity", SIM_END)
    assert np.all((activity["activity_score"] >= 0) & (activity["activity_score"] <= 100))
    assert activity["low_frequency"].any()
