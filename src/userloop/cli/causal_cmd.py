"""``userloop experiments did`` and ``userloop experiments uplift``: the causal estimates of :mod:`userloop.ops.causal`
(difference-in-differences with matched controls; uplift models and the top-uplift people), as readable lines or
as the API's JSON (``--json``). Registered under the ``experiments`` group by :data:`userloop.cli.main.SUBCOMMANDS`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError

Where_ = Annotated[
    list[str] | None,
    typer.Option("--where", help="Keep treatment events whose PROPERTY=VALUE (text), repeatable."),
]


def did(
    treatment: Annotated[str, typer.Option("--treatment", help="The treatment event.")] = "member_join",
    where: Where_ = None,
    outcome: Annotated[str, typer.Option("--outcome", help="The outcome event.")] = "order_paid",
    value: Annotated[str | None, typer.Option("--sum", help="Sum this numeric property instead of counting.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First local day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last local day (YYYY-MM-DD).")] = None,
    pre_days: Annotated[int, typer.Option("--pre-days", help="Days of history matched on.")] = 28,
    had_done: Annotated[list[str] | None, typer.Option("--had-done", help="Event done before joining.")] = None,
    lately: Annotated[list[str] | None, typer.Option("--did-lately", help="Event had in the pre days.")] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """The effect of a treatment event by difference-in-differences with matched controls, beside the naive
    comparisons. 双重差分（匹配对照）估计某事件（如入会）的真实效果，并与简单前后对比、会员与非会员对比并列。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    with out.errors():
        reply = call(
            workspace, "experiments.did", project=project,
            treatment={"event": treatment, "where": _filters(where or [])},
            outcome={"event": outcome, "property": value}, start=start, end=end, pre_days=pre_days,
            had_done=tuple(had_done or ()), did_lately=tuple(lately or ()),
        )  # fmt: skip
    doc = as_json("experiments.did", reply)
    if json_out:
        out.emit(doc)
        return
    for s in doc["sentences"]:
        typer.echo(f"• {s['zh']}\n  {s['en']}")
    rows = [{"comparison": name, **{k: round(doc[key][k], 5) for k in ("estimate", "low", "high")}}
            for name, key in (("DiD (matched) / 双重差分", "effect"), ("before/after / 前后对比", "before_after"),
                              ("members vs others / 会员对非会员", "members_vs_others"))]  # fmt: skip
    out.table(rows, ["comparison", "estimate", "low", "high"])
    typer.echo(f"joiners {doc['joiners']}, matched {doc['matched']}, controls {doc['controls']}, "
               f"treated days {doc['treated_days']}")  # fmt: skip


def uplift(
    treatment: Annotated[str, typer.Option("--treatment", help="The randomized treatment event.")] = "coupon_received",
    outcome: Annotated[str, typer.Option("--outcome", help="The outcome event.")] = "order_paid",
    learner: Annotated[str, typer.Option("--learner", help="t or x.")] = "x",
    feature: Annotated[list[str] | None, typer.Option("--feature", help="A profile property to learn from.")] = None,
    top: Annotated[float, typer.Option("--top", help="Share of people to target (0-1).")] = 0.2,
    limit: Annotated[int, typer.Option("--limit", help="Person ids to print at most.")] = 20,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Who is persuadable: a T- or X-learner on a randomized treatment, its Qini curve, and the top-uplift people.
    增量模型（T/X 学习器）：谁会因触达而多买，Qini 曲线，增量最高的人群。"""
    from userloop.cli.dispatch import as_json, call

    out = Out(json_out)
    fields: dict[str, Any] = {"treatment": {"event": treatment}, "outcome": {"event": outcome},
                              "learner": learner, "top_share": top, "limit": limit}  # fmt: skip
    if feature:
        fields["features"] = tuple(feature)
    with out.errors():
        reply = call(workspace, "experiments.uplift", project=project, **fields)
    doc = as_json("experiments.uplift", reply)
    if json_out:
        out.emit(doc)
        return
    typer.echo(f"{doc['learner']}-learner on {doc['drops']} drops, {doc['rows']} rows; Qini coefficient "
               f"{doc['qini_coefficient']:.5f} (> 0: better than random) / Qini 系数")  # fmt: skip
    out.table(doc["curve"], ["fraction", "qini", "uplift"])
    typer.echo(f"top {top:.0%}: {doc['top_count']} people / 增量最高的人: {', '.join(map(str, doc['top']))}")


def _filters(pairs: list[str]) -> list[dict[str, str]]:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValidationError(f"--where takes PROPERTY=VALUE, not {pair!r}", field="--where")
        out.append({"property": name, "value": value})
    return out
