"""Retention results as text: one row per cohort with its size, then the share retained in each period (periods
that have not fully ended marked ``*``), the size-weighted average as the last row; one block per breakdown value;
value per member (money) when the definition asked for a value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, name, note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

PERIOD = {"day": ("第{}天", "day {}"), "week": ("第{}周", "week {}"), "month": ("第{}月", "month {}")}
INCOMPLETE = "*"


def period_header(interval: str, k: int) -> str:
    zh, en = PERIOD.get(interval, ("{}", "{}"))
    return fmt.head(zh.format(k), en.format(k))


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    """Every breakdown value's cohorts (one block each, in the result's order)."""
    mode = "当期 / on" if result.get("mode") == "on" else "当期及以后 / on or after"
    start = "首次 / first time" if result.get("start_type") == "first_time" else "每次 / recurring"
    out: list[RenderableType] = [title("留存", "retention"), note(f"{mode} · {start} · {result['interval']}")]
    groups = _groups(result)
    marked = False
    for key, cohorts in groups.items():
        average = next((a for a in result.get("average", []) if a.get("breakdown") == key), None)
        if len(groups) > 1 or key is not None:
            out.append(title(f"{fmt.lab('breakdown')}: {fmt.text(key)}"))
        tables, has_mark = rates_table(result, cohorts, average, console)
        marked = marked or has_mark
        out += tables
        if any(c.get("values") for c in cohorts):
            out += [note("每人价值 / value per member"), *values_table(result, cohorts, average, console)]
    if marked:
        out.append(note(f"{INCOMPLETE} 周期尚未结束 / period not over yet"))
    if result.get("people"):
        from userloop.cli.render.people import people_line

        out.append(people_line(result["people"], "cohort / period"))
    return out


def _groups(result: dict[str, Any]) -> dict[str | None, list[dict[str, Any]]]:
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for cohort in result["cohorts"]:
        groups.setdefault(cohort.get("breakdown"), []).append(cohort)
    for average in result.get("average", []):
        groups.setdefault(average.get("breakdown"), [])
    return groups


def _columns(result: dict[str, Any]) -> list[Col]:
    periods = range(result["periods"] + 1)
    return [
        name(fmt.hd("cohort"), width=14),
        Col(fmt.hd("size"), key=True),
        *(Col(period_header(result["interval"], k)) for k in periods),
    ]


def rates_table(
    result: dict[str, Any], cohorts: list[dict[str, Any]], average: dict[str, Any] | None, console: Console
) -> tuple[list[RenderableType], bool]:
    """Cohort, size, % retained per period; and whether any cell carries the not-over mark."""
    rows: list[list[str]] = []
    marked = False
    for c in cohorts:
        cells = []
        for rate, done in zip(c["rates"], c.get("complete") or [True] * len(c["rates"]), strict=False):
            cell = fmt.pct(rate)
            if cell and not done:
                cell += INCOMPLETE
                marked = True
            cells.append(cell)
        rows.append([str(c["cohort"]), fmt.count(c["size"]), *cells])
    sections = set()
    if average is not None:
        sections = {len(rows) - 1} if rows else set()
        size = average["sizes"][0] if average.get("sizes") else None
        rows.append([fmt.lab("average"), fmt.count(size), *(fmt.pct(r) for r in average["rates"])])
    return list(fit(console, _columns(result), rows, sections=sections)), marked


def values_table(
    result: dict[str, Any], cohorts: list[dict[str, Any]], average: dict[str, Any] | None, console: Console
) -> list[RenderableType]:
    """Value per cohort member in each period (money, two decimals)."""
    rows = [[str(c["cohort"]), fmt.count(c["size"]), *(fmt.money(v) for v in c.get("values") or [])] for c in cohorts]
    sections = set()
    if average is not None and average.get("values"):
        sections = {len(rows) - 1} if rows else set()
        size = average["sizes"][0] if average.get("sizes") else None
        rows.append([fmt.lab("average"), fmt.count(size), *(fmt.money(v) for v in average["values"])])
    return list(fit(console, _columns(result), rows, sections=sections))
