"""Attribution results as text: conversions and how many had a touch, then per channel the touched conversions
and, for every model, the credited share — then credited conversions and value (money) per model as tables of
their own, so five models still fit 80 columns. A range that reaches into a period still running (``partial``)
is marked ``*`` with a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, facts, fit, name, partial_note, partial_title, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

MODELS = {
    "first": ("首次触点", "first"),
    "last": ("末次触点", "last"),
    "linear": ("线性", "linear"),
    "position": ("位置", "position"),
    "time_decay": ("时间衰减", "time decay"),
}


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    conversions = result.get("conversions") or 0
    attributed = result.get("attributed")
    pairs = [
        ("转化 / conversions", fmt.count(conversions)),
        ("转化人数 / converters", fmt.count(result.get("converters"))),
        (
            "有触点 / with a touch",
            f"{fmt.count(attributed)} ({fmt.pct(attributed / conversions)})"
            if conversions and attributed is not None
            else fmt.count(attributed),
        ),
    ]
    if result.get("value") is not None:
        pairs.append(("价值 / value", fmt.money(result["value"])))
    partial = bool(result.get("partial"))
    out: list[RenderableType] = [partial_title("归因", "attribution", partial), facts(pairs)]
    models = result.get("models") or []
    channels = result.get("channels") or []
    out += [title("份额 / share"), *_table(console, channels, models, "share", fmt.pct, touched=True)]
    out += [title("归因转化 / credited conversions"), *_table(console, channels, models, "conversions", _credited)]
    if result.get("value") is not None:
        out += [title("归因价值 / credited value"), *_table(console, channels, models, "value", fmt.money)]
    return [*out, *partial_note(partial)]


def _table(
    console: Console, channels: list[dict[str, Any]], models: list[str], field: str, show: Any, *, touched: bool = False
) -> list[RenderableType]:
    columns = [name(fmt.head("渠道", "channel"), width=24)]
    if touched:
        columns.append(Col(fmt.head("触达转化", "touched")))
    columns += [Col(fmt.head(*MODELS.get(m, (m, m)))) for m in models]
    rows = []
    for ch in channels:
        credit = ch.get("credit") or {}
        cells = [show((credit.get(m) or {}).get(field)) for m in models]
        rows.append([str(ch["channel"]), *([fmt.count(ch.get("touched_conversions"))] if touched else []), *cells])
    return list(fit(console, columns, rows))


def _credited(value: Any) -> str:
    """Credited conversions are fractions under linear, position and time decay: one decimal."""
    return "" if value is None else f"{value:,.1f}"
