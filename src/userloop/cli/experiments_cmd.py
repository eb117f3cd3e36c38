"""``userloop experiments …``: effect regression (效果回归) from the command line: the plan before launch (its expected
effect given or rehearsed), the rehearsal of a journey on a simulated business, the report after launch (a journey,
or a standalone experiment run elsewhere), and the standalone experiments seen.

Every command runs an operation of :mod:`userloop.ops.experiments` through :mod:`userloop.cli.dispatch`; ``--json``
prints what the API answers, ``--html FILE`` writes the report as a self-contained page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

experiments_app = typer.Typer(
    help="Experiments (效果回归): plan before launch, rehearse on a simulated business, report after launch, "
    "standalone experiments seen.",
    no_args_is_help=True,
)

AsOf_ = Annotated[
    str | None, typer.Option("--as-of", help="The instant planned or reported, ISO 8601 (default now; UTC).")
]
Html_ = Annotated[Path | None, typer.Option("--html", help="Also write the report as an HTML page here.")]


@experiments_app.command("plan")
def plan_cmd(
    goal: Annotated[str, typer.Option("--goal", help="The goal event (e.g. order_paid).")],
    segment: Annotated[
        int | None, typer.Option("--segment", help="The audience's segment id (default everyone).")
    ] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", help="A channel to reach on (repeat).")] = None,
    window_days: Annotated[int, typer.Option("--window-days", help="The goal's window in days.")] = 7,
    treatment_share: Annotated[float, typer.Option("--treatment-share", help="Share of people treated.")] = 0.5,
    control_share: Annotated[float, typer.Option("--control-share", help="Share of people held out.")] = 0.5,
    days: Annotated[int, typer.Option("--days", help="Days the test may run.")] = 14,
    daily_people: Annotated[
        float | None, typer.Option("--daily-people", help="People entering a day (default: all at once).")
    ] = None,
    expected_effect: Annotated[
        float | None, typer.Option("--expected-effect", help="Expected relative lift, e.g. 0.05 (a rehearsal's).")
    ] = None,
    rehearse: Annotated[
        str | None,
        typer.Option(
            "--rehearse",
            help="Rehearse this journey file on a simulated business and take its estimated "
            "lift as the expected effect.",
        ),
    ] = None,
    rehearse_users: Annotated[int, typer.Option("--rehearse-users", help="Simulated people of the rehearsal.")] = 1_000,
    rehearse_days: Annotated[int, typer.Option("--rehearse-days", help="Simulated days of the rehearsal.")] = 21,
    as_of: AsOf_ = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Before launch: reach per channel, the goal's baseline, power and minimum detectable effect, duration; the
    expected effect given or from a rehearsal.
    上线前评估：各渠道可触达人数、目标基线、检验功效与最小可检测效果、所需时长；预期效果可来自预演。"""
    from userloop.cli.dispatch import as_json, call
    from userloop.cli.journeys_cmd import read_json

    out = Out(json_out)
    with out.errors():
        rehearsal = None
        if rehearse is not None:
            rehearsal = {"journey": read_json(rehearse, "journey"), "users": rehearse_users, "days": rehearse_days}
        found = call(workspace, "experiments.plan", project=project, goal=goal, segment=segment,
                     channels=channel or [], window_days=window_days, treatment_share=treatment_share,
                     control_share=control_share, days=days, daily_people=daily_people,
                     expected_effect=expected_effect, rehearse=rehearsal, as_of=as_of)  # fmt: skip
    doc = as_json("experiments.plan", found)
    if json_out:
        out.emit(doc)
        return
    typer.echo(f"Plan / 上线前评估 — goal {doc['goal']}, audience {doc['audience']:,}, {doc['as_of']} UTC")
    for s in doc["sentences"]:
        typer.echo(f"• {s['zh']}\n  {s['en']}")
    if doc["reach"]:
        typer.echo("Reach / 触达")
        out.table(doc["reach"], ["channel", "kind", "audience", "global_control", "no_address", "unreachable",
                                 "unsubscribed", "capped", "quiet_deferred", "quiet_dropped", "reachable"])  # fmt: skip
    typer.echo("Power / 检验功效")
    out.table([_rounded(doc["power"])], [k for k in doc["power"] if doc["power"][k] is not None])


@experiments_app.command("rehearse")
def rehearse_cmd(
    journey: Annotated[str, typer.Argument(help="The journey's JSON file ('-': standard input).")],
    users: Annotated[int, typer.Option("--users", help="Simulated people.")] = 1_000,
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 21,
    seed: Annotated[int, typer.Option("--seed", help="The simulator's seed.")] = 1,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Rehearse a journey on a simulated business: per arm the measured effect beside the simulator's truth.
    在模拟业务上预演旅程：各组实测效果与模拟器中的真实效果并列。"""
    from userloop.cli.dispatch import as_json, call
    from userloop.cli.journeys_cmd import read_json

    out = Out(json_out)
    with out.errors():
        doc = read_json(journey, "journey")
        found = call(workspace, "experiments.rehearse", project=project, journey=doc, users=users, days=days,
                     seed=seed)  # fmt: skip
    d = as_json("experiments.rehearse", found)
    if json_out:
        out.emit(d)
        return
    typer.echo(f"Rehearsal / 预演 — journey {d['journey']}, simulated business / 模拟业务: {d['users']:,} people, "
               f"{d['days']} days, seed {d['seed']}")  # fmt: skip
    for s in d["sentences"]:
        typer.echo(f"• {s['zh']}\n  {s['en']}")
    typer.echo("Arms / 各组")
    out.table(
        [_rounded(a) for a in d["arms"]],
        ["arm", "control", "people", "reached", "conversions", "conversion_rate", "revenue_per_person"],
    )
    typer.echo("Effects against control / 与对照组比较 (absolute; true = the simulator's / 模拟器真实效果)")
    out.table([_rounded(e) for e in d["effects"]],
              ["arm", "metric", "estimate", "low", "high", "p_value", "sequential_low", "sequential_high",
               "true_effect", "covered"])  # fmt: skip
    s = d["srm"]
    typer.echo("Sample ratio / 样本比例")
    out.table([{**_rounded(s), "arms": "/".join(s["arms"]), "counts": "/".join(map(str, s["counts"])),
                "weights": "/".join(f"{w:g}" for w in s["weights"])}], ["arms", "counts", "weights", "p_value",
                                                                       "alert"])  # fmt: skip


@experiments_app.command("report")
def report_cmd(
    journey: Annotated[str | None, typer.Argument(help="The journey's id or name (or use --experiment).")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="A standalone experiment's name, as its exposures carry it.")
    ] = None,
    goal: Annotated[str | None, typer.Option("--goal", help="The goal event of a standalone experiment.")] = None,
    window_days: Annotated[int, typer.Option("--window-days", help="The goal's window after exposure.")] = 7,
    control: Annotated[str, typer.Option("--control", help="A standalone experiment's control arm.")] = "control",
    exposure_event: Annotated[
        str, typer.Option("--exposure-event", help="The event that exposes a person.")
    ] = "$experiment_exposure",
    variant_property: Annotated[str, typer.Option("--variant-property", help="The arm's property.")] = "variant",
    html: Html_ = None,
    as_of: AsOf_ = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """After launch: a journey's branches, nodes and strategy sets, or a standalone experiment, against control.
    上线后分析：旅程各分支、节点、策略集合或独立实验与对照组比较（提升、置信区间、护栏、SRM、权益回报）。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        if (journey is None) == (experiment is None):
            raise ValidationError("name a journey, or a standalone experiment with --experiment (not both)",
                                  field="journey")  # fmt: skip
        if journey is not None:
            op = "experiments.journey_report"
            found = call(workspace, op, project=project, journey=journey, as_of=as_of)
        else:
            if goal is None:
                raise ValidationError("a standalone experiment's report needs --goal", field="goal")
            op = "experiments.report"
            found = call(workspace, op, project=project, name=experiment, goal=goal, window_days=window_days,
                         control=control, exposure_event=exposure_event, variant_property=variant_property,
                         as_of=as_of)  # fmt: skip
        if html is not None:
            _write_page(found, html)
    doc = as_json(op, found)
    if json_out:
        out.emit(doc)
        return
    _print(out, doc)
    if html is not None:
        typer.echo(f"HTML written to {html} / 已写入 HTML")


@experiments_app.command("list")
def list_cmd(
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Standalone experiments exposed so far, with their arms. 已曝光的独立实验及其分组。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        found = call(workspace, "experiments.list", project=project)
    doc = as_json("experiments.list", found)
    if json_out:
        out.emit(doc)
        return
    rows = [{"name": d["name"], "variants": ", ".join(f"{v['variant']} {v['people']:,}" for v in d["variants"]),
             "first_exposure": d["first_exposure"], "last_exposure": d["last_exposure"]} for d in doc]  # fmt: skip
    out.table(rows, ["name", "variants", "first_exposure", "last_exposure"])


def _write_page(found: Any, path: Path) -> None:
    from userloop.experiment.report_page import page

    try:
        path.write_text(page(found), encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write the HTML page {str(path)!r}: {exc.strerror}", field="html") from exc


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def _print(out: Out, d: dict[str, Any]) -> None:
    typer.echo(f"Report / 效果分析 — {d['subject']} ({d['kind']}), goal {d['goal']}, {d['as_of']} UTC")
    for s in d["sentences"]:
        typer.echo(f"• {s['zh']}\n  {s['en']}")
    typer.echo("Arms / 各组")
    out.table([_rounded(a) for a in d["arms"]],
              ["experiment", "variant", "global_control", "people", "conversions", "conversion_rate",
               "revenue_per_person", "cost_per_person", "unsubscribed", "complained", "churned"])  # fmt: skip
    typer.echo("Comparisons / 对比 (absolute)")
    rows = [_rounded(c) for c in d["comparisons"] if c["scale"] == "absolute"]
    out.table(rows, ["experiment", "treatment", "against", "metric", "estimate", "low", "high", "p_value",
                     "p_adjusted"])  # fmt: skip
    if d["returns"]:
        typer.echo("Return on benefits / 权益回报")
        out.table([_rounded(r) for r in d["returns"]],
                  ["experiment", "treatment", "against", "revenue_per_person_added", "cost_per_person_added",
                   "return_per_cost"])  # fmt: skip
    if d["srm"]:
        typer.echo("Sample ratio / 样本比例")
        out.table([{**_rounded(s), "arms": "/".join(s["arms"]), "counts": "/".join(map(str, s["counts"])),
                    "weights": "/".join(f"{w:g}" for w in s["weights"])} for s in d["srm"]],
                  ["experiment", "arms", "counts", "weights", "p_value", "alert"])  # fmt: skip
    for s in d["notes"]:
        typer.echo(f"note: {s['zh']}\n      {s['en']}")
