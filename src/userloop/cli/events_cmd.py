"""``userloop events …``: the event registry, each event active (a person's action) or passive (sent to them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Project_, Workspace_
from userloop.cli.output import Out

events_app = typer.Typer(
    help="Events of the registry: active (a person's action) or passive (sent to the person, such as a push "
    "received). 事件：主动或被动。",
    no_args_is_help=True,
)


@events_app.command("list")
def events_list(
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List the project's events, each active or passive (passive events do not count as activity)."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        rows = as_json("events.list", call(workspace, "events.list", project=project))
        if not json_out:
            rows = [{**r, "active": "active / 主动" if r["active"] else "passive / 被动"} for r in rows]
        out.table(rows, ["event", "active", "display_zh", "display_en", "first_seen"])


@events_app.command("set-active")
def events_set_active(
    event: Annotated[str, typer.Argument(help="The event name, as registered.")],
    active: Annotated[
        bool,
        typer.Option(
            "--active/--passive",
            help="--active: a person's own action; --passive: sent to the person (left out of DAU, $any, "
            "retention, lifecycle, stickiness and last seen).",
        ),
    ] = True,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Mark an event active or passive; results computed before the change are recomputed."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = as_json("events.set_active", call(workspace, "events.set_active", project=project, event=event,
                                                  active=active))  # fmt: skip
        state = "active / 主动" if reply["active"] else "passive / 被动"
        what = "now" if reply["changed"] else "already"
        out.emit(reply, text=[f"{event} is {what} {state} (data version {reply['data_version']})"])
