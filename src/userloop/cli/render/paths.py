"""Paths results as text: the most common whole paths (events joined by arrows) with people, sessions and share
of all paths, then the busiest transitions step by step; a stream that reaches into a period still running
(``partial``) marked ``*`` with a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, partial_note, partial_title, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

#: Transitions listed in the text output; ``--json`` has them all.
TOP_LINKS = 20


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    total = result.get("paths_total") or 0
    direction = "正向 / forward" if result.get("direction") == "forward" else "反向 / backward"
    partial = bool(result.get("partial"))
    out: list[RenderableType] = [
        partial_title("路径", "paths", partial),
        facts(
            [
                (fmt.lab("people"), fmt.count(result.get("users"))),
                ("路径数 / paths", fmt.count(total)),
                ("步数 / steps", str(result.get("steps"))),
                ("方向 / direction", direction),
            ]
        ),
    ]
    paths = result.get("paths") or []
    if paths:
        columns = [
            name(fmt.head("路径", "path"), width=50),
            Col(fmt.hd("people")),
            Col(fmt.head("次数", "paths")),
            Col(fmt.hd("share")),
        ]
        rows = [
            [" → ".join(p["events"]), fmt.count(p["users"]), fmt.count(p["count"]), _share(p["count"], total)]
            for p in paths
        ]
        out += [title("常见路径", "top paths"), *fit(console, columns, rows)]
    links = sorted(result.get("links") or [], key=lambda link: (link["step"], -link["users"]))
    if links:
        top = sorted(links, key=lambda link: -link["users"])[:TOP_LINKS]
        top.sort(key=lambda link: (link["step"], -link["users"]))
        columns = [
            Col(fmt.hd("step"), key=True),
            name(fmt.head("从", "from"), width=24),
            name(fmt.head("到", "to"), width=24),
            Col(fmt.hd("people")),
            Col(fmt.head("次数", "paths")),
        ]
        rows = [
            [
                str(link["step"]),
                _event(link["source"]),
                _event(link["target"]),
                fmt.count(link["users"]),
                fmt.count(link["events"]),
            ]
            for link in top
        ]
        out += [title("主要流向", "top transitions"), *fit(console, columns, rows)]
    return [*out, *partial_note(partial)]


def _event(node_id: str) -> str:
    """``"2:view_item"`` → ``view_item`` (the step has its own column)."""
    return node_id.split(":", 1)[1] if ":" in node_id else node_id


def _share(part: int, total: int) -> str:
    return fmt.pct(part / total) if total else ""
