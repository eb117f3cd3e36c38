"""Lifecycle results as text: per bucket the new, returning, resurrecting and dormant people (dormant negative,
as the result gives it), the net change; partial periods (the result's ``partial``: running or not begun) marked
``*`` with a footnote, as in trends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, mark, name, partial_note, title

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
    buckets = result.get("buckets", [])
    # documents recorded before ``partial`` existed say the same per bucket with ``complete``
    partial = set(result.get("partial") or (str(b["bucket"]) for b in buckets if not b.get("complete", True)))
    rows = []
    for b in buckets:
        parts = [b.get("new"), b.get("resurrecting"), b.get("dormant")]
        net = None if any(p is None for p in parts) else sum(parts)
        rows.append(
            [
                mark(b["bucket"], partial),
                *(fmt.count(b.get(k)) for k in ("new", "returning", "resurrecting", "dormant")),
                fmt.number(net, signed=True),
            ]
        )
    out: list[RenderableType] = [title("生命周期", "lifecycle"), *fit(console, columns, rows), *partial_note(partial)]
    if result.get("people"):
        from userloop.cli.render.people import people_line

        out.append(people_line(result["people"], "bucket / status"))
    return out
