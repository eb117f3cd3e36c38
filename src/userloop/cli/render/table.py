"""Tables that fit the terminal: columns are split into several tables, the key columns repeated in each, when
one table would be wider than the console — so nothing wraps a number in two at 80 columns.

Renderers describe a table as :class:`Col` headers and rows of cells (plain strings, or ``rich`` ``Text`` for a
styled cell); :func:`fit` turns it into as many ``rich`` tables as the width needs. Every cell and title goes in
as ``Text``, never as markup, so event names such as ``[2, 5)`` or ``[bold]`` print as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions
    from rich.table import Table
    from rich.text import Text

Justify = Literal["left", "right", "center"]

#: Widest a name column (a breakdown value, a path) grows before its text wraps.
NAME_WIDTH = 28


@dataclass(frozen=True)
class Col:
    """One column: its header (``\\n`` between the Chinese and English lines), alignment, and whether it is a
    key column, repeated in every part when a wide table is split."""

    header: str
    justify: Justify = "right"
    key: bool = False
    max_width: int | None = None
    wrap: bool = False


def name(header: str, *, width: int = NAME_WIDTH) -> Col:
    """A key column holding names (left-aligned, wrapped past ``width`` cells)."""
    return Col(header, justify="left", key=True, max_width=width)


def as_text(cell: str | Text, style: str = "") -> Text:
    """A cell as ``Text``: plain strings are never parsed as markup or emoji codes."""
    from rich.text import Text

    if isinstance(cell, Text):
        return cell
    return Text(cell, style=style)


def _table(
    columns: Sequence[Col], rows: Sequence[Sequence[str | Text]], sections: set[int], *, header: bool = True
) -> Table:
    from rich.box import Box
    from rich.table import Table

    # Rich's SIMPLE_HEAD with a rule for end_section rows (before an average or total row).
    ruled = Box("    \n    \n ── \n    \n ── \n ── \n    \n    \n", ascii=False)
    table = Table(
        box=ruled, show_edge=False, pad_edge=False, header_style="bold", collapse_padding=True, show_header=header
    )
    for col in columns:
        table.add_column(
            as_text(col.header),
            justify=col.justify,
            no_wrap=not (col.wrap or col.max_width),
            max_width=col.max_width,
            overflow="fold",
        )
    for i, row in enumerate(rows):
        table.add_row(*(as_text(c) for c in row), end_section=i in sections)
    return table


def _natural(col: Col, cells: Sequence[str | Text]) -> int:
    """A column's width when nothing in it wraps: its widest header line or cell line, up to its ``max_width``."""
    from rich.cells import cell_len

    lines = col.header.split("\n")
    for cell in cells:
        lines += (cell if isinstance(cell, str) else cell.plain).split("\n")
    widest = max((cell_len(line) for line in lines), default=0)
    return min(widest, col.max_width) if col.max_width else widest


_OVERHEAD: dict[str, tuple[int, int]] = {}


def _overhead(console: Console) -> tuple[int, int]:
    """The width a table adds around its cells: ``(fixed, per column)``, measured once on a tiny table."""
    if "table" not in _OVERHEAD:
        one = natural_width(console, _table([Col("x")], [["x"]], set()))
        two = natural_width(console, _table([Col("x"), Col("x")], [["x", "x"]], set()))
        per_column = two - one - 1  # one = fixed + 1 + per_column; two = fixed + 2 + 2 * per_column
        _OVERHEAD["table"] = (one - 1 - per_column, per_column)
    return _OVERHEAD["table"]


def natural_width(console: Console, table: Table) -> int:
    """How wide ``table`` is when nothing in it wraps (capped columns count at their cap)."""
    from rich.measure import Measurement

    options = console.options.update_width(10_000)
    return Measurement.get(console, options, table).maximum


def fit(
    console: Console,
    columns: Sequence[Col],
    rows: Sequence[Sequence[str | Text]],
    *,
    width: int | None = None,
    sections: set[int] | None = None,
    header: bool = True,
) -> list[Table]:
    """``rows`` under ``columns`` as one table, or several (each with the key columns) when one is too wide.

    ``sections`` holds the indexes of rows followed by a rule (e.g. before an average row); ``header`` False
    leaves the header row out (label/value lists).
    """
    width = width or console.width
    sections = sections or set()
    keys = [i for i, c in enumerate(columns) if c.key]
    values = [i for i, c in enumerate(columns) if not c.key]

    padded = [[*row, *[""] * (len(columns) - len(row))] for row in rows]

    def build(idx: list[int]) -> Table:
        return _table([columns[i] for i in idx], [[row[i] for i in idx] for row in padded], sections, header=header)

    # Widths add up (cells, padding and one separator per column), so the parts are packed by arithmetic on each
    # column's natural width rather than by measuring a rich table per attempt (slow for long retention tables).
    fixed, per_column = _overhead(console)
    natural = {i: _natural(columns[i], [row[i] for row in padded]) + per_column for i in range(len(columns))}
    base = fixed + sum(natural[i] for i in keys)
    extra = {i: natural[i] for i in values}
    parts = _pack(values, extra, base, width, len(values))
    # Even parts read better than full ones and a stub: the fewest columns per part that needs no more parts.
    for most in range(-(-len(values) // max(len(parts), 1)), len(values)):
        even = _pack(values, extra, base, width, most)
        if len(even) <= len(parts):
            parts = even
            break
    return [build(keys + part) for part in parts]


def _pack(values: list[int], extra: dict[int, int], base: int, width: int, most: int) -> list[list[int]]:
    """``values`` in order into parts of at most ``most`` columns, each at most ``width`` wide (``base`` for the
    key columns plus each column's ``extra``); a column wider than the rest of the line gets a part of its own."""
    parts: list[list[int]] = []
    current: list[int] = []
    used = base
    for i in values:
        if current and (used + extra[i] > width or len(current) >= most):
            parts.append(current)
            current, used = [], base
        current.append(i)
        used += extra[i]
    parts.append(current)
    return parts


def title(zh: str, en: str | None = None, *, style: str = "bold", gap: bool = True) -> Text:
    """A heading line, ``留存 / retention``, after an empty line (``gap``) that sets the blocks apart."""
    from rich.text import Text

    heading = Text(zh if en is None else f"{zh} / {en}", style=style)
    return Text("\n").append_text(heading) if gap else heading


class Facts:
    """Labelled values (``label: value``) packed onto as few lines as the width allows, never split inside an
    item unless one item alone is wider than the console."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = [(k, v) for k, v in pairs if v != ""]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        from rich.cells import cell_len
        from rich.text import Text

        line = Text()
        for key, value in self.pairs:
            item = Text()
            item.append(f"{key}: ", style="dim")
            item.append(value, style="bold")
            if line.plain and cell_len(line.plain) + 3 + cell_len(item.plain) > options.max_width:
                yield line
                line = Text()
            if line.plain:
                line.append("   ")
            line.append_text(item)
        if line.plain:
            yield line


def facts(pairs: Sequence[tuple[str, str]]) -> Facts:
    """A short list of labelled values, e.g. entered, converted and conversion of a funnel."""
    return Facts(pairs)


def note(message: str) -> Text:
    from rich.text import Text

    return Text(message, style="dim")


# partial periods (issue 13 item 2) -------------------------------------------------------------------------------
#: The footnote under a table with partial periods (the same words as ``userloop.query.periods.PARTIAL_NOTE``).
PARTIAL_NOTE = "* 未完结周期 / partial period"
#: The footnote under a result over a whole range that reaches into a period still running (its ``partial: true``).
PARTIAL_RANGE_NOTE = "* 区间含未完结周期 / the range reaches into a period not over yet"


def mark(bucket: object, partial: Collection[str]) -> str:
    """A bucket's label, with `` *`` when it is a partial period (listed in the result's ``partial``)."""
    return f"{bucket} *" if str(bucket) in partial else str(bucket)


def partial_note(partial: Collection[str] | bool) -> list[Text]:
    """The footnote to print under a table when some of its buckets are marked (a list of labels), or under a
    result over a whole range that reaches into a running period (``True``); nothing otherwise."""
    if partial is True:
        return [note(PARTIAL_RANGE_NOTE)]
    return [note(PARTIAL_NOTE)] if partial else []


def partial_title(zh: str, en: str, partial: bool) -> Text:
    """A result's heading, marked ``*`` when the result's range reaches into a running period."""
    return title(zh, f"{en} *" if partial else en)
