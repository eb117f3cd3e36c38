"""The ``userloop`` command line.

Every command takes ``-w/--workspace`` (or ``USERLOOP_WORKSPACE``) and prints JSON with ``--json``; the JSON
shapes are documented in docs/cli.md and kept stable. Errors meant for the user exit with status 2 and one
line that says what to do; with ``--json`` they print ``{"error": {"code": …, "message": …}}``.
"""

from __future__ import annotations

import os
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from userloop import __version__
from userloop.cli.models_cmd import models_app
from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Project_, Workspace_
from userloop.cli.output import Out, report
from userloop.cli.profile_cmd import register as register_profile_commands
from userloop.cli.query_cmd import register as register_query_commands
from userloop.cli.serve_cmd import register as register_service_commands
from userloop.core.clock import DEFAULT_TIMEZONE
from userloop.core.errors import UserloopError
from userloop.ingest.files import ColumnMapping
from userloop.ingest.files import Kind as ImportKind

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.ops import OpContext
    from userloop.ops.imports import Imported, ImportFiles

app = typer.Typer(
    name="userloop",
    help="userloop — self-hosted user operations: collect → understand → segment → act → measure → iterate.\n\n"
    "用户运营平台：采集 → 洞察 → 分群 → 触达 → 度量 → 迭代。",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
projects_app = typer.Typer(
    help="Projects of a workspace (each has its own data, keys and time zone).", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import events, users or items from JSON lines, CSV or Parquet files (gzip accepted).", no_args_is_help=True
)
rejects_app = typer.Typer(help="Records that were refused, with the reason (the dead letter).", no_args_is_help=True)
properties_app = typer.Typer(help="The property registry: names, types, display names.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(import_app, name="import")
app.add_typer(rejects_app, name="rejects")
app.add_typer(properties_app, name="properties")
register_service_commands(app)
register_query_commands(app)
register_profile_commands(app)
app.add_typer(models_app, name="models")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"userloop {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """userloop command line."""


@app.command()
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


class TimeUnit(StrEnum):
    auto = "auto"
    s = "s"
    ms = "ms"


def _import(
    kind: ImportKind,
    files: list[Path],
    workspace: Path,
    project: str,
    json_out: bool,
    mapping: ColumnMapping,
    rejects: Path | None,
    max_past_days: int | None = None,
) -> None:
    """Import ``files``: through the server that owns the workspace (a request per file), else in process."""
    from userloop.cli.dispatch import build, session
    from userloop.ops.imports import ImportFiles, import_files

    out = Out(json_out)
    with out.errors():
        fields = {"project": project, "kind": kind, "files": files, "mapping": mapping, "rejects": rejects,
                  "max_past_days": max_past_days}  # fmt: skip
        req = build(ImportFiles, fields)
        with out.progress(f"importing {kind}", total=None) as advance, session(workspace, writes=True) as run:

            def local(ctx: OpContext, req: ImportFiles) -> list[Imported]:
                return [import_files(ctx, req, progress=advance)]

            replies = run.transfer(local, req, _import_remote)
        for r in replies:
            text = [
                f"Imported {kind} from {len(r.files)} file(s) in {r.seconds:.1f} s / 导入完成",
                f"  accepted     {r.accepted:>12,}",
                f"  rejected     {r.rejected:>12,}" + (f"   → {r.rejects_file}" if r.rejects_file else ""),
                f"  duplicates   {r.duplicates:>12,}",
                f"  new properties {', '.join(r.new_properties) or 'none'}",
            ]
            out.emit(r.model_dump(mode="json"), text=text)


def _import_remote(client: ServerClient, req: ImportFiles) -> list[Imported]:
    return [client.import_file(req, path) for path in req.files]


def _pairs(values: list[str] | None) -> dict[str, str]:
    pairs = {}
    for item in values or []:
        old, sep, new = str(item).partition("=")
        if not sep or not old or not new:
            raise UserloopError(f"--rename takes OLD=NEW, got {item!r}", code="invalid")
        pairs[old] = new
    return pairs


Files_ = Annotated[
    list[Path], typer.Argument(help="Files: .jsonl/.json/.ndjson, .csv/.tsv or .parquet, optionally .gz.")
]
UserCol = Annotated[str, typer.Option("--user-column", help="CSV/Parquet: column holding the user's id.")]
EventCol = Annotated[str, typer.Option("--event-column", help="CSV/Parquet: column holding the event name.")]
TimeCol = Annotated[str, typer.Option("--time-column", help="CSV/Parquet: column holding the time.")]
IdCol = Annotated[
    str | None,
    typer.Option(
        "--event-id-column",
        help="CSV/Parquet: dedupe id column (default: event_id if present, else a hash of the row).",
    ),
]
Login = Annotated[bool, typer.Option("--login-ids", help="The user column holds login ids (not device ids).")]
Unit = Annotated[
    TimeUnit, typer.Option("--time-unit", help="Numeric times: epoch seconds, milliseconds, or auto-detect.")
]
Rename = Annotated[list[str] | None, typer.Option("--rename", help="Rename a column: OLD=NEW (repeatable).")]
Ignore = Annotated[list[str] | None, typer.Option("--ignore", help="Leave a column out (repeatable).")]
Rejects = Annotated[
    Path | None, typer.Option("--rejects", help="Where to write rejects (JSON lines). Default: WORKSPACE/rejects/.")
]
PastDays = Annotated[
    int | None,
    typer.Option("--max-past-days", help="Accept events up to this many days old (default: the project's policy)."),
]


@import_app.command("events")
def import_events(
    files: Files_,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    user_column: UserCol = "distinct_id",
    event_column: EventCol = "event",
    time_column: TimeCol = "time",
    event_id_column: IdCol = None,
    login_ids: Login = False,
    time_unit: Unit = TimeUnit.auto,
    rename: Rename = None,
    ignore: Ignore = None,
    rejects: Rejects = None,
    max_past_days: PastDays = None,
    json_out: Json_ = False,
) -> None:
    """Import events. JSON lines use the Sensors Analytics record format (any record type); CSV and Parquet
    rows are mapped with the column options, and every other column becomes an event property."""
    mapping = ColumnMapping(
        user=user_column,
        event=event_column,
        time=time_column,
        event_id=event_id_column,
        login=login_ids,
        time_unit=time_unit.value,
        rename=_pairs(rename),
        ignore=tuple(ignore or ()),
    )
    _import("events", files, workspace, project, json_out, mapping, rejects, max_past_days)


@import_app.command("users")
def import_users(
    files: Files_,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    user_column: UserCol = "distinct_id",
    login_ids: Login = False,
    rename: Rename = None,
    ignore: Ignore = None,
    rejects: Rejects = None,
    json_out: Json_ = False,
) -> None:
    """Import user profiles (each row is a profile_set); every other column becomes a profile property."""
    mapping = ColumnMapping(user=user_column, login=login_ids, rename=_pairs(rename), ignore=tuple(ignore or ()))
    _import("users", files, workspace, project, json_out, mapping, rejects)


@import_app.command("items")
def import_items(
    files: Files_,
    workspace: Workspace_ = Path(DEFAULT_WORKSPACE),
    project: Project_ = "default",
    item_id_column: Annotated[str, typer.Option("--item-id-column", help="Column holding the item id.")] = "item_id",
    item_type_column: Annotated[
        str, typer.Option("--item-type-column", help="Column holding the item type.")
    ] = "item_type",
    item_type: Annotated[
        str | None, typer.Option("--item-type", help="Item type for every row (when the file has no such column).")
    ] = None,
    rename: Rename = None,
    ignore: Ignore = None,
    rejects: Rejects = None,
    json_out: Json_ = False,
) -> None:
    """Import items (products, coupons, stores…): each row is an item_set."""
    mapping = ColumnMapping(
        item_id=item_id_column,
        item_type=item_type_column,
        default_item_type=item_type,
        rename=_pairs(rename),
        ignore=tuple(ignore or ()),
    )
    _import("items", files, workspace, project, json_out, mapping, rejects)


class SqlFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
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


@app.command()
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
        with out.progress("simulating", total=None) as advance:
            report = run_simulation(ws, project, users=users, days=days, seed=seed, end_date=end, progress=advance)
        out.emit(report.as_dict(), text=report.lines())


@app.command()
def demo(
    workspace: Workspace_ = Path("demo-workspace"),
    users: Annotated[int, typer.Option(help="Number of simulated people.")] = 100_000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 180,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop after loading (no service).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing workspace.")] = False,
    json_out: Json_ = False,
) -> None:
    """Create a workspace, simulate a business, load it, and show what to do next."""
    from userloop.cli.demo import run_demo

    out = Out(json_out)
    with out.errors():
        run_demo(out, workspace, users=users, days=days, seed=seed, force=force, serve=not no_serve)


def main() -> None:
    import sys

    from userloop.core.permissions import restrict_permissions

    restrict_permissions()  # exports and rejects files the CLI writes are its user's alone, server or not
    try:
        app()
    except UserloopError as exc:  # a command outside out.errors(): still one clear line, or the body with --json
        report(exc, json_out="--json" in sys.argv[1:])
        sys.exit(2)


if __name__ == "__main__":
    os.environ.setdefault("USERLOOP_CLI", "1")
    main()
