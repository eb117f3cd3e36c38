"""``userloop demo``: a workspace with a simulated business, ready to explore."""

from __future__ import annotations

from pathlib import Path

from userloop.cli.output import Out
from userloop.sim.run import run_simulation
from userloop.store import Workspace


def run_demo(out: Out, path: Path, *, users: int, days: int, seed: int, force: bool, serve: bool) -> None:
    ws, secrets = Workspace.init(path, force=force)
    try:
        with out.progress("simulating and loading", total=None) as advance:
            report = run_simulation(ws, "default", users=users, days=days, seed=seed, progress=advance)
        store = ws.project()
        counts = dict(
            store.con.execute(
                f"SELECT 'persons', count(*) FROM {store.table('users')} UNION ALL "
                f"SELECT 'identities', count(*) FROM {store.table('identities')} UNION ALL "
                f"SELECT 'items', count(*) FROM {store.table('items')} UNION ALL "
                f"SELECT 'properties', count(*) FROM {store.table('registry')}"
            ).fetchall()
        )
    finally:
        ws.close()
    w = str(ws.path)
    doc = {
        "workspace": w,
        "project": "default",
        "write_key": secrets.write_key,
        "admin_token": secrets.admin_token,
        "simulation": report.as_dict(),
        "counts": counts,
        "serving": serve,
    }
    lines = [
        *report.lines(),
        f"  persons {counts['persons']:,} · identities {counts['identities']:,} · items {counts['items']:,} · "
        f"properties {counts['properties']:,}",
        "",
        f"Workspace ready / 工作区已就绪: {w}",
        f"  write key    {secrets.write_key}",
        f"  admin token  {secrets.admin_token}",
        "",
        "Next / 下一步:",
        f'  userloop sql -w {w} "SELECT event, count(*) n FROM events GROUP BY event ORDER BY n DESC"',
        f"  userloop dashboard core-metrics -w {w}          # 核心指标 / core metrics",
        f"  userloop query -w {w} funnel.json                   # any analysis: docs/analytics.md",
        f"  userloop properties list -w {w}",
        f"  userloop import events -w {w} my-events.jsonl",
    ]
    out.emit(doc, text=lines)
    if serve:
        from userloop.api import serve_forever

        serve_forever(ws.path, "127.0.0.1", 8000)
