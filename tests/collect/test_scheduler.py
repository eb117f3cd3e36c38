"""The scheduler: a slot runs once, across restarts; failures are retried; the real job runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from userloop.service.jobs import rejects_retention
from userloop.service.scheduler import Job, Scheduler
from userloop.store import Workspace
from userloop.store.service_tables import create_tables


def test_daily_slot_runs_once_across_restarts_and_failures_retry(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    create_tables(ws.meta)
    now = datetime(2025, 5, 1, 20, 0)  # 04:00 on 2 May in Asia/Shanghai: the 03:30 slot of 2 May is due
    calls: list[str] = []
    flaky = iter([RuntimeError("boom"), None])

    def fail_once(project: str) -> dict[str, str]:
        if (exc := next(flaky)) is not None:
            raise exc
        return {"ok": project}

    for _restart in range(3):
        scheduler = Scheduler(ws.meta, clock=lambda: now)
        scheduler.register(Job("count", lambda p: calls.append(p) or {}, at="03:30"))
        scheduler.register(Job("flaky", fail_once, retry_delay=0))
        scheduler.register(rejects_retention(ws))
        scheduler.run_due()
    assert calls == ["default"]
    runs = {(r.job, r.status, r.attempts) for r in Scheduler(ws.meta).history()}
    assert ("flaky", "succeeded", 2) in runs
    assert ("rejects_retention", "succeeded", 1) in runs
    ws.close()


def test_a_heavy_job_waits_for_its_next_slot_on_a_new_workspace(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path / "ws")
    create_tables(ws.meta)
    calls: list[str] = []
    day_one = datetime(2025, 5, 1, 20, 0)  # 04:00 on 2 May in Asia/Shanghai
    for now in (day_one, day_one + timedelta(hours=1), day_one + timedelta(days=1)):
        scheduler = Scheduler(ws.meta, clock=lambda now=now: now)
        scheduler.register(Job("models", lambda p: calls.append(p) or {}, at="03:30", run_first_slot=False))
        scheduler.run_due()
    assert calls == ["default"]  # skipped on 2 May (already due at first sight), ran on 3 May
    ws.close()
