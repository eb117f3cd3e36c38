"""Funnel results as text: steps as rows (count, conversion from the previous and from the first step, drop-off,
median time), the breakpoint marked and explained, then each breakdown value (by OS, channel, category …) as its
own block after an overview of all values and their breakpoints (a step where a value converts significantly worse
than the others, with the numbers), the time-to-convert histogram and the conversion trend. As in trends, partial
trend buckets (``trend_partial``) carry ``*`` and a footnote, and so does the heading when the range reaches into a
period still running (``partial``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, mark, name, note, partial_note, partial_title, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

BREAKPOINT = "◀"


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    """The whole funnel, every breakdown value and the extras the definition asked for."""
    out: list[RenderableType] = [
        partial_title("漏斗", "funnel", bool(result.get("partial"))),
        summary(result),
        *steps_table(result["steps"], console),
    ]
    out += breakpoint_notes(result["steps"], None)
    breakdowns = result.get("breakdowns") or []
    if breakdowns:
        out += breakdown_overview(breakdowns, console)
        flagged = [n for series in breakdowns for n in breakpoint_notes(series["steps"], series.get("breakdown"))]
        if flagged:
            out.append(
                note(
                    f"{BREAKPOINT} 分组断点：该组在这一步的转化显著且明显低于其他组 / "
                    "breakpoint of a value: it converts at this step significantly (BH q ≤ 1%) and materially "
                    "(drop-off ≥ 2× and ≥ 5 points) worse than the other values"
                )
            )
            out += flagged
        # With two steps the overview already says everything a value's block would; with more, each gets one.
        for series in breakdowns if len(result["steps"]) > 2 else []:
            out += [title(f"{fmt.lab('breakdown')}: {fmt.text(series.get('breakdown'))}"), summary(series)]
            out += steps_table(series["steps"], console)
    if result.get("time_to_convert"):
        out += [title("转化耗时分布", "time to convert"), *histogram(result["time_to_convert"], console)]
    if result.get("trend"):
        partial = set(result.get("trend_partial") or [])
        out += [
            title("转化趋势", "conversion trend"),
            *trend(result["trend"], console, partial),
            *partial_note(partial),
        ]
    if result.get("people"):
        out.append(people(result["people"]))
    return [*out, *partial_note(bool(result.get("partial")))]


def summary(series: dict[str, Any]) -> RenderableType:
    """Entered, converted, overall conversion, median and average time to convert."""
    from userloop.cli.render.table import facts

    pairs = [
        (fmt.lab("entered"), fmt.count(series["entered"])),
        (fmt.lab("converted"), fmt.count(series["converted"])),
        (fmt.lab("conversion"), fmt.pct(series.get("conversion_rate"))),
    ]
    if series.get("median_time_to_convert") is not None:
        pairs.append(("中位转化耗时 / median time to convert", fmt.duration(series["median_time_to_convert"])))
    if "window_seconds" in series:
        pairs.append((fmt.lab("window"), fmt.duration(series["window_seconds"])))
    return facts(pairs)


def steps_table(steps: list[dict[str, Any]], console: Console) -> list[RenderableType]:
    """One row per step: the numbers a person reads a funnel for."""
    columns = [
        Col("#", key=True),
        name(fmt.hd("step"), width=24),
        Col(fmt.hd("users")),
        Col(fmt.hd("from_previous")),
        Col(fmt.hd("from_first")),
        Col(fmt.hd("dropped")),
        Col(fmt.head("中位耗时", "median time")),
    ]
    rows = [
        [
            str(s["step"]),
            _step_label(s),
            fmt.count(s["count"]),
            fmt.pct(s.get("conversion_from_previous")) if s["step"] > 1 else "",
            fmt.pct(s.get("conversion_from_first")) if s["step"] > 1 else "",
            _dropped(s),
            fmt.duration(s.get("median_time_from_previous")),
        ]
        for s in steps
    ]
    return list(fit(console, columns, rows))


def _step_label(step: dict[str, Any]) -> str:
    text = str(step["label"])
    if step.get("optional"):
        text += " (可选 / optional)"
    if step.get("is_breakpoint"):
        text += f" {BREAKPOINT}"
    return text


def _dropped(step: dict[str, Any]) -> str:
    if step["step"] == 1 or step.get("drop_off_rate") is None:
        return ""
    return f"{fmt.count(step['dropped'])} ({fmt.pct(step['drop_off_rate'])})"


def breakdown_overview(breakdowns: list[dict[str, Any]], console: Console) -> list[RenderableType]:
    """One row per breakdown value: entered, converted, overall conversion, its breakpoint, median time."""
    columns = [
        name(fmt.hd("breakdown"), width=24),
        Col(fmt.hd("entered")),
        Col(fmt.hd("converted")),
        Col(fmt.hd("conversion")),
        Col(fmt.head("断点", "breakpoint"), justify="left"),
        Col(fmt.head("中位转化耗时", "median to convert")),
    ]
    rows = []
    for series in breakdowns:
        broken = ", ".join(str(s["label"]) for s in series["steps"] if s.get("is_breakpoint"))
        rows.append(
            [
                fmt.text(series.get("breakdown")),
                fmt.count(series["entered"]),
                fmt.count(series["converted"]),
                fmt.pct(series.get("conversion_rate")),
                str(broken),
                fmt.duration(series.get("median_time_to_convert")),
            ]
        )
    return [title("分组概览", "by breakdown value"), *fit(console, columns, rows)]


def breakpoint_notes(steps: list[dict[str, Any]], value: str | None) -> list[RenderableType]:
    """One line per breakpoint of a series saying why it is one: the largest drop-off of the funnel, or (for a
    breakdown value) this value's conversion against the other values' with the Benjamini–Hochberg q-value."""
    out: list[RenderableType] = []
    for step in steps:
        if not step.get("is_breakpoint"):
            continue
        why = step.get("breakpoint") or {}
        if why.get("rule") == "behind_other_values":
            out.append(
                note(
                    f"{BREAKPOINT} {fmt.text(value)} · {step['label']}: "
                    f"转化 {fmt.pct(why.get('conversion'))}，其他组 {fmt.pct(why.get('others_conversion'))} / "
                    f"converts {fmt.pct(why.get('conversion'))} vs {fmt.pct(why.get('others_conversion'))} for "
                    f"the other values (q {fmt.p_is(why.get('q_value'))})"
                )
            )
        else:
            out.append(
                note(
                    f"{BREAKPOINT} {step['label']}: 流失最多的一步（流失 {fmt.pct(step.get('drop_off_rate'))}）/ "
                    f"breakpoint: the step where the most people are lost ({fmt.pct(step.get('drop_off_rate'))} "
                    "drop off)"
                )
            )
    return out


def histogram(bins: list[dict[str, Any]], console: Console) -> list[RenderableType]:
    """Time to convert, as ranges in human units with people and share."""
    total = sum(b["count"] for b in bins) or 1
    columns = [name(fmt.head("耗时", "time"), width=30), Col(fmt.hd("people")), Col(fmt.hd("share"))]
    rows = [
        [
            f"{fmt.duration(b['from_seconds'])} – {fmt.duration(b['to_seconds'])}",
            fmt.count(b["count"]),
            fmt.pct(b["count"] / total),
        ]
        for b in bins
    ]
    return list(fit(console, columns, rows))


def trend(points: list[dict[str, Any]], console: Console, partial: set[str] | None = None) -> list[RenderableType]:
    """One row per bucket: entered, converted and conversion; partial buckets marked ``*``."""
    partial = partial or set()
    columns = [name(fmt.hd("bucket")), Col(fmt.hd("entered")), Col(fmt.hd("converted")), Col(fmt.hd("conversion"))]
    rows = [
        [mark(p["bucket"], partial), fmt.count(p["entered"]), fmt.count(p["converted"]), fmt.pct(p.get("rate"))]
        for p in points
    ]
    return list(fit(console, columns, rows))


def people(doc: dict[str, Any]) -> RenderableType:
    """The people list the definition asked for: how many, and the first ids."""
    from userloop.cli.render.people import people_line

    what = f"step {doc['step']} {doc['status']}" + (f", {doc['breakdown']}" if doc.get("breakdown") else "")
    return people_line(doc, what)
