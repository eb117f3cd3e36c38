"""``userloop import events|users|items``: files into a project, through the server that owns the workspace
when one runs, else in process; either way the summary says what was accepted, refused (and where the rejects
went) and how many were duplicates."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from userloop.cli.options import DEFAULT_WORKSPACE, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import UserloopError

if TYPE_CHECKING:
    from userloop.api.client import ServerClient
    from userloop.ingest.files import ColumnMapping
    from userloop.ingest.files import Kind as ImportKind
    from userloop.ops import OpContext
    from userloop.ops.imports import Imported, ImportFiles

import_app = typer.Typer(
    help="Import events, users or items from JSON lines, CSV or Parquet files (gzip accepted).", no_args_is_help=True
)


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
        progress = out.progress(f"importing {kind}", total=None, unit="record")
        with progress as advance, session(workspace, writes=True) as run:

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
    """Each file through the server's import route, reported as a local import reports it: the file named as
    given, and the rejects in ``--rejects`` when given (the server writes them in the workspace; the CLI, on
    the same machine and as the same user, copies them where asked)."""
    replies: list[Imported] = []
    copied = False
    for path in req.files:
        reply = client.import_file(req, path)
        reply.files = [str(path)]
        if req.rejects is not None and reply.rejects_file:
            reply.rejects_file = _copy_rejects(Path(reply.rejects_file), req.rejects, append=copied)
            copied = True
        replies.append(reply)
    return replies


def _copy_rejects(source: Path, target: Path, *, append: bool) -> str:
    """The server's rejects file ``source`` copied to ``target`` (appended for a second file of one import, as
    a local import writes the rejects of all its files to one file); ``source`` when it cannot be read here."""
    try:
        data = source.read_bytes()
    except OSError:
        return str(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab" if append else "wb") as f:
        f.write(data)
    return str(target)


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
    from userloop.ingest.files import ColumnMapping

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
    from userloop.ingest.files import ColumnMapping

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
    from userloop.ingest.files import ColumnMapping

    mapping = ColumnMapping(
        item_id=item_id_column,
        item_type=item_type_column,
        default_item_type=item_type,
        rename=_pairs(rename),
        ignore=tuple(ignore or ()),
    )
    _import("items", files, workspace, project, json_out, mapping, rejects)
