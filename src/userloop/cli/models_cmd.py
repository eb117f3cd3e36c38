"""``userloop models``: run the user models and read their stored reports.

Register on the main app with ``app.add_typer(models_app, name="models")``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

models_app = typer.Typer(
    help="User models: RFM, lifecycle, CLV, value, activity, preference, churn.", no_args_is_help=True
)

AsOf_ = Annotated[str | None, typer.Option("--as-of", help="Local day YYYY-MM-DD (default: yesterday).")]


def _day(text: str | None, timezone: str) -> date:
    from datetime import timedelta

    from userloop.core.clock import today_in

    if text is None:
        return today_in(timezone) - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"--as-of {text!r} is not a date; use YYYY-MM-DD") from exc


@models_app.command("run")
def run(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    only: Annotated[str | None, typer.Option("--only", help="Comma-separated models, e.g. rfm,lifecycle.")] = None,
    as_of: AsOf_ = None,
    clv_model: Annotated[
        str | None,
        typer.Option("--clv-model", help="CLV purchase model: auto (chosen by validation), bgnbd, paretonbd, mbgnbd."),
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", help="Days ahead for expected purchases and value (CLV).")
    ] = None,
    json_out: Json_ = False,
) -> None:
    """Run the models as of a day and store their outputs (tables model_<name>) and reports."""
    from userloop.cli.session import open_local, server_client
    from userloop.models.pipeline import clv_options, run_models

    out = Out(json_out)
    with out.errors():
        clv_options(clv_model, horizon_days)  # refuse bad options before anything runs
        client = server_client(workspace)
        if client is not None:  # the server that owns the workspace runs them
            doc = client.run_models(
                project=project, only=only, as_of=as_of, clv_model=clv_model, horizon_days=horizon_days
            )
            out.emit(doc, text=_lines(date.fromisoformat(str(doc["as_of"])), doc["models"]))
            return
        with open_local(workspace) as ws:
            info = ws.project_info(project)
            day = _day(as_of, info.timezone)
            names = None if only is None else only.split(",")
            results = run_models(
                ws.project(project), day, names, timezone=info.timezone, clv_model=clv_model, horizon_days=horizon_days
            )
        out.emit({"project": project, "as_of": day, "models": results}, text=_lines(day, results))


def _lines(day: date, results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"Models as of {day}:"]
    for name, res in results.items():
        if "error" in res:
            lines.append(f"  {name:<11} not run: {res['error']['message']} [{res['error']['code']}]")
        else:
            lines.append(f"  {name:<11} {res['users']:>10,} users  → {res['table']}  ({res['seconds']:.2f} s)")
            choice = res.get("report", {}).get("choice")
            if choice:  # the CLV purchase model and why
                lines.append(f"  {'':<11} model {choice['model']} ({choice['mode']}): {choice['reason']}")
    return lines


@models_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="Model name (rfm, lifecycle, clv, value, activity, preference, churn).")],
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run date (default: the latest).")] = None,
    json_out: Json_ = False,
) -> None:
    """Show a model's stored report (the latest run, or the run of --as-of)."""
    from userloop.cli.session import open_local, server_client
    from userloop.models.base import latest_report

    out = Out(json_out)
    with out.errors():
        client = server_client(workspace)
        if client is not None:
            doc = client.model_report(name, project=project, run_date=as_of)
        else:
            with open_local(workspace, read_only=True) as ws:
                day = None if as_of is None else _day(as_of, ws.project_info(project).timezone)
                doc = latest_report(ws.project(project), name, day)
        if json_out:
            out.emit(doc)
            return
        from userloop.cli.render import print_model_report

        print_model_report(doc)
