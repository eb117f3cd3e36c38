"""The CLV options (``clv_model``, ``horizon_days``) on every face: pipeline, scheduled job, API, and the CLI
forwarding to a running server."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from tests.collect.serving import Server
from userloop.core.errors import ValidationError
from userloop.models.pipeline import clv_options
from userloop.service.jobs import user_models
from userloop.sim.run import run_simulation
from userloop.store import Workspace

END = date(2026, 6, 30)


def test_clv_options_are_checked() -> None:
    assert clv_options(None, None) == {}
    model = clv_options("paretonbd", 45)["clv"]
    assert model.config.clv_model == "paretonbd" and model.config.horizon_days == 45
    for bad in (("nope", None), (None, 0), (None, 4000)):
        with pytest.raises(ValidationError):
            clv_options(*bad)


def test_the_scheduled_job_passes_the_options(tmp_path: Path) -> None:
    """The daily job, run for real on a small simulated business that ends yesterday in the project's zone."""
    from datetime import timedelta

    from userloop.core.clock import today_in
    from userloop.models.base import latest_report

    ws, _ = Workspace.init(tmp_path / "ws")
    try:
        with pytest.raises(ValidationError):
            user_models(ws, clv_model="nope")
        with pytest.raises(ValidationError):
            user_models(ws, horizon_days=0)
        yesterday = today_in(ws.project_info("default").timezone) - timedelta(days=1)
        run_simulation(ws, "default", users=300, days=90, seed=5, end_date=yesterday)
        out = user_models(ws, clv_model="paretonbd", horizon_days=60).fn("default")
        assert out["as_of"] == yesterday.isoformat() and out["models"]["clv"] == "ok"
        report = latest_report(ws.project("default"), "clv", yesterday)["report"]
        assert report["config"]["clv_model"] == "paretonbd" and report["config"]["horizon_days"] == 60
        assert report["transaction_model"]["name"] == "paretonbd"
    finally:
        ws.close()


def test_api_and_cli_take_the_options(tmp_path: Path) -> None:
    ws, secrets = Workspace.init(tmp_path / "ws")
    try:
        run_simulation(ws, "default", users=600, days=100, seed=3, end_date=END)
    finally:
        ws.close()
    assert secrets.admin_token
    server = Server(ws.path, "", secrets.admin_token).start()
    try:
        url, headers = server.url + "/api/v1/models/run", server.admin
        params: dict[str, str | int] = {
            "only": "clv",
            "as_of": "2026-06-29",
            "clv_model": "paretonbd",
            "horizon_days": 30,
        }
        doc = httpx.post(url, headers=headers, params=params, timeout=120).json()
        assert "report" in doc["models"]["clv"], doc
        assert doc["models"]["clv"]["report"]["transaction_model"]["name"] == "paretonbd"
        assert doc["models"]["clv"]["report"]["horizon_days"] == 30
        for bad in ({"clv_model": "nope"}, {"horizon_days": 0}):
            assert httpx.post(url, headers=headers, params={"only": "clv", **bad}, timeout=60).status_code in {400, 422}
        # The CLI forwards to the server that owns the workspace, options included.
        app = typer.Typer()
        from userloop.cli.models_cmd import models_app

        app.add_typer(models_app, name="models")
        args = ["models", "run", "-w", str(ws.path), "--only", "clv", "--as-of", "2026-06-28",
                "--clv-model", "mbgnbd", "--horizon-days", "45", "--json"]  # fmt: skip
        res = CliRunner(env={"USERLOOP_TOKEN": secrets.admin_token}).invoke(app, args)
        assert res.exit_code == 0, res.output
        clv = json.loads(res.output)["models"]["clv"]
        assert clv["report"]["transaction_model"]["name"] == "mbgnbd" and clv["report"]["horizon_days"] == 45
    finally:
        server.stop()
