"""Drill-down results as text: the sentence that says what moved (Chinese and English), the two periods with
their values and the change, then per dimension the values ranked with current, baseline, change, % change and
contribution, the explanatory values marked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

MARK = "◀"


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    from rich.text import Text

    summary = result.get("summary") or {}
    current, baseline = result.get("current") or {}, result.get("baseline") or {}
    out: list[RenderableType] = [title("下钻", "drill-down")]
    out += [Text(summary[k]) for k in ("zh", "en") if summary.get(k)]
    out.append(
        facts(
            [
                (f"本期 / current {current.get('start')}–{current.get('end')}", fmt.number(current.get("value"))),
                (f"基期 / baseline {baseline.get('start')}–{baseline.get('end')}", fmt.number(baseline.get("value"))),
                (
                    "变化 / change",
                    f"{fmt.number(result.get('change'), signed=True)} "
                    f"({fmt.pct(result.get('change_pct'), signed=True)})",
                ),
            ]
        )
    )
    for dim in result.get("dimensions", []):
        out += dimension(dim, console)
    if any(d.get("explanatory") for d in result.get("dimensions", [])):
        out.append(note(f"{MARK} 解释变化的值 / explains the change"))
    return out


def dimension(dim: dict[str, Any], console: Console) -> list[RenderableType]:
    """One dimension: whether it is a root cause, how much it explains, and its values."""
    verdict = "根因 / root cause" if dim.get("root_cause") else "非根因 / not a root cause"
    explains = fmt.pct(dim.get("explains"))
    head = f"{dim['property']} ({dim.get('source')}) — {verdict}" + (
        f", 解释 / explains {explains}" if explains else ""
    )
    explanatory = set(dim.get("explanatory") or [])
    columns = [
        name(fmt.head("值", "value"), width=24),
        Col(fmt.head("本期", "current")),
        Col(fmt.head("基期", "baseline")),
        Col(fmt.head("变化", "change")),
        Col(fmt.head("变化率", "% change")),
        Col(fmt.head("贡献", "contribution")),
    ]
    rows = []
    for v in dim.get("values", []):
        label = str(v["label"]) + (f" {MARK}" if v["label"] in explanatory else "")
        rows.append(
            [
                label,
                fmt.number(v["current"]),
                fmt.number(v["baseline"]),
                fmt.number(v["change"], signed=True),
                fmt.pct(v.get("change_pct"), signed=True),
                fmt.pct(v.get("contribution")),
            ]
        )
    return [title(head), *fit(console, columns, rows)]
