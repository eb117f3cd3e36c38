"""The service's daily jobs: models at 04:00, then tags and segments at 04:30, both as of yesterday."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from userloop.core.clock import today_in
from userloop.profile import history, segments, tags
from userloop.service.jobs import profiles, user_models
from userloop.service.scheduler import Scheduler
from userloop.sim.run import run_simulation
from userloop.store import Workspace
from userloop.store.service_tables import create_tables


def test_daily_jobs_compute_tags_and_refresh_segments_as_of_yesterday(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    try:
        info = ws.project_info("default")
        yesterday = today_in(info.timezone) - timedelta(days=1)
        run_simulation(ws, "default", users=300, days=40, seed=3, end_date=yesterday)
        store = ws.project("default")
        installed = tags.install_starter(ws.meta, store, info.id)
        seg = segments.save(ws.meta, store, info, name="buyers",
                            rule={"type": "event", "event": "order_paid", "window": {"last": 30}})  # fmt: skip
        manual = segments.save(ws.meta, store, info, name="manual", refresh="manual",
                               rule={"type": "event", "event": "app_start", "window": {"last": 7}})  # fmt: skip

        create_tables(ws.meta)
        now = datetime.combine(today_in(info.timezone), datetime.min.time()) + timedelta(hours=23)  # after 04:30
        scheduler = Scheduler(ws.meta, clock=lambda: now)
        scheduler.register(user_models(ws))
        scheduler.register(profiles(ws))
        first = scheduler.run_due()
        assert first == []  # a new workspace's first slot is skipped: heavy jobs do not start at once
        later = now + timedelta(days=1)
        scheduler.clock = lambda: later
        done = {r.job: r for r in scheduler.run_due()}
        assert done["user_models"].status == "succeeded", done["user_models"].error
        assert done["profiles"].status == "succeeded", done["profiles"].error

        day = yesterday  # the jobs read the real clock: as of the day before today
        for row in installed:
            runs = history.runs(store, row.table, limit=1)
            assert runs and runs[0]["run_date"] == day.isoformat(), row.name
        assert history.runs(store, seg.table, limit=1)[0]["run_date"] == day.isoformat()
        assert not history.exists(store, manual.table)  # manual segments wait for a refresh by hand
        assert segments.get(ws.meta, info.id, seg.id).size == history.runs(store, seg.table)[0]["users"]
    finally:
        ws.close()
