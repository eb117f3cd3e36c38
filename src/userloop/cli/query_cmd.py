"""``userloop query``, ``userloop insights …`` and ``userloop dashboard …``: analyses from the command line.

Register on the main app with :func:`register`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from userloop.cli.dispatch import as_json, call, session
from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

insights_app = typer.Typer(help="Saved analyses: save, list, show, run, update, delete.", no_args_is_help=True)
dashboard_app = typer.Typer(help="Ready-made dashboards.", no_args_is_help=True)

Timeout_ = Annotated[float, typer.Option("--timeout", help="Stop the analysis after this many seconds.")]
Definition_ = Annotated[str, typer.Argument(help="A definition file (JSON), or - for standard input.")]


def read_definition(source: str) -> dict[str, Any]:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read the definition {source!r}: {exc.strerror}") from exc
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the definition {source!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValidationError("a definition is a JSON object with a 'kind'")
    return doc


def query(
    definition: Definition_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    timeout: Timeout_ = 60.0,
    explain: Annotated[bool, typer.Option("--explain", help="Also print the SQL each statement ran.")] = False,
    json_out: Json_ = False,
) -> None:
    """Run an analysis definition: trends, funnel, retention, paths, lifecycle, stickiness, distribution,
    interval, attribution, ltv, drilldown. See docs/analytics.md for every kind's fields."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(definition)
        reply = call(workspace, "query.run", project=project, definition=doc, timeout=timeout, explain=explain)
        show_result(out, as_json("query.run", reply))


@insights_app.command("list")
def insights_list(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    dashboard: Annotated[str | None, typer.Option(help="Only this dashboard's insights.")] = None,
    json_out: Json_ = False,
) -> None:
    """List saved analyses."""
    out = Out(json_out)
    with out.errors():
        rows = call(workspace, "insights.list", project=project, dashboard=dashboard)
        out.table(as_json("insights.list", rows), ["id", "name", "kind", "dashboard", "updated_at"])


@insights_app.command("save")
def insights_save(
    name: Annotated[str, typer.Argument(help="A name for the analysis.")],
    definition: Definition_,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    description: Annotated[str, typer.Option(help="What it shows and why.")] = "",
    dashboard: Annotated[str | None, typer.Option(help="Put it on this dashboard.")] = None,
    json_out: Json_ = False,
) -> None:
    """Check a definition and save it under a name."""
    out = Out(json_out)
    with out.errors():
        doc = read_definition(definition)
        row = call(workspace, "insights.save", project=project, name=name, definition=doc,
                   description=description, dashboard=dashboard)  # fmt: skip
        out.emit(as_json("insights.save", row), text=[f"saved insight {row.id}: {row.name} ({row.kind})"])


@insights_app.command("show")
def insights_show(
    insight_id: Annotated[int, typer.Argument(help="The insight's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Print a saved analysis and its definition."""
    out = Out(json_out)
    with out.errors():
        row = call(workspace, "insights.get", project=project, insight_id=insight_id)
        pretty = orjson.dumps(row.definition, option=orjson.OPT_INDENT_2).decode()
        out.emit(as_json("insights.get", row), text=[f"{row.id}: {row.name} ({row.kind})", pretty])


@insights_app.command("run")
def insights_run(
    insight_id: Annotated[int, typer.Argument(help="The insight's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    timeout: Timeout_ = 60.0,
    json_out: Json_ = False,
) -> None:
    """Run a saved analysis."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "insights.run", project=project, insight_id=insight_id, timeout=timeout)
        show_result(out, as_json("insights.run", reply))


@insights_app.command("update")
def insights_update(
    insight_id: Annotated[int, typer.Argument(help="The insight's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    definition: Annotated[str | None, typer.Option("--definition", help="A new definition file.")] = None,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    dashboard: Annotated[str | None, typer.Option(help="Move it to this dashboard ('' for none).")] = None,
    json_out: Json_ = False,
) -> None:
    """Change a saved analysis."""
    out = Out(json_out)
    with out.errors():
        doc = None if definition is None else read_definition(definition)
        row = call(workspace, "insights.update", project=project, insight_id=insight_id, name=name,
                   definition=doc, description=description, dashboard=dashboard)  # fmt: skip
        out.emit(as_json("insights.update", row), text=[f"updated insight {row.id}: {row.name} ({row.kind})"])


@insights_app.command("delete")
def insights_delete(
    insight_id: Annotated[int, typer.Argument(help="The insight's id.")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Delete a saved analysis."""
    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "insights.delete", project=project, insight_id=insight_id)
        out.emit(as_json("insights.delete", reply), text=[f"deleted insight {insight_id}"])


@dashboard_app.command("core-metrics")
def core_metrics(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    last: Annotated[int, typer.Option(help="Days of history for the daily panels (weekly ones use ≥ 8 weeks).")] = 30,
    save: Annotated[
        bool, typer.Option("--save", help="Save the panels as insights on dashboard core_metrics.")
    ] = False,
    json_out: Json_ = False,
) -> None:
    """Run the core-metrics dashboard (new users, DAU/MAU, retention, conversion, repurchase, GMV per community,
    first-order categories, channel quality)."""
    from userloop.query.dashboards.core_metrics import DASHBOARD

    out = Out(json_out)
    with out.errors(), session(workspace) as run:
        if save:
            rows = [
                as_json("insights.save", run("insights.save", project=project, name=p["title_en"],
                        definition=p["definition"], description=p["title_zh"], dashboard=DASHBOARD))
                for p in as_json("dashboards.core_metrics", run("dashboards.core_metrics", project=project, last=last))
            ]  # fmt: skip
            out.emit(rows, text=[f"saved {len(rows)} insights on dashboard {DASHBOARD}"])
            return
        doc = as_json("dashboards.core_metrics.run", run("dashboards.core_metrics.run", project=project, last=last))
        if json_out:
            out.emit(doc)
            return
        from userloop.cli.render import print_dashboard

        print_dashboard(doc)


def show_result(out: Out, doc: dict[str, Any]) -> None:
    """JSON as is; text as tables that fit the terminal (``userloop.cli.render``), warnings on stderr."""
    if out.json:
        out.emit(doc)
        return
    from userloop.cli.render import print_result

    print_result(doc)
    for warning in doc.get("warnings", []):
        out.note(f"warning: {warning}")
    if doc.get("sql"):
        for name, text in doc["sql"].items():
            typer.echo(f"-- {name}\n{text};")


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.add_typer(insights_app, name="insights")
    app.add_typer(dashboard_app, name="dashboard")
