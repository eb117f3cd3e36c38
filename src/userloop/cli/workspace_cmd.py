"""The workspace's own commands: ``init``, ``projects …``, ``sql``, ``rejects …``, ``properties …``,
``simulate`` and ``demo``."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.clock import DEFAULT_TIMEZONE

projects_app = typer.Typer(
    help="Projects of a workspace (each has its own data, keys and time zone).", no_args_is_help=True
)
rejects_app = typer.Typer(help="Records that were refused, with the reason (the dead letter).", no_args_is_help=True)
properties_app = typer.Typer(help="The property registry: names, types, display names.", no_args_is_help=True)


def init(
    path: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")] = Path(DEFAULT_WORKSPACE),
    timezone: Annotated[
        str, typer.Option(help="Time zone of the default project (day boundaries).")
    ] = DEFAULT_TIMEZONE,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing workspace in PATH.")] = False,
    json_out: Json_ = False,
) -> None:
    """Create a workspace with the project `default`; prints its write key and admin token once."""
    from userloop.store import Workspace

    out = Out(json_out)
    with out.errors():
        ws, secrets = Workspace.init(path, timezone=timezone, force=force)
        ws.close()
        out.emit(
            {
                "workspace": str(ws.path),
                "project": secrets.project,
                "write_key": secrets.write_key,
                "admin_token": secrets.admin_token,
            },
            text=[
                f"Workspace created: {ws.path}",
                f"  project      {secrets.project} (time zone {timezone})",
                f"  write key    {secrets.write_key}",
                f"  admin token  {secrets.admin_token}",
                "Keep the key and the token now: only their hashes are stored. / 请立即保存：系统只保存其哈希值。",
            ],
        )


@projects_app.command("create")
def projects_create(
    name: Annotated[str, typer.Argument(help="Project name: lower-case letters, digits and _.")],
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    timezone: Annotated[str, typer.Option(help="Project time zone.")] = DEFAULT_TIMEZONE,
    json_out: Json_ = False,
) -> None:
    """Create a project; prints its write key once."""
    from userloop.cli.dispatch import call

    out = Out(json_out)
    with out.errors():
        write_key = call(workspace, "projects.create", name=name, timezone=timezone).write_key
        out.emit(
            {"project": name, "timezone": timezone, "write_key": write_key},
            text=[f"Project {name} created (time zone {timezone})", f"  write key  {write_key}"],
        )


@projects_app.command("list")
def projects_list(workspace: Workspace_ = Path(DEFAULT_WORKSPACE), json_out: Json_ = False) -> None:
    """List the projects of the workspace."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        projects = as_json("projects.list", call(workspace, "projects.list"))
        rows = [{"project": p["name"], "timezone": p["timezone"], "created_at": p["created_at"]} for p in projects]
        out.table(rows, ["project", "timezone", "created_at"])


@projects_app.command("settings")
def projects_settings(
    name: Annotated[str, typer.Argument(help="The project.")] = "default",
    money_property: Annotated[
        str | None,
        typer.Option("--money-property", help="Make this NUMBER event property the purchases' amount (金额属性)."),
    ] = None,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    json_out: Json_ = False,
) -> None:
    """Show a project's settings, or change its money property (the amount models, GMV and LTV read)."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        if money_property is None:
            doc = as_json("projects.show", call(workspace, "projects.show", name=name))
        else:
            doc = as_json("projects.update", call(workspace, "projects.update", name=name,
                                                  money_property=money_property))  # fmt: skip
        rate = doc.get("rate_per_second")
        out.emit(
            doc,
            text=[
                f"project {doc['name']} (time zone {doc['timezone']})",
                f"  money property / 金额属性   {doc['money_property']}",
                f"  collector rate / 采集限速   {'none' if rate is None else f'{rate:g}/s'}",
                f"  CORS origins / 跨域来源     {', '.join(doc.get('cors_origins') or []) or 'none'}",
            ],
        )


class SqlFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def sql(
    query: Annotated[str, typer.Argument(help="One read-only query over events, users, identities, items.")],
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    json_out: Json_ = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    timeout: Annotated[float, typer.Option(help="Stop the query after this many seconds.")] = 60.0,
    limit: Annotated[int, typer.Option(help="Return at most this many rows.")] = 10_000,
) -> None:
    """Run read-only SQL. Views: events(event_id, event, distinct_id, user_id, time, …properties),
    users(user_id, …profile), identities(id_type, id_value, user_id), items(item_type, item_id, …).
    `user_id` is the resolved person; times are UTC."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        result = call(workspace, "sql.run", project=project, query=query, timeout=timeout, limit=limit)
        if csv_out:
            out.csv(result.columns, [tuple(r) for r in result.rows])
        elif json_out:
            out.emit(as_json("sql.run", result))
        else:
            out.table([dict(zip(result.columns, r, strict=True)) for r in result.rows], result.columns)
            if result.truncated:
                out.note(f"(first {limit} rows; raise --limit for more)")


@rejects_app.command("list")
def rejects_list(
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
    json_out: Json_ = False,
) -> None:
    """List refused records with the field and the reason."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    cols = ["received_at", "source", "row", "field", "reason", "raw"]
    with out.errors():
        rows = as_json("rejects.list", call(workspace, "rejects.list", project=project, limit=limit))
        if not json_out:  # a table shows the start of the raw input; JSON has what the API gives
            rows = [{**r, "raw": (r["raw"] or "")[:200]} for r in rows]
        out.table(rows, cols)


@properties_app.command("list")
def properties_list(
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """List registered properties with their table and type."""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    cols = ["table", "name", "type", "display_zh", "display_en", "first_seen"]
    with out.errors():
        out.table(as_json("properties.list", call(workspace, "properties.list", project=project)), cols)


def simulate(
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    users: Annotated[int, typer.Option(help="Number of simulated people.")] = 100_000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    end_date: Annotated[str | None, typer.Option(help="Last simulated day, YYYY-MM-DD (default: yesterday).")] = None,
    json_out: Json_ = False,
) -> None:
    """Simulate a fresh-food community O2O business and load it through the ingest layer."""
    from userloop.cli.session import open_local
    from userloop.sim.run import run_simulation

    out = Out(json_out)
    with out.errors(), open_local(workspace) as ws:
        end = date.fromisoformat(end_date) if end_date else None
        with out.progress("simulating and loading", total=days, unit="day") as advance:
            report = run_simulation(ws, project, users=users, days=days, seed=seed, end_date=end, progress=advance)
        out.emit(report.as_dict(), text=report.lines())


def demo(
    workspace: Workspace_ = Path("demo-workspace"),
    users: Annotated[int, typer.Option(help="Number of simulated people.")] = 100_000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after loading (no service).")] = False,
    host: Annotated[str, typer.Option(help="Address to serve on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to serve on; a taken port is refused before any loading.")] = 8000,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing workspace.")] = False,
    json_out: Json_ = False,
) -> None:
    """Create a workspace, simulate a business, load it, and show what to do next."""
    from userloop.cli.demo import run_demo

    out = Out(json_out)
    with out.errors():
        run_demo(out, workspace, users=users, days=days, seed=seed, force=force, serve=not no_serve, host=host,
                 port=port)  # fmt: skip
