"""``userloop models``: run the user models and read their stored reports.

Register on the main app with ``app.add_typer(models_app, name="models")``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out

models_app = typer.Typer(
    help="User models: RFM, lifecycle, CLV, value, activity, preference, churn.", no_args_is_help=True
)

AsOf_ = Annotated[str | None, typer.Option("--as-of", help="Local day YYYY-MM-DD (default: yesterday).")]


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
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = call(workspace, "models.run", project=project, only=only, as_of=as_of, clv_model=clv_model,
                     horizon_days=horizon_days)  # fmt: skip
        out.emit(as_json("models.run", reply), text=_lines(reply.as_of, reply.models))


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
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        doc = as_json("models.report", call(workspace, "models.report", project=project, name=name, run_date=as_of))
        if json_out:
            out.emit(doc)
            return
        from userloop.cli.render import print_model_report

        print_model_report(doc)
