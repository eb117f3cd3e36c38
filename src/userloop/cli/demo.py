"""``userloop demo``: a workspace with a simulated business, ready to explore."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from userloop.cli.output import Out
from userloop.sim.run import run_simulation
from userloop.store import Workspace
from userloop.store.sqlbuild import sql


def run_demo(out: Out, path: Path, *, users: int, days: int, seed: int, force: bool, serve: bool) -> None:
    ws, secrets = Workspace.init(path, force=force)
    try:
        with out.progress("simulating and loading", total=None) as advance:
            report = run_simulation(ws, "default", users=users, days=days, seed=seed, progress=advance)
        with out.progress("models, tags and example segments", total=None):
            profiles = _profiles(ws, report.end_date)
        store = ws.project()
        counts = dict(
            store.fetchall(
                sql(
                    "SELECT 'persons', count(*) FROM $users UNION ALL "
                    "SELECT 'identities', count(*) FROM $identities UNION ALL "
                    "SELECT 'items', count(*) FROM $items UNION ALL "
                    "SELECT 'properties', count(*) FROM $registry",
                    users=store.ref("users"),
                    identities=store.ref("identities"),
                    items=store.ref("items"),
                    registry=store.ref("registry"),
                )
            )
        )
    finally:
        ws.close()
    w = str(ws.path)
    first = profiles["segments"][0]["id"] if profiles["segments"] else 1
    doc = {
        "workspace": w,
        "project": "default",
        "write_key": secrets.write_key,
        "admin_token": secrets.admin_token,
        "simulation": report.as_dict(),
        "counts": counts,
        "profiles": profiles,
        "serving": serve,
    }
    lines = [
        *report.lines(),
        f"  persons {counts['persons']:,} · identities {counts['identities']:,} · items {counts['items']:,} · "
        f"properties {counts['properties']:,}",
        f"  tags {profiles['tags']} as of {profiles['as_of']} · segments "
        + ", ".join(f"{s['id']}: {s['name']} ({s['size']:,})" for s in profiles["segments"]),
        "",
        f"Workspace ready / 工作区已就绪: {w}",
        f"  write key    {secrets.write_key}",
        f"  admin token  {secrets.admin_token}",
        "",
        "Next / 下一步:",
        f'  userloop sql -w {w} "SELECT event, count(*) n FROM events GROUP BY event ORDER BY n DESC"',
        f"  userloop dashboard core-metrics -w {w}          # 核心指标 / core metrics",
        f"  userloop query -w {w} funnel.json                   # any analysis: docs/analytics.md",
        f"  userloop tags list -w {w}                           # 标签 / tags",
        f"  userloop segments compare {first} -w {w}                # 人群对比 / what they share",
        f"  userloop users show {profiles['example_person']} -w {w}     # 用户360 / one person",
        f"  userloop properties list -w {w}",
        f"  userloop import events -w {w} my-events.jsonl",
    ]
    out.emit(doc, text=lines)
    if serve:
        from userloop.api import serve_forever

        serve_forever(ws.path, "127.0.0.1", 8000)


#: Example audiences of the demo (DOMAIN §4: compare mature users with the rest; §5: churn-risk buyers).
EXAMPLE_SEGMENTS = (
    ("成熟期用户 / mature users", {"type": "tag", "tag": "lifecycle_stage", "op": "eq", "value": "maturity"}),
    (
        "高流失风险的复购用户 / repeat buyers at high churn risk",
        {"all": [
            {"type": "tag", "tag": "repurchase_state", "op": "eq", "value": "repeat"},
            {"type": "model", "model": "churn", "field": "risk_tier", "op": "eq", "value": "high"},
        ]},
    ),
)  # fmt: skip


def _profiles(ws: Workspace, as_of: date) -> dict[str, Any]:
    """Run the user models as of the last simulated day, install and compute the starter tags, and save the
    example segments, so that every profile command has something to show."""
    from userloop.core.errors import UserloopError
    from userloop.models.pipeline import run_models
    from userloop.profile.platform import Profiles

    info = ws.project_info("default")
    store = ws.project("default")
    run_models(store, as_of, timezone=info.timezone)
    profiles = Profiles(ws.meta, store, info)
    profiles.install_starter()
    computed = profiles.materialise(run_date=as_of)["tags"]
    segments = []
    for name, rule in EXAMPLE_SEGMENTS:
        try:
            row = profiles.save_segment(name, rule)
        except UserloopError:  # e.g. the churn model could not train on a very short history
            continue
        segments.append({"id": row["id"], "name": row["name"], "size": row["size"]})
    rows = store.fetchall(
        sql("SELECT first_id FROM $users WHERE first_id IS NOT NULL ORDER BY user_id LIMIT 1", users=store.ref("users"))
    )
    person = rows[0][0] if rows else "1"
    return {"as_of": as_of.isoformat(), "tags": len(computed), "segments": segments, "example_person": person}
