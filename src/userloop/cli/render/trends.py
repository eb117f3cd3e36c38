"""Trends results as text: one row per bucket (dates as the result gives them, in the project's zone), one
column per series and breakdown value, a total row; split into several tables when the columns do not fit; the
previous period beside each line when the definition compares. Buckets that are not whole finished periods (the
result's ``partial``: cut by the range, or still running) carry ``*`` and a footnote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import PARTIAL_NOTE, Col, fit, mark, name, note, partial_note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["PARTIAL_NOTE", "line_header", "mark", "render", "transposed"]


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    """Buckets as rows; lines as rows instead when there are more lines than buckets (many breakdown values)."""
    lines = result.get("series") or []
    compare = result.get("compare") or []
    if not compare and len(lines) > len(result.get("buckets") or []):
        return [title("趋势", "trends"), *transposed(result, console)]
    columns = [name(fmt.hd("bucket"), width=20)]
    columns += [Col(line_header(line)) for line in lines]
    previous = result.get("compare_buckets") or []
    partial = set(result.get("partial") or [])
    previous_partial = set(result.get("compare_partial") or [])
    if compare:
        columns.append(Col(fmt.head("上期时间", "previous period"), justify="left"))
        columns += [Col(line_header(line, previous=True)) for line in compare]
    formats = [fmt.column([*line["data"], line.get("total")]) for line in [*lines, *compare]]
    shown, compared = formats[: len(lines)], formats[len(lines) :]
    rows: list[list[str]] = []
    for i, bucket in enumerate(result.get("buckets", [])):
        cells = [f(_at(line["data"], i)) for f, line in zip(shown, lines, strict=True)]
        if compare:
            before = _at(previous, i)
            cells += [mark(before, previous_partial) if before is not None else ""]
            cells += [f(_at(line["data"], i)) for f, line in zip(compared, compare, strict=True)]
        rows.append([mark(bucket, partial), *cells])
    totals = [f(line.get("total")) for f, line in zip(shown, lines, strict=True)]
    if compare:
        totals += ["", *(f(line.get("total")) for f, line in zip(compared, compare, strict=True))]
    sections = set()
    if any(totals):
        sections = {len(rows) - 1}
        rows.append([fmt.lab("total"), *totals])
    out: list[RenderableType] = [title("趋势", "trends"), *fit(console, columns, rows, sections=sections)]
    if not lines:
        out.append(title("（无数据 / no data）", style="dim"))
    return [*out, *partial_note(partial | previous_partial)]


def transposed(result: dict[str, Any], console: Console) -> list[RenderableType]:
    """One row per series and breakdown value, one column per bucket, the total last."""
    lines = result.get("series") or []
    partial = set(result.get("partial") or [])
    buckets = [mark(b, partial) for b in result.get("buckets") or []]
    one_label = len({(line.get("series"), line.get("label")) for line in lines}) == 1
    columns = [name(fmt.hd("breakdown") if one_label else fmt.head("序列", "series"), width=24)]
    columns += [Col(b) for b in buckets]
    columns.append(Col(fmt.hd("total")))
    rows = []
    for line in lines:
        f = fmt.column([*line["data"], line.get("total")])
        row_name = fmt.text(line.get("breakdown")) if one_label else line_header(line).replace("\n", " · ")
        rows.append([row_name, *(f(_at(line["data"], i)) for i in range(len(buckets))), f(line.get("total"))])
    out: list[RenderableType] = []
    if one_label and lines:
        out.append(note(line_header({**lines[0], "breakdown": None}).replace("\n", " · ")))
    return [*out, *fit(console, columns, rows), *partial_note(partial)]


def line_header(line: dict[str, Any], *, previous: bool = False) -> str:
    """``A · order_paid`` over the breakdown value (and ``上期 / previous`` for the compared period)."""
    parts = [f"{line['series']} · {line['label']}" if line.get("series") not in (None, "formula") else line["label"]]
    if line.get("breakdown") is not None and not (line.get("series") == "formula" and line["breakdown"] == "$none"):
        parts.append(str(line["breakdown"]))
    if previous:
        parts.append(fmt.lab("previous"))
    return "\n".join(parts)


def _at(values: list[Any], i: int) -> Any:
    return values[i] if i < len(values) else None
