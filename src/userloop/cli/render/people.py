"""The ``people`` part of a result (the persons behind one cell): how many, and the first few ids."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

#: How many user ids the text output lists; ``--json`` has all the result holds.
SHOWN = 20


def people_line(doc: dict[str, Any], what: str) -> Text:
    """``人群 / people (what): 1,234 — 17, 18, 25 …``, wrapped to the width by the console."""
    from rich.text import Text

    ids = [str(u) for u in doc.get("user_ids", [])]
    more = " …" if len(ids) > SHOWN or doc.get("total", 0) > len(ids) else ""
    line = Text(f"人群 / people ({what}): ", style="bold")
    line.append(f"{doc.get('total', len(ids)):,}")
    if ids:
        line.append(" — " + ", ".join(ids[:SHOWN]) + more)
    return line
