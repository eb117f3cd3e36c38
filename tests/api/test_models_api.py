"""Model reports through the API, and the daily models job of the scheduler, on simulated data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx

from tests.collect.serving import Server
from userloop.service.jobs import user_models
from userloop.sim.run import run_simulation
from userloop.store import Workspace


def _simulated(tmp_path: Path) -> tuple[Path, str]:
    ws, secrets = Workspace.init(tmp_path / "ws")
    try:
        run_simulation(ws, "default", users=600, days=100, seed=3, end_date=date(2026, 6, 30))
        result = user_models(ws).fn("default")
        assert result["models"]["rfm"] == "ok"
        assert result["models"]["lifecycle"] == "ok"
    finally:
        ws.close()
    assert secrets.admin_token
    return ws.path, secrets.admin_token


def test_daily_models_job_and_report_route(tmp_path: Path) -> None:
    path, token = _simulated(tmp_path)
    server = Server(path, "", token).start()
    try:
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/v1/models", headers=headers).json()[:2] == ["rfm", "lifecycle"]
        report = httpx.get(server.url + "/api/v1/models/rfm/report", headers=headers)
        assert report.status_code == 200
        body = report.json()
        assert body["model"] == "rfm"
        assert body["report"]
        assert httpx.get(server.url + "/api/v1/models/nope/report", headers=headers).status_code == 404
        assert httpx.get(server.url + "/api/v1/models/rfm/report").status_code == 401
        runs = {r["name"]: r["run_date"] for r in httpx.get(server.url + "/api/v1/models/runs", headers=headers).json()}
        assert runs["rfm"] == body["run_date"] and runs["lifecycle"] is not None
        assert set(runs) == set(httpx.get(server.url + "/api/v1/models", headers=headers).json())
    finally:
        server.stop()
