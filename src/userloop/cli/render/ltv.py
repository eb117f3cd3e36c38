"""LTV results as text: per cohort its size and the cumulative value per member by day N (money, two decimals),
the all-cohorts row last; then the cumulative totals. Cells not yet observable stay empty; cohorts whose period is
not a whole finished one (the result's ``partial``) carry ``*`` and a footnote, as in trends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render import fmt
from userloop.cli.render.table import Col, fit, mark, name, note, partial_note, title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    days = result.get("days") or []
    columns = [name(fmt.hd("cohort"), width=14), Col(fmt.hd("size"), key=True)]
    columns += [Col(fmt.head(f"第{d}天", f"day {d}")) for d in days]
    cohorts = list(result.get("cohorts") or [])
    everyone = result.get("all")
    partial = set(result.get("partial") or [])

    def rows(field: str) -> tuple[list[list[str]], set[int]]:
        out = [
            [mark(c["cohort"], partial), fmt.count(c["size"]), *(fmt.money(v) for v in c.get(field) or [])]
            for c in cohorts
        ]
        sections = set()
        if everyone:
            sections = {len(out) - 1} if out else set()
            out.append(["全部 / all", fmt.count(everyone["size"]), *(fmt.money(v) for v in everyone.get(field) or [])])
        return out, sections

    per_member, sections = rows("values")
    totals, _ = rows("totals")
    return [
        title("用户生命周期价值", "LTV"),
        note(f"每人累计价值 / cumulative value per member · {result.get('interval')}"),
        *fit(console, columns, per_member, sections=sections),
        title("累计总价值", "cumulative total value"),
        *fit(console, columns, totals, sections=sections),
        *partial_note(partial),
    ]
