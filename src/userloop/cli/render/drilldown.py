"""Drill-down results as text: the sentence that says what moved (Chinese and English), the two periods with
their values and the change, the verdict of the change's test against the metric's own variation, then per
dimension the values ranked with current, baseline, change, % change, contribution and the value's adjusted
p-value, the explanatory values marked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

MARK = "◀"
VERDICTS = {
    "no_change": "没有变化 / no change",
    "noise": "在正常波动范围内 / within normal variation",
    "even": "各维度均匀变化 / spread evenly across values",
    "cause": "集中在少数取值 / concentrated in a few values",
}


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
                *test_facts(result),
            ]
        )
    )
    for dim in result.get("dimensions", []):
        out += dimension(dim, console)
    if any(d.get("explanatory") for d in result.get("dimensions", [])):
        out.append(note(f"{MARK} 解释变化的值 / explains the change"))
    return out


def test_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The verdict and the test behind it (absent from results recorded before the test existed)."""
    test = result.get("test")
    if not test:
        return []
    if test.get("method") == "history":
        how = f"t = {test['statistic']:.2f}, {len(test.get('earlier') or [])} 个前期 / earlier periods"
        usual = f"{fmt.number(test.get('expected_change'), signed=True)} ± {fmt.number(test.get('typical_change'))}"
    else:
        how = f"z = {test['statistic']:.2f}, 计数噪声 / counting noise"
        usual = f"± {fmt.number(test.get('typical_change'))}"
    return [
        ("结论 / verdict", VERDICTS.get(str(result.get("verdict")), str(result.get("verdict")))),
        ("检验 / test", f"{how}, p {fmt.p_is(test.get('p_value'))}"),
        ("通常变化 / usual change", usual),
    ]


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
        Col(fmt.head("显著性", "p (BH)")),
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
                fmt.p_value(v.get("p_value")),
            ]
        )
    return [title(head), *fit(console, columns, rows)]
