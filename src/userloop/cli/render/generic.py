"""Any result without a renderer of its own (a kind added later): its plain figures, then each list of records
as a table — readable, if not tailored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from userloop.cli.render.report import pairs_table, records_table, value
from userloop.cli.render.table import title

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def render(result: dict[str, Any], console: Console) -> list[RenderableType]:
    plain = [(k, value(k, v)) for k, v in result.items() if not isinstance(v, dict | list)]
    out: list[RenderableType] = pairs_table(plain, console) if plain else []
    for key, v in result.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            out += [title(key), *records_table(v, console)]
    return out
