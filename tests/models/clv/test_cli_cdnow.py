"""`userloop models run --clv-model paretonbd --horizon-days 273` on a workspace holding the CDNOW transactions.

The CDNOW sample (2,357 customers, first purchases in the first quarter of 1997) is loaded as ``order_paid``
events at local noon of each purchase day; the models run as of 1997-09-30, the end of the 39-week calibration
period of Fader, Hardie & Lee (2005). The Pareto/NBD fit in days must be the published one in weeks with the
time scales α and β times 7 (Fader & Hardie 2005 note: r = 0.553, α = 10.578, s = 0.606, β = 11.669 weeks),
and the stored 273-day (39-week) expectations must match `lifetimes`' ParetoNBDFitter run side by side on the
same customers, per customer and in aggregate.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from tests.models.conftest import EVENT_PROPS
from userloop.cli.models_cmd import models_app
from userloop.models.base import read_outputs
from userloop.store import Workspace

PUBLISHED_WEEKS = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
AS_OF = "1997-09-30"


def _load_cdnow(ws: Workspace, transactions: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, days, values = transactions
    zone = ZoneInfo(ws.project_info().timezone)
    utc = ZoneInfo("UTC")
    times = []
    for d in days.astype(object):
        local = datetime(d.year, d.month, d.day, 12, tzinfo=zone)
        times.append(local.astimezone(utc).replace(tzinfo=None))
    n = ids.shape[0]
    table = pa.table({
        "event_id": [f"cdnow{i}" for i in range(n)], "event": ["order_paid"] * n, "user_id": ids,
        "distinct_id": [f"c{u}" for u in ids.tolist()], "time": times, "received_at": times, "order_amount": values,
    })  # fmt: skip
    project = ws.project()
    with project.store.transaction():
        project.register("events", EVENT_PROPS)
    events = project.table("events")
    project.con.register("_cdnow", table)
    try:
        project.con.execute(
            f"INSERT INTO {events} (event_id, event, user_id, distinct_id, time, received_at, order_amount) "
            "SELECT event_id, event, user_id, distinct_id, time, received_at, order_amount FROM _cdnow"
        )
    finally:
        project.con.unregister("_cdnow")
    project.register_events(["order_paid"])


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory: pytest.TempPathFactory, cdnow_transactions) -> tuple[dict, dict, Path]:
    path = tmp_path_factory.mktemp("cdnow") / "ws"
    ws, _ = Workspace.init(path)
    _load_cdnow(ws, cdnow_transactions)
    ws.close()
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    args = ["models", "run", "-w", str(path), "--only", "clv", "--as-of", AS_OF,
            "--clv-model", "paretonbd", "--horizon-days", "273", "--json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    ws = Workspace.open(path)
    try:
        outputs = read_outputs(ws.project(), "clv", date.fromisoformat(AS_OF))
    finally:
        ws.close()
    return doc["models"]["clv"], outputs, path


def test_reproduces_the_published_cdnow_pareto_nbd_fit(cdnow_run) -> None:
    run = cdnow_run[0]
    report = run["report"]
    assert run["users"] == 2357
    assert report["transaction_model"]["name"] == "paretonbd" and report["choice"]["mode"] == "named"
    assert report["horizon_days"] == 273
    params = report["transaction_model"]["params"]
    days_per_week = {"r": 1.0, "alpha": 7.0, "s": 1.0, "beta": 7.0}
    for name, value in PUBLISHED_WEEKS.items():
        assert round(params[name] / days_per_week[name], 3) == pytest.approx(value, abs=0.0011), (name, params)


def test_39_week_expectations_match_lifetimes(cdnow_run, cdnow_exact, lifetimes) -> None:
    run, out, _ = cdnow_run
    data = (cdnow_exact.frequency, cdnow_exact.recency, cdnow_exact.T)
    # A fixed start: lifetimes otherwise draws one from numpy's global state (see test_paretonbd).
    reference = lifetimes.ParetoNBDFitter().fit(*data, iterative_fitting=1, initial_params=np.ones(4))
    theirs = np.asarray(reference.conditional_expected_number_of_purchases_up_to_time(39.0, *data))
    ours = out["expected_purchases"]
    assert ours.shape == theirs.shape
    assert float(ours.sum()) == pytest.approx(float(theirs.sum()), rel=1e-3)
    assert run["report"]["expected_purchases_total"] == pytest.approx(float(theirs.sum()), rel=1e-3)
    np.testing.assert_allclose(ours, theirs, rtol=5e-3, atol=1e-4)
    alive = np.asarray(reference.conditional_probability_alive(*data))
    np.testing.assert_allclose(out["p_alive"], alive, atol=2e-3)
    # expected value over the horizon = expected purchases × expected spend per purchase
    np.testing.assert_allclose(out["expected_value"], out["expected_purchases"] * out["expected_spend"], rtol=1e-12)


def test_validation_table_is_stored_with_every_candidate(cdnow_run) -> None:
    report = cdnow_run[0]["report"]
    validation = report["validation"]
    assert set(validation["candidates"]) == {"bgnbd", "paretonbd", "mbgnbd"}
    for cand in validation["candidates"].values():
        assert len(cand["deciles"]) == 10
        assert sum(d["customers"] for d in cand["deciles"]) == validation["customers"]
        actual = sum(d["actual_mean"] * d["customers"] for d in cand["deciles"])
        assert actual == pytest.approx(validation["actual_holdout_purchases"])
        assert abs(cand["aggregate_error"]) < 0.25  # CDNOW is well described by all three


def test_bad_options_are_refused(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    Workspace.init(tmp_path / "ws")[0].close()
    for extra in (["--clv-model", "nope"], ["--horizon-days", "0"]):
        res = CliRunner().invoke(app, ["models", "run", "-w", str(tmp_path / "ws"), "--json", *extra])
        assert res.exit_code == 2, res.output
        assert json.loads(res.output)["error"]["code"] == "invalid"


def test_text_output_names_the_model_and_why(cdnow_run) -> None:
    app = typer.Typer()
    app.add_typer(models_app, name="models")
    args = ["models", "run", "-w", str(cdnow_run[2]), "--only", "clv", "--as-of", AS_OF, "--horizon-days", "273"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "model mbgnbd (auto): holdout of 90 days" in res.output  # CDNOW: a third of 272 days
