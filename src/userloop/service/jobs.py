"""Jobs the service registers today. Later issues (models, tags, segments) add theirs the same way."""

from __future__ import annotations

from typing import Any

from userloop.service.scheduler import Job
from userloop.store import rejects
from userloop.store.sqlbuild import sql
from userloop.store.workspace import Workspace

REJECTS_KEEP_DAYS = 30
REJECTS_MAX_BYTES = 100 << 20
#: A rejects row received more than ``?`` days ago.
_OLDER = sql("received_at < now()::TIMESTAMP - to_days(?)")


def rejects_retention(
    ws: Workspace, *, keep_days: int = REJECTS_KEEP_DAYS, max_bytes: int = REJECTS_MAX_BYTES, at: str = "03:30"
) -> Job:
    """Daily: delete dead-letter rows older than ``keep_days`` (they have been visible for that long), and the
    project's import rejects files older than that or beyond ``max_bytes`` in all (oldest first)."""

    def run(project: str) -> dict[str, Any]:
        from userloop.ingest.rejects_files import prune_rejects

        files = prune_rejects(ws.path / "rejects", project, keep_days=keep_days, max_bytes=max_bytes)
        store = ws.project(project)
        target = store.ref(rejects.TABLE)
        with store.atomic() as s:
            deleted = s.scalar(sql("SELECT count(*) FROM $t WHERE $old", t=target, old=_OLDER), [keep_days])
            s.execute(sql("DELETE FROM $t WHERE $old", t=target, old=_OLDER), [keep_days])
        return {"deleted": int(deleted or 0), "keep_days": keep_days, "files_deleted": len(files.deleted)}

    return Job("rejects_retention", run, kind="daily", at=at)


def user_models(
    ws: Workspace, *, at: str = "04:00", clv_model: str | None = None, horizon_days: int | None = None
) -> Job:
    """Daily: run the user models (RFM, lifecycle, CLV, value, activity, preference, churn) as of yesterday,
    in the project's time zone, so that tags, segments and journeys start each day from fresh outputs.

    ``clv_model`` (``auto``, ``bgnbd``, ``paretonbd``, ``mbgnbd``) and ``horizon_days`` configure the CLV model as
    ``userloop models run --clv-model … --horizon-days …`` does; None keeps the defaults (auto, 90 days)."""
    if clv_model is not None or horizon_days is not None:  # the defaults need no check, nor the models imported
        from userloop.models.pipeline import clv_options

        clv_options(clv_model, horizon_days)  # a bad configuration fails when the job is registered, not at 04:00

    def run(project: str) -> dict[str, Any]:
        from datetime import timedelta

        from userloop.core.clock import today_in
        from userloop.models.pipeline import run_models

        timezone = ws.project_info(project).timezone
        as_of = today_in(timezone) - timedelta(days=1)
        results = run_models(
            ws.project(project), as_of, timezone=timezone, clv_model=clv_model, horizon_days=horizon_days
        )
        return {
            "as_of": as_of.isoformat(),
            "models": {name: ("error: " + r["error"]["code"]) if "error" in r else "ok" for name, r in results.items()},
        }

    return Job("user_models", run, kind="daily", at=at, run_first_slot=False)


def profiles(ws: Workspace, *, at: str = "04:30") -> Job:
    """Daily, after the models: materialise every enabled tag as of yesterday, then refresh the daily rule segments
    (each after the segments it refers to), so that yesterday's tags and audiences are ready in the morning."""

    def run(project: str) -> dict[str, Any]:
        from datetime import timedelta

        from userloop.core.clock import today_in
        from userloop.profile import segments
        from userloop.profile.materialise import materialise

        info = ws.project_info(project)
        store = ws.project(project)
        as_of = today_in(info.timezone) - timedelta(days=1)
        tags = materialise(store, ws.meta, info.id, info.timezone, as_of)
        refreshed = segments.refresh_all(ws.meta, store, info, as_of)
        return {"as_of": as_of.isoformat(), "tags": {t.target: t.users for t in tags}, "segments": refreshed}

    return Job("profiles", run, kind="daily", at=at, run_first_slot=False)
