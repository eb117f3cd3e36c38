"""Degenerate inputs give a clear UserloopError with a stable code (or a neutral result); the CLI wraps them."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError as ConfigError
from typer.testing import CliRunner

from tests.models.conftest import memory_project
from userloop.core.errors import UserloopError
from userloop.models.activity import ActivityModel
from userloop.models.base import latest_report
from userloop.models.churn import ChurnModel
from userloop.models.clv_model import CLVRunModel
from userloop.models.lifecycle import LifecycleModel
from userloop.models.pipeline import MODEL_ORDER, run_models
from userloop.models.rfm import RFMModel
from userloop.models.value import ValueConfig, ValueModel, evaluate_expression
from userloop.store import ProjectStore, Workspace

AS_OF = date(2026, 3, 15)
ONE_BUYER = [(1, "order_paid", datetime(2026, 3, 1), 10.0), (1, "order_item", datetime(2026, 3, 1), None)]


@pytest.mark.parametrize("model", [m() for m in MODEL_ORDER.values()], ids=list(MODEL_ORDER))
def test_empty_project_is_a_clear_error(empty_project: ProjectStore, model: object) -> None:
    with pytest.raises(UserloopError) as info:
        model.run(empty_project, AS_OF)  # type: ignore[attr-defined]
    assert info.value.code.startswith(("model_", "clv_", "churn_"))


@pytest.mark.parametrize("model", [RFMModel(), LifecycleModel(), ValueModel(), ActivityModel()])
def test_one_customer_is_neutral(model: object) -> None:
    project = memory_project(ONE_BUYER)
    run = model.run(project, AS_OF)  # type: ignore[attr-defined]
    assert run.users == 1


@pytest.mark.parametrize("model", [CLVRunModel(), ChurnModel()])
def test_one_customer_cannot_fit_the_predictive_models(model: object) -> None:
    project = memory_project(ONE_BUYER)
    with pytest.raises(UserloopError) as info:
        model.run(project, AS_OF)  # type: ignore[attr-defined]
    assert info.value.code in {"clv_no_repeat_purchases", "clv_too_few_customers", "churn_not_enough_history",
                               "model_unknown_property", "clv_invalid_input"}  # fmt: skip


def test_pipeline_reports_errors_per_model_and_rejects_unknown_names() -> None:
    project = memory_project(ONE_BUYER)
    results = run_models(project, AS_OF, only=["rfm", "clv"])
    assert results["rfm"]["users"] == 1
    assert "code" in results["clv"]["error"]
    with pytest.raises(UserloopError, match="unknown model"):
        run_models(project, AS_OF, only=["nope"])
    assert latest_report(project, "rfm")["report"]["customers"] == 1


def test_value_expressions_are_arithmetic_only() -> None:
    for bad in ("__import__('os')", "frequency.real", "unknown * 2", "'a'", "frequency if 1 else 2"):
        with pytest.raises(ConfigError):
            ValueConfig(expression=bad)
    import numpy as np

    got = evaluate_expression(
        "log1p(monetary) / frequency", {"monetary": np.array([0.0]), "frequency": np.array([0.0])}
    )
    assert got.tolist() == [0.0]  # 0/0 is a neutral 0, not NaN


def test_cli_run_and_report(tmp_path: Path) -> None:
    import typer

    from userloop.cli.models_cmd import models_app

    ws, _ = Workspace.init(tmp_path / "ws")
    project = ws.project()
    from tests.models.conftest import EVENT_PROPS, insert

    with project.store.transaction():
        project.register("events", EVENT_PROPS)
    insert(project, [(u, "order_paid", datetime(2026, 3, u), 5.0 * u) for u in range(1, 9)])
    ws.close()
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    runner = CliRunner()
    wsp = str(tmp_path / "ws")
    res = runner.invoke(
        app, ["models", "run", "-w", wsp, "--only", "rfm,lifecycle,clv", "--as-of", "2026-03-15", "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["models"]["rfm"]["users"] == 8 and "error" in doc["models"]["clv"]
    res = runner.invoke(app, ["models", "report", "rfm", "-w", wsp, "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["report"]["customers"] == 8
    res = runner.invoke(app, ["models", "report", "churn", "-w", wsp, "--json"])
    assert res.exit_code == 2 and json.loads(res.output)["error"]["code"] == "model_no_report"
    res = runner.invoke(app, ["models", "run", "-w", wsp, "--as-of", "yesterday"])
    assert res.exit_code == 2
