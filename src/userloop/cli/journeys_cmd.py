"""``userloop journeys …``: journeys (流程画布) from the command line: save, check, read, run, statistics.

Every command runs an operation of :mod:`userloop.ops.journeys` through :mod:`userloop.cli.dispatch` (the running
server's API, or the workspace in process); ``--json`` prints what the API answers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

journeys_app = typer.Typer(
    help="Journeys (流程画布): save, validate, start, pause, resume, finish, archive, edit; statistics by node.",
    no_args_is_help=True,
)

Journey_ = Annotated[str, typer.Argument(help="The journey's id or name.")]
File_ = Annotated[str, typer.Argument(help="A JSON file, or - for standard input.")]

#: Message statuses shown as columns, in this order (others follow).
MESSAGE_COLUMNS = ("sent", "failed", "capped", "quiet_dropped", "suppressed", "unreachable", "unsubscribed",
                   "pending", "sending", "done")  # fmt: skip
#: Feedback columns (people whose message was delivered, opened, clicked), after the statuses.
FEEDBACK_COLUMNS = ("delivered", "opened", "clicked", "failed_later", "unsubscribed_link")
#: Feedback shown under another name where an outbox status has the same one (a message failed after sending, a
#: person who unsubscribed through this message's link).
FEEDBACK_NAMES = {"failed": "failed_later", "unsubscribed": "unsubscribed_link"}


def read_json(source: str, what: str) -> dict[str, Any]:
    """The JSON object in file ``source`` (``-``: standard input); ``invalid`` when it cannot be read or is not
    a JSON object."""
    import orjson

    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read the {what} {source!r}: {exc.strerror}") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the {what} {source!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValidationError(f"the {what} {source!r} is not a JSON object")
    return doc


def _show(out: Out, j: dict[str, Any], headline: str) -> None:
    headline = f"{headline} " if headline else ""
    started = f", started {j['started_at']}" if j.get("started_at") else ""
    out.emit(j, text=[f"{headline}journey {j['id']}: {j['name']} — {j['status']} ({_status_zh(j['status'])}), "
                      f"version {j['version']}, {j['nodes']} nodes, entry {j['entry']}{started}"])  # fmt: skip
    if j.get("redirected"):
        out.note(f"{j['redirected']} people moved by redirects / {j['redirected']} 人已按重定向移动")


def _status_zh(status: str) -> str:
    return {"draft": "草稿", "running": "运行中", "paused": "已暂停", "finished": "已结束", "archived": "已归档"}.get(
        status, status
    )


@journeys_app.command("create")
def journeys_create(
    file: File_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Save a journey from a definition file, as a draft. 保存流程（草稿）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "journey")
        _show(out, as_json("journeys.create", call(workspace, "journeys.create", project=project, definition=doc)),
              "saved / 已保存")  # fmt: skip


@journeys_app.command("list")
def journeys_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List the project's journeys with status and version. 列出流程。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("journeys.list", call(workspace, "journeys.list", project=project))
        if not json_out:
            rows = [{**r, "status": f"{r['status']} / {_status_zh(r['status'])}"} for r in rows]
        out.table(rows, ["id", "name", "status", "version", "entry", "nodes", "started_at", "updated_at"])


@journeys_app.command("show")
def journeys_show(
    journey: Journey_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Show a journey: its nodes and the canvas' edges. 查看流程的节点与连线。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        j = as_json("journeys.show", call(workspace, "journeys.show", project=project, journey=journey))
        if json_out:
            out.emit(j)
            return
        _show(out, j, "")
        nodes = [{"id": n["id"], "kind": n["kind"], "label": n.get("label", "")} for n in j["definition"]["nodes"]]
        out.table(nodes, ["id", "kind", "label"])
        out.table(j["edges"], ["from", "to", "branch"])


@journeys_app.command("validate")
def journeys_validate(
    file: File_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Check a definition file: every error by node (exit status 1 when invalid). 校验流程定义，按节点列出错误。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = read_json(file, "journey")
        reply = as_json("journeys.validate", call(workspace, "journeys.validate", project=project, definition=doc))
    if json_out:
        out.emit(reply)
    elif reply["valid"]:
        typer.echo("valid / 校验通过")
    else:
        typer.echo(f"{len(reply['errors'])} error(s) / 个错误:")
        out.table(reply["errors"], ["node", "field", "message"])
    if not reply["valid"]:
        raise typer.Exit(1)


def _transition(action: str, journey: str, workspace: Path, project: str, json_out: bool, done: str) -> None:
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        op = f"journeys.{action}"
        _show(out, as_json(op, call(workspace, op, project=project, journey=journey)), done)


def _lifecycle(action: str, done: str, help_text: str) -> None:
    """Register ``userloop journeys ACTION J``: one state change, the same options for every action."""

    def command(
        journey: Journey_,
        workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
        project: Project_ = "default",
        json_out: Json_ = False,
    ) -> None:
        _transition(action, journey, workspace, project, json_out, done)

    command.__doc__ = help_text
    command.__name__ = f"journeys_{action}"
    journeys_app.command(action)(command)


_lifecycle(
    "start",
    "started / 已启动",
    "Start a draft journey (the channels, materials, benefits and segments it names must exist). 启动流程。",
)
_lifecycle("pause", "paused / 已暂停", "Pause a running journey. 暂停流程。")
_lifecycle("resume", "resumed / 已恢复", "Resume a paused journey. 恢复流程。")
_lifecycle("finish", "finished / 已结束", "Finish a running or paused journey for good. 结束流程。")
_lifecycle("archive", "archived / 已归档", "Archive a draft, paused or finished journey. 归档流程。")  # fmt: skip


@journeys_app.command("edit")
def journeys_edit(
    journey: Journey_,
    file: File_,
    redirect: Annotated[
        list[str] | None,
        typer.Option("--redirect", help="OLD=NEW: people waiting at removed node OLD move to node NEW (repeatable)."),
    ] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Change a journey: a draft is replaced, one that has run gets a new version. 修改流程（运行过的生成新版本）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        redirects: dict[str, str] = {}
        for pair in redirect or []:
            old, sep, new = pair.partition("=")
            if not sep or not old or not new:
                raise ValidationError(f"--redirect takes OLD=NEW, not {pair!r}", field="redirect")
            redirects[old.strip()] = new.strip()
        doc = read_json(file, "journey")
        reply = call(workspace, "journeys.update", project=project, journey=journey, definition=doc,
                     redirects=redirects)  # fmt: skip
        _show(out, as_json("journeys.update", reply), "changed / 已修改")


@journeys_app.command("stats")
def journeys_stats(
    journey: Journey_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Statistics: people by node, messages by status, conversions by branch (control beside the others).
    流程数据：节点人数、消息状态、分支转化（含对照组）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        s = as_json("journeys.stats", call(workspace, "journeys.stats", project=project, journey=journey))
    if json_out:
        out.emit(s)
        return
    rate = f"{s['converted'] / s['entered']:.1%}" if s["entered"] else "–"
    typer.echo(f"{s['journey']} — {s['status']} ({_status_zh(s['status'])}), version {s['version']}: "
               f"{s['entered']:,} entered / 进入, {s['converted']:,} converted / 转化 ({rate})")  # fmt: skip
    typer.echo("Nodes / 节点")
    nodes = [{**n, "branches": ", ".join(f"{k}: {v}" for k, v in n["branches"].items())} for n in s["nodes"]]
    out.table(nodes, ["node", "kind", "entered", "waiting", "moved", "exited", "held", "branches"])
    typer.echo("Messages / 消息")
    seen = {k for m in s["messages"] for k in m["statuses"]}
    columns = [c for c in MESSAGE_COLUMNS if c in seen] + sorted(seen - set(MESSAGE_COLUMNS))
    feedback = [{FEEDBACK_NAMES.get(k, k): v for k, v in m.get("feedback", {}).items()} for m in s["messages"]]
    heard = [c for c in FEEDBACK_COLUMNS if any(c in f for f in feedback)]
    out.table([{"node": m["node"], "total": m["total"], **m["statuses"], **f}
               for m, f in zip(s["messages"], feedback, strict=True)], ["node", "total", *columns, *heard])  # fmt: skip
    typer.echo("Conversions by branch / 分支转化")
    rows = [
        {**c, "control": "control / 对照" if c["control"] else "",
         "rate": "–" if c["rate"] is None else f"{c['rate']:.1%}"}
        for c in s["conversions"]
    ]  # fmt: skip
    out.table(rows, ["node", "branch", "control", "entered", "converted", "rate"])


@journeys_app.command("preview")
def journeys_preview(
    journey: Journey_,
    person: Annotated[int, typer.Option("--person", help="The person key whose first step is shown.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """What the journey would do for one person entering now: nodes passed, messages as they would read them,
    where they would wait. Nothing is written or sent. 预览：某人进入流程后的路径与消息（不发送）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        p = as_json("journeys.preview", call(workspace, "journeys.preview", project=project, journey=journey,
                                             person=person))  # fmt: skip
    if json_out:
        out.emit(p)
        return
    if p["refused"]:
        typer.echo(f"person {person} may not enter / 不能进入: {p['refused']}")
    out.table(p["steps"], ["node", "outcome"])
    for e in p["effects"]:
        r = e.get("rendered") or {}
        head = f"{e['node']} · {e['kind']}" + (f" · {e['channel']}" if e.get("channel") else "")
        typer.echo(head + (f" — {r.get('subject') or ''}" if r else ""))
        if r:
            typer.echo("  " + r["text"].replace("\n", "\n  "))
    if p["waiting_at"]:
        wait = f" for {p['waits_for']}" if p["waits_for"] else ""
        typer.echo(f"then waits at / 等待于 {p['waiting_at']}{wait} until {p['wake_at']}")
    elif p["exit_reason"]:
        typer.echo(f"then leaves / 离开: {p['exit_reason']}")
    for w in p["warnings"]:
        out.note(w)
