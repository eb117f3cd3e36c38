"""``userloop demo``: a workspace with a simulated business, ready to explore.

What the demo prints works as printed: the address it will serve on is claimed before anything is written (a
taken port is refused at once, naming a free one), the "next" commands name the ``userloop`` of the running
interpreter (``.venv/bin/userloop`` from the repository: nothing to activate) and files that exist (the example
definitions in ``examples/``, a sample file it writes into the workspace), and a model or example segment that
the simulated history is too short for is named with the reason instead of silently left out.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from userloop.cli.output import Out
from userloop.core.errors import UserloopError

if TYPE_CHECKING:
    import socket

    from userloop.store import Workspace

#: The example definitions shipped beside the package in a checkout of the repository (``examples/``).
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run_demo(
    out: Out,
    path: Path,
    *,
    users: int,
    days: int,
    seed: int,
    force: bool,
    serve: bool,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Claim ``host:port`` (when serving), create the workspace, simulate and load, run the models and tags,
    print what was made and what to run next, then serve until interrupted."""
    sock: socket.socket | None = None
    if serve:
        from userloop.cli.ports import claim

        sock = claim(host, port)  # before anything is loaded or written
    try:
        doc, lines = _build(out, path, users=users, days=days, seed=seed, force=force, serve=serve)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    if sock is None:
        out.emit(doc, text=lines)
        return
    from userloop.api import serve_forever

    sink = _start_sink(Path(doc["workspace"]) / "mailbox")
    try:
        doc["journeys"], more = _journeys(Path(doc["workspace"]), sink[1], f"http://{host}:{port}")
        account = doc["console"]
        more += [
            "",
            f"Console / 控制台: http://{host}:{port}/ — sign in as / 登录账号 {account['login']}, "
            f"password / 密码 {account['password']}",
            f"The password is shown once / 密码仅显示一次; to set another / 另设密码: {cli_command()} accounts "
            f"password {account['login']} -w {shown_path(Path(doc['workspace']))}",
        ]
        out.emit(doc, text=[*lines, *more])
        serve_forever(Path(doc["workspace"]), host, port, sock=sock)
    finally:
        sink[0].terminate()
        sink[0].wait(timeout=10)


def _start_sink(directory: Path) -> tuple[subprocess.Popen[str], int]:
    """The demo's SMTP sink, its own process: the e-mail the journeys send arrives there (and nowhere else)."""
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, a path we made
        [sys.executable, "-m", "userloop.engage.sink", "--port", "0", "--dir", str(directory), "--with-parent"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise UserloopError("the demo's SMTP sink did not start", code="internal")
    return proc, int(json.loads(line)["port"])


def _journeys(path: Path, sink_port: int, public_url: str) -> tuple[dict[str, Any], list[str]]:
    """Set up and start the demo's journeys, e-mail to the sink on ``sink_port``; the lines that say so."""
    from userloop.core.clock import utcnow
    from userloop.engage.demo import set_up
    from userloop.store import Workspace

    with Workspace.open(path) as ws:
        made = set_up(ws, "default", sink_port=sink_port, public_url=public_url, now=utcnow())
    w = shown_path(path)
    cmd = cli_command()
    lines = [
        "",
        f"Journeys started / 已启动旅程: {', '.join(made['journeys'])} — e-mail to the SMTP sink at "
        f"127.0.0.1:{sink_port} (mailbox {w}/mailbox)",
        *(f"  {cmd} journeys stats {name} -w {w}" for name in made["journeys"]),
    ]
    return {**made, "sink_port": sink_port}, lines


def _build(
    out: Out, path: Path, *, users: int, days: int, seed: int, force: bool, serve: bool
) -> tuple[dict[str, Any], list[str]]:
    from userloop.sim.run import run_simulation
    from userloop.store import Workspace
    from userloop.store.sqlbuild import sql

    ws, secrets = Workspace.init(path, force=force)
    try:
        with out.progress("simulating and loading / 模拟并导入", total=days, unit="day") as advance:
            report = run_simulation(ws, "default", users=users, days=days, seed=seed, progress=advance)
        with out.progress("models, tags and example segments / 模型、标签与示例人群", total=None):
            profiles = _profiles(ws, report.end_date, days)
        sample = write_sample_events(ws.path, report.end_date)
        console = console_account(ws)
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
    w = shown_path(ws.path)
    commands = next_commands(w, profiles, sample)
    doc: dict[str, Any] = {
        "workspace": str(ws.path),
        "project": "default",
        "write_key": secrets.write_key,
        "admin_token": secrets.admin_token,
        "simulation": report.as_dict(),
        "counts": counts,
        "profiles": profiles,
        "serving": serve,
        "console": console,
        "next": commands,
    }
    lines = [
        *report.lines(),
        f"  persons {counts['persons']:,} · identities {counts['identities']:,} · items {counts['items']:,} · "
        f"properties {counts['properties']:,}",
        f"  tags {profiles['tags']} as of {profiles['as_of']} · segments "
        + (", ".join(f"{s['id']}: {s['name']} ({s['size']:,})" for s in profiles["segments"]) or "none"),
        *(f"  {s['text']}" for s in profiles["skipped"]),
        "",
        f"Workspace ready / 工作区已就绪: {ws.path}",
        f"  write key    {secrets.write_key}",
        f"  admin token  {secrets.admin_token}",
        "",
        "Next (from this folder; nothing to activate) / 下一步（在当前目录运行，无需激活环境）:",
        *(f"  {c['command']}{'  # ' + c['note'] if c['note'] else ''}" for c in commands),
    ]
    return doc, lines


def console_account(ws: Workspace) -> dict[str, str]:
    """The console's first account: ``admin`` over every project, with a random password the demo prints once."""
    import secrets as random_secrets

    from userloop.ops.accounts import CreateAccount, RoleIn, create_account
    from userloop.ops.base import OpContext

    password = random_secrets.token_urlsafe(12)
    create_account(OpContext(ws), CreateAccount(login="admin", name="Admin", password=password,
                                                roles=[RoleIn(role="admin")]))  # fmt: skip
    return {"login": "admin", "password": password}


def cli_command() -> str:
    """How to run this ``userloop`` from the current folder: the console script beside the running interpreter
    (relative when it is inside the current folder, e.g. ``.venv/bin/userloop``), else the interpreter with
    ``-m userloop.cli.main``."""
    script = Path(sys.executable).with_name("userloop")
    if script.is_file() and os.access(script, os.X_OK):
        text = shown_path(script)
        return shlex.quote(text if "/" in text else f"./{text}")
    return f"{shlex.quote(shown_path(Path(sys.executable)))} -m userloop.cli.main"


def shown_path(path: Path) -> str:
    """``path`` relative to the current folder when inside it (shorter to read and copy), else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def next_commands(w: str, profiles: dict[str, Any], sample: Path) -> list[dict[str, str]]:
    """The commands the demo suggests, each runnable as printed from the current folder."""
    cli = cli_command()
    ws = shlex.quote(w)
    rows = [
        (f'sql -w {ws} "SELECT event, count(*) n FROM events GROUP BY event ORDER BY n DESC"', "SQL"),
        (f"dashboard core-metrics -w {ws}", "核心指标 / core metrics"),
    ]
    if EXAMPLES.is_dir():
        examples = shlex.quote(shown_path(EXAMPLES))
        rows += [
            (f"query {examples}/funnel.json -w {ws}", "支付漏斗 / payment funnel by OS; more in docs/analytics.md"),
            (f"query {examples}/retention.json -w {ws}", "新用户留存 / new-user retention"),
        ]
    rows.append((f"tags list -w {ws}", "标签 / tags"))
    if profiles["segments"]:
        rows.append((f"segments compare {profiles['segments'][0]['id']} -w {ws}", "人群对比 / what they share"))
    rows += [
        (f"users show {shlex.quote(str(profiles['example_person']))} -w {ws}", "用户360 / one person"),
        (f"models report rfm -w {ws}", "RFM 模型报告 / the RFM model's report"),
        (f"properties list -w {ws}", "属性 / properties"),
        (f"import events {shlex.quote(shown_path(sample))} -w {ws}", "导入：含重复与坏行 / an import with "
         "a duplicate and bad rows"),
    ]  # fmt: skip
    return [{"command": f"{cli} {cmd}", "note": note} for cmd, note in rows]


def write_sample_events(workspace: Path, day: date) -> Path:
    """A small events file in the Sensors format for the suggested import, dated on the demo's last day: new
    records, one repeated (a duplicate) and two bad lines (their rejects go to a file the import names)."""
    base = int(datetime.combine(day, time(12), tzinfo=UTC).timestamp() * 1000)
    records = [
        {"type": "track", "event": "app_start", "distinct_id": "sample-device-1", "time": base, "_track_id": 1,
         "properties": {"$os": "iOS", "$is_first_time": True}},
        {"type": "track", "event": "view_item", "distinct_id": "sample-device-1", "time": base + 30_000,
         "_track_id": 2, "properties": {"$os": "iOS"}},
        {"type": "track", "event": "app_start", "distinct_id": "sample-device-2", "time": base + 60_000,
         "_track_id": 1, "properties": {"$os": "Android"}},
    ]  # fmt: skip
    lines = [orjson.dumps(r).decode() for r in records]
    lines += [lines[1], '{"type": "track", "event": "view_item"', '{"type": "track", "distinct_id": "x", "time": 1}']
    path = workspace / "samples" / "new-events.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: Example audiences of the demo (DOMAIN §4: compare mature users with the rest; §5: churn-risk buyers), with
#: the models each needs.
EXAMPLE_SEGMENTS = (
    ("成熟期用户 / mature users", {"type": "tag", "tag": "lifecycle_stage", "op": "eq", "value": "maturity"}, ()),
    (
        "高流失风险的复购用户 / repeat buyers at high churn risk",
        {"all": [
            {"type": "tag", "tag": "repurchase_state", "op": "eq", "value": "repeat"},
            {"type": "model", "model": "churn", "field": "risk_tier", "op": "eq", "value": "high"},
        ]},
        ("churn",),
    ),
)  # fmt: skip


def churn_history_days() -> int:
    """Days of history the churn model needs with its default configuration: its earliest training snapshot
    lies ``3 × horizon + (snapshots − 1) × step`` days before the last day, and needs customers before it."""
    from userloop.models.churn import ChurnConfig

    cfg = ChurnConfig()
    return 3 * cfg.horizon_days + (cfg.training_snapshots - 1) * cfg.snapshot_step_days + 1


def skipped_model(name: str, error: dict[str, Any], days: int) -> dict[str, str]:
    """Why a model did not run on the demo's data, in both languages."""
    if error["code"] == "churn_not_enough_history":
        need = churn_history_days()
        reason = (
            f"needs more than {need} days of history (it learns from snapshots up to {need - 1} days back), the "
            f"demo has {days}; run the demo with --days 150 / 流失模型需要超过 {need} 天的历史数据，本演示只有 "
            f"{days} 天（可用 --days 150）"
        )
    else:
        reason = f"{error['message']} [{error['code']}]"
    return {"kind": "model", "name": name, "reason": reason, "text": f"skipped {name} model / 跳过模型: {reason}"}


def _profiles(ws: Workspace, as_of: date, days: int) -> dict[str, Any]:
    """Run the user models as of the last simulated day, install and compute the starter tags, and save the
    example segments, so that every profile command has something to show; say what could not be made."""
    from userloop.core.errors import UserloopError
    from userloop.models.pipeline import run_models
    from userloop.profile.platform import Profiles
    from userloop.store.sqlbuild import sql

    info = ws.project_info("default")
    store = ws.project("default")
    results = run_models(store, as_of, timezone=info.timezone)
    skipped = [skipped_model(name, r["error"], days) for name, r in results.items() if "error" in r]
    missing = {s["name"] for s in skipped}
    profiles = Profiles(ws.meta, store, info)
    profiles.install_starter()
    computed = profiles.materialise(run_date=as_of)["tags"]
    segments = []
    for name, rule, needs in EXAMPLE_SEGMENTS:
        lacking = [m for m in needs if m in missing]
        if lacking:
            reason = f"it needs the {', '.join(lacking)} model, skipped above / 它依赖上面跳过的模型"
        else:
            try:
                row = profiles.save_segment(name, rule)
            except UserloopError as exc:
                reason = f"{exc.message} [{exc.code}]"
            else:
                segments.append({"id": row["id"], "name": row["name"], "size": row["size"]})
                continue
        text = f"skipped example segment / 跳过示例人群 {name!r}: {reason}"
        skipped.append({"kind": "segment", "name": name, "reason": reason, "text": text})
    rows = store.fetchall(
        sql("SELECT first_id FROM $users WHERE first_id IS NOT NULL ORDER BY user_id LIMIT 1", users=store.ref("users"))
    )
    person = rows[0][0] if rows else "1"
    return {
        "as_of": as_of.isoformat(),
        "tags": len(computed),
        "segments": segments,
        "skipped": skipped,
        "example_person": person,
    }
