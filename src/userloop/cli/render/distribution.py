"""Distribution results as text: people per bucket with their share and the cumulative share, then mean,
median, p90, min and max (two decimals for sums of a property such as money, one for counts); a range that reaches
into a period still running (``partial``) marked ``*`` with a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, partial_note, partial_title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    measure = result.get("measure")
    stat = fmt.money if measure == "sum" else _one_decimal
    what = "金额合计 / sum" if measure == "sum" else "次数 / count"
    out: list[RenderableType] = [
        partial_title("分布", "distribution", bool(result.get("partial"))),
        facts([(fmt.lab("people"), fmt.count(result.get("people"))), ("度量 / measure", what)]),
        facts(
            [
                ("均值 / mean", stat(result.get("mean"))),
                ("中位数 / median", stat(result.get("median"))),
                ("P90", stat(result.get("p90"))),
                ("最小 / min", stat(result.get("min"))),
                ("最大 / max", stat(result.get("max"))),
            ]
        ),
    ]
    columns = [
        name(fmt.head("区间", "bucket")),
        Col(fmt.hd("people")),
        Col(fmt.hd("share")),
        Col(fmt.head("累计占比", "cumulative")),
    ]
    rows = []
    cumulative = 0.0
    for b in result.get("buckets", []):
        cumulative += b.get("share") or 0.0
        rows.append([str(b["label"]), fmt.count(b["people"]), fmt.pct(b.get("share")), fmt.pct(min(cumulative, 1.0))])
    return [*out, *fit(console, columns, rows), *partial_note(bool(result.get("partial")))]


def _one_decimal(value: Any) -> str:
    return "" if value is None else f"{value:,.1f}"
