"""The simulated business ends on the project's local yesterday (issue 13 item 2), not on the UTC date: at 17:00
UTC it is already 01:00 tomorrow in Shanghai, so a business ending on the UTC date would leave Shanghai's
"yesterday" empty and its "last 7 days" a day short. The clock is set by the test (the simulation reads
``core.clock.today_in``), at an instant near the real one so the loader's time policy accepts the events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import userloop.sim.run as sim_run
from userloop.query.engine import Engine
from userloop.store import Workspace


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "UTC", "America/Los_Angeles"])
def test_the_simulated_business_ends_on_the_projects_yesterday(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timezone: str
) -> None:
    now = (datetime.now(UTC) - timedelta(days=1)).replace(hour=17, minute=0, second=0, microsecond=0)

    def today_in(tz: str) -> date:
        return now.astimezone(ZoneInfo(tz)).date()

    monkeypatch.setattr(sim_run, "today_in", today_in)
    ws, _ = Workspace.init(tmp_path / "ws", timezone=timezone)
    try:
        report = sim_run.run_simulation(ws, "default", users=80, days=5, seed=3)
        today = today_in(timezone)
        assert report.end_date == today - timedelta(days=1)
        store = ws.project("default")
        engine = Engine(store, timezone)
        q = {"kind": "trends", "series": [{"event": "app_start"}], "date_range": {"last": 5}}
        got = engine.run(q, today=today).result
        # "the last 5 days" are the 5 simulated days: the last one is full, none is partial
        assert got["buckets"][-1] == report.end_date.isoformat() and got["partial"] == []
        assert all(v > 0 for v in got["series"][0]["data"])
        after = engine.run(q | {"date_range": {"last": 1, "include_current": True}}, today=today).result
        assert after["partial"] == [today.isoformat()] and after["series"][0]["data"] == [0.0]
    finally:
        ws.close()
