"""Analysis results, dashboards and model reports as text a person can read in a terminal.

One module per analysis kind turns the kind's result document (the same one ``--json`` prints, untouched) into
``rich`` renderables: tables that fit the console width, rates beside counts, rounded numbers, human durations,
Chinese and English labels. :func:`print_result` is what ``userloop query`` and ``userloop insights run`` call;
:func:`print_dashboard` and :func:`print_model_report` serve ``userloop dashboard core-metrics`` and
``userloop models report``. ``rich`` and the renderers load only when text is printed, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

#: Analysis kind → the module under ``userloop.cli.render`` that renders its result.
RENDERERS: dict[str, str] = {
    "trends": "trends",
    "funnel": "funnel",
    "retention": "retention",
    "paths": "paths",
    "lifecycle": "lifecycle",
    "stickiness": "stickiness",
    "distribution": "distribution",
    "interval": "interval",
    "attribution": "attribution",
    "ltv": "ltv",
    "drilldown": "drilldown",
}


def console(width: int | None = None) -> Console:
    """The console text goes to: stdout, the terminal's width (80 when it is not a terminal) unless given."""
    from rich.console import Console

    return Console(width=width, highlight=False, soft_wrap=False)


def render_result(doc: dict[str, Any], con: Console) -> list[RenderableType]:
    """``doc`` (``{"kind", "result", …}``) as renderables; a kind without a renderer gets the generic tables."""
    module = RENDERERS.get(str(doc.get("kind")))
    result = doc.get("result") or {}
    if module is None:
        from userloop.cli.render.generic import render as generic

        return generic(result, con)
    renderer = importlib.import_module(f"userloop.cli.render.{module}")
    out: list[RenderableType] = renderer.render(result, con)
    return out


def print_result(doc: dict[str, Any], con: Console | None = None) -> None:
    """Print one analysis result (and its insight's name when it came from a saved insight)."""
    con = con or console()
    insight = doc.get("insight")
    if isinstance(insight, dict) and insight.get("name"):
        from userloop.cli.render.table import title

        con.print(title(f"{insight.get('id')}: {insight['name']}", style="bold underline"))
    for part in render_result(doc, con):
        con.print(part)


def print_dashboard(doc: dict[str, Any], con: Console | None = None) -> None:
    """Every panel of a dashboard: its bilingual title, then its result or its error."""
    from rich.text import Text

    from userloop.cli.render.table import title

    con = con or console()
    for panel in doc.get("panels", []):
        con.print()
        con.print(title(f"== {panel.get('title_zh', '')} / {panel.get('title_en', '')}", style="bold reverse"))
        if "error" in panel:
            con.print(Text(f"error: {panel['error'].get('message')}", style="red"))
            continue
        kind = (panel.get("definition") or {}).get("kind")
        for part in render_result({"kind": kind, "result": panel.get("result")}, con):
            con.print(part)
        for warning in panel.get("warnings") or []:
            con.print(Text(f"warning: {warning}", style="yellow"))


def print_model_report(doc: dict[str, Any], con: Console | None = None) -> None:
    """A stored model report as tables, one per section."""
    from userloop.cli.render.report import render as render_report

    con = con or console()
    for part in render_report(doc, con):
        con.print(part)
