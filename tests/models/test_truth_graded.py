"""P(alive) and churn scores graded against the simulator's ground truth (who had really dropped out).

Models run 30 days before the end of a 10,000-person, 150-day simulation. The simulator's purchase process is
the MBG/NBD one (a person may drop out right after any purchase, the first included), so a P(alive) that
means something must rank the truly alive high (AUC >= 0.75) and be calibrated; the churn score estimates "no
purchase in the next 30 days" and must be calibrated on exactly that outcome (ECE <= 0.05) and rank the true
drop-outs (AUC >= 0.80).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.models.conftest import GRADED_LEAD_DAYS, SIM_END
from userloop.models.base import RunContext, read_outputs
from userloop.models.churn import ChurnModel
from userloop.models.churn_features import read_labels
from userloop.models.clv_model import CLVConfig, CLVRunModel
from userloop.models.evaluation import classification_report
from userloop.models.grading import dropped_out_by
from userloop.store import ProjectStore, Workspace

pytestmark = pytest.mark.slow

TZ = "Asia/Shanghai"
AS_OF = SIM_END - timedelta(days=GRADED_LEAD_DAYS)


@pytest.fixture(scope="module")
def graded(graded_workspace: tuple[Workspace, Path]) -> tuple[ProjectStore, Path, RunContext]:
    ws, truth_path = graded_workspace
    project = ws.project("default")
    return project, truth_path, RunContext(project, AS_OF, TZ)


def test_p_alive_of_the_chosen_clv_model_ranks_the_truly_alive(graded: Any) -> None:
    project, truth_path, ctx = graded
    run = CLVRunModel().run(project, AS_OF, timezone=TZ)
    out = read_outputs(project, "clv", AS_OF)
    alive = (~dropped_out_by(project, truth_path, out["user_id"], ctx.end)).astype(np.int8)
    graded_alive = classification_report(alive, out["p_alive"])
    print(f"\nchosen {run.report['choice']['model']}: P(alive) vs truly alive {graded_alive}")
    assert run.report["choice"]["mode"] == "auto" and run.report["validation"] is not None
    assert graded_alive["auc"] >= 0.75, graded_alive
    assert graded_alive["ece"] <= 0.05, graded_alive
    one_timers = out["frequency"] == 0
    assert classification_report(alive[one_timers], out["p_alive"][one_timers])["auc"] >= 0.7
    # The BG/NBD, which gives every one-time buyer P(alive) = 1, ranks far worse: the choice matters.
    CLVRunModel(CLVConfig(clv_model="bgnbd", validate_models=False)).run(project, AS_OF, timezone=TZ)
    bg = read_outputs(project, "clv", AS_OF)
    assert np.all(bg["p_alive"][bg["frequency"] == 0] == 1.0)
    assert classification_report(alive, bg["p_alive"])["auc"] < graded_alive["auc"] - 0.1


def test_churn_is_calibrated_on_its_target_and_ranks_true_dropouts(graded: Any) -> None:
    project, truth_path, ctx = graded
    model = ChurnModel()
    run = model.run(project, AS_OF, timezone=TZ)
    out = read_outputs(project, "churn", AS_OF)
    p = out["churn_probability"]
    # The target, observed after the as-of day: no purchase in the next horizon_days days.
    outcome = read_labels(ctx, model.config.features, out["user_id"], model.config.horizon_days)
    on_target = classification_report(outcome, p)
    gone = dropped_out_by(project, truth_path, out["user_id"], ctx.end).astype(np.int8)
    on_truth = classification_report(gone, p)
    print(f"\nchurn vs its target {on_target}\nchurn vs true drop-outs {on_truth}")
    assert "30 local days after the as-of day" in run.report["target"]
    assert run.report["validation"]["ece"] <= 0.05 and run.report["validation"]["auc"] >= 0.80
    assert on_target["ece"] <= 0.05, on_target
    assert on_truth["auc"] >= 0.80, on_truth
