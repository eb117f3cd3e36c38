"""Interval results (time from one event to the next) as text: pairs and people, mean and quantiles in human
units, the histogram on human-duration edges with shares; a range that reaches into a period still running
(``partial``) marked ``*`` with a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, partial_note, partial_title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

STATS = (
    ("mean", "均值 / mean"),
    ("min", "最小 / min"),
    ("p25", "P25"),
    ("p50", "中位数 / median"),
    ("p75", "P75"),
    ("p90", "P90"),
    ("p99", "P99"),
    ("max", "最大 / max"),
)


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    per = "每人首次 / first per person" if result.get("per") == "person" else "每对 / every pair"
    out: list[RenderableType] = [
        partial_title("间隔", "interval", bool(result.get("partial"))),
        facts(
            [
                ("配对数 / pairs", fmt.count(result.get("pairs"))),
                (fmt.lab("people"), fmt.count(result.get("people"))),
                ("口径 / per", per),
            ]
        ),
        facts([(text, fmt.duration(result.get(key))) for key, text in STATS if key in result]),
    ]
    columns = [
        name(fmt.head("间隔", "interval")),
        Col(fmt.hd("count")),
        Col(fmt.hd("share")),
        Col(fmt.head("累计占比", "cumulative")),
    ]
    rows = []
    cumulative = 0.0
    for b in result.get("histogram", []):
        cumulative += b.get("share") or 0.0
        span = f"{fmt.duration(b['lo_seconds'])} – {fmt.duration(b.get('hi_seconds')) or '∞'}"
        rows.append([span, fmt.count(b["count"]), fmt.pct(b.get("share")), fmt.pct(min(cumulative, 1.0))])
    return [*out, *fit(console, columns, rows), *partial_note(bool(result.get("partial")))]
