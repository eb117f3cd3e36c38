"""Stickiness results as text: people by the number of periods they were active on, with their share, and the
average; a range that reaches into a period still running (``partial``) marked ``*`` with a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, partial_note, partial_title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

UNIT = {"day": ("天", "days"), "week": ("周", "weeks"), "month": ("月", "months")}


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    zh, en = UNIT.get(str(result.get("interval")), ("期", "periods"))
    average = result.get("average")
    partial = bool(result.get("partial"))
    out: list[RenderableType] = [
        partial_title("粘性", "stickiness", partial),
        facts(
            [
                ("活跃人数 / active people", fmt.count(result.get("total"))),
                (f"平均活跃{zh}数 / average active {en}", "" if average is None else f"{average:,.1f}"),
                (f"区间{zh}数 / {en} in range", fmt.count(result.get("periods"))),
            ]
        ),
    ]
    columns = [
        Col(fmt.head(f"活跃{zh}数", f"active {en}"), key=True),
        Col(fmt.hd("people")),
        Col(fmt.hd("share")),
        Col(fmt.head("累计占比", "at least")),
    ]
    rows = []
    rows_in = result.get("rows", [])
    total = result.get("total") or 0
    remaining = total
    for r in rows_in:
        at_least = remaining / total if total else None
        rows.append([str(r["intervals"]), fmt.count(r["people"]), fmt.pct(r.get("share")), fmt.pct(at_least)])
        remaining -= r["people"]
    out += [*fit(console, columns, rows), *partial_note(partial)]
    if result.get("people"):
        from userloop.cli.render.people import people_line

        out.append(people_line(result["people"], "intervals"))
    return out
