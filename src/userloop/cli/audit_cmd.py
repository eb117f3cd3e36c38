"""``userloop audit``: the audit log, newest first (who changed what, when, from where)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Workspace_

#: The table's columns: the reply's field → the bilingual header.
COLUMNS = {
    "id": "id",
    "at": "时间 / at (UTC)",
    "actor": "操作者 / actor",
    "action": "操作 / action",
    "project": "项目 / project",
    "target": "对象 / target",
    "address": "地址 / address",
}


def audit(
    action: Annotated[str | None, typer.Option("--action", help="Only actions starting so, e.g. 'segments.'.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor's changes (its name).")] = None,
    project: Annotated[str | None, typer.Option("-p", "--project", help="Only changes in this project.")] = None,
    since: Annotated[datetime | None, typer.Option("--since", help="From this UTC instant (included).")] = None,
    until: Annotated[datetime | None, typer.Option("--until", help="Up to this UTC instant (excluded).")] = None,
    before_id: Annotated[int | None, typer.Option("--before-id", help="Only entries older than this id.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries (1-500).")] = 50,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    json_out: Json_ = False,
) -> None:
    """Show the audit log: every change, who made it, when, before and after (newest first). 审计日志。"""
    from userloop.cli.dispatch import as_json, call
    from userloop.cli.output import Out

    out = Out(json_out)
    with out.errors():
        page = as_json("audit.list", call(workspace, "audit.list", action=action, actor=actor, project=project,
                                          since=since, until=until, before_id=before_id, limit=limit))  # fmt: skip
        if json_out:
            out.emit(page)
            return
        out.table([_row(e) for e in page["entries"]], list(COLUMNS.values()))
        if page["next_before_id"] is not None:
            out.note(f"more: --before-id {page['next_before_id']} / 更多：--before-id {page['next_before_id']}")


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    target = ", ".join(f"{k}={v}" for k, v in entry["target"].items())
    values = {
        "id": entry["id"],
        "at": str(entry["at"]).replace("T", " ")[:19],
        "actor": f"{entry['actor_name']} ({entry['actor_kind']})",
        "action": entry["action"],
        "project": entry["project"],
        "target": target,
        "address": entry["address"],
    }
    return {COLUMNS[k]: v for k, v in values.items()}
