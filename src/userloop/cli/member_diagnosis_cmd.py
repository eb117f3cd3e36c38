"""``userloop members diagnose PROGRAMME``: the member diagnosis (会员诊断) as readable tables, as JSON (``--json``,
what the API answers) or as a self-contained HTML page (``--html FILE``).

It runs the operation ``members.diagnosis`` (:mod:`userloop.ops.member_diagnosis`) through
:mod:`userloop.cli.dispatch`, and is registered under the ``members`` group by :data:`userloop.cli.main.SUBCOMMANDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from userloop.cli.options import DEFAULT_WORKSPACE_PATH, Json_, Project_, Workspace_
from userloop.cli.output import Out
from userloop.core.errors import ValidationError


def diagnose(
    programme: Annotated[str, typer.Argument(help="The programme's name or id.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the report as an HTML page here.")] = None,
    months: Annotated[int, typer.Option("--months", help="Calendar months to look back over.")] = 12,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The instant diagnosed, ISO 8601 (default now; UTC when it names no zone)."),
    ] = None,
    workspace: Workspace_ = DEFAULT_WORKSPACE_PATH,
    project: Project_ = "default",
    json_out: Json_ = False,
) -> None:
    """Diagnose a member programme: levels and flows, growth sources, points liability, benefits, members vs
    non-members. 会员诊断：等级分布与流转、成长值来源、积分负债、权益使用、会员与非会员对比。"""
    from userloop.cli.dispatch import as_json, call
    from userloop.membership.diagnosis_types import Diagnosis

    out = Out(json_out)
    with out.errors():
        found: Diagnosis = call(
            workspace, "members.diagnosis", project=project, name=programme, months=months, as_of=as_of
        )
        if html is not None:
            _write_page(found, html)
    doc = as_json("members.diagnosis", found)
    if json_out:
        out.emit(doc)
        return
    _print(out, doc)
    if html is not None:
        typer.echo(f"HTML written to {html} / 已写入 HTML")


def _write_page(found: Any, path: Path) -> None:
    from userloop.membership.diagnosis_report import page

    try:
        path.write_text(page(found), encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot write the HTML page {str(path)!r}: {exc.strerror}", field="html") from exc


def _print(out: Out, d: dict[str, Any]) -> None:
    typer.echo(f"{d['title_zh']} · {d['title_en']} ({d['programme']}) — {d['as_of']} UTC")
    for s in d["sentences"]:
        typer.echo(f"• {s['zh']}\n  {s['en']}")
    names = [f"{lv['title_zh']}/{lv['title_en']}" for lv in d["levels"]]
    months = [{"month": h["period"], **dict(zip(names, h["counts"], strict=True)), "total": h["total"]}
              for h in d["history"]]  # fmt: skip
    _titled(out, "Levels at month ends / 月末等级分布", months, ["month", *names, "total"])
    _titled(out, "Flows / 等级流转", d["flows"], ["period", "joins", "upgrades", "downgrades", "stayed", "leaves"])
    growth = [{**g, "share": f"{g['share']:.1%}"} for g in d["growth"]]
    _titled(out, "Growth sources / 成长值来源", growth, ["source", "title_zh", "amount", "entries", "members", "share"])
    wallets = [{**w, "breakage": "" if w["breakage"] is None else f"{w['breakage']:.1%}"} for w in d["liability"]]
    _titled(out, "Points liability / 积分负债", wallets,
            ["wallet", "spendable", "pending", "liability_yuan", "expiring_30", "expiring_90", "breakage"])  # fmt: skip
    benefits = [{**b, "level": names[b["level"]] if b["level"] < len(names) else b["level"],
                 "redemption_rate": "" if b["redemption_rate"] is None else f"{b['redemption_rate']:.1%}"}
                for b in d["benefits"]]  # fmt: skip
    _titled(out, "Benefits by level / 各等级权益", benefits,
            ["level", "benefit", "grants", "people", "redeemed", "redemption_rate"])  # fmt: skip
    rows = [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in d["comparison"]]
    _titled(out, "Members vs non-members / 会员与非会员", rows,
            ["group", "days", "people", "spend_per_person", "orders_per_person", "active_days_per_person",
             "buyers_share"])  # fmt: skip
    for s in d["notes"]:
        typer.echo(f"note: {s['zh']}\n      {s['en']}")


def _titled(out: Out, title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    typer.echo(title)
    out.table(rows, columns)
