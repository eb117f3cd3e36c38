"""Lifecycle results as text: per bucket the new, returning, resurrecting and dormant people (dormant negative,
as the result gives it), the net change, buckets not yet over marked ``*``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, name, note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    columns = [
        name(fmt.hd("bucket"), width=20),
        Col(fmt.head("新增", "new")),
        Col(fmt.head("留存", "returning")),
        Col(fmt.head("回流", "resurrecting")),
        Col(fmt.head("沉睡", "dormant")),
        Col(fmt.head("净变化", "net")),
    ]
    rows = []
    for b in result.get("buckets", []):
        parts = [b.get("new"), b.get("resurrecting"), b.get("dormant")]
        net = None if any(p is None for p in parts) else sum(parts)
        bucket = str(b["bucket"]) + ("" if b.get("complete", True) else " *")
        rows.append(
            [
                bucket,
                *(fmt.count(b.get(k)) for k in ("new", "returning", "resurrecting", "dormant")),
                fmt.number(net, signed=True),
            ]
        )
    out: list[RenderableType] = [title("生命周期", "lifecycle"), *fit(console, columns, rows)]
    if any(not b.get("complete", True) for b in result.get("buckets", [])):
        out.append(note("* 周期尚未结束 / period not over yet"))
    if result.get("people"):
        from userloop.cli.render.people import people_line

        out.append(people_line(result["people"], "bucket / status"))
    return out
