"""SQL snapshots: the statements a fixed definition compiles to, kept under ``tests/query/snapshots``.

A change in generated SQL fails the test until the snapshot is rewritten on purpose with
``UPDATE_SNAPSHOTS=1 pytest tests/query`` and the diff is read in review.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from userloop.query.engine import Engine

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: The "today" every snapshot compiles with, so relative date ranges give the same SQL on any day.
TODAY = date(2026, 3, 31)


def assert_snapshot(name: str, engine: Engine, definition: dict[str, Any]) -> None:
    statements = engine.compile(definition, today=TODAY)
    text = "".join(f"-- {key}\n{sql};\n" for key, sql in statements.items())
    text = text.replace(f'"{engine.project.schema}".', '"p_project".')  # the same text whatever project ran it
    path = SNAPSHOTS / f"{name}.sql"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"no snapshot {path.name}; write it with UPDATE_SNAPSHOTS=1 and review it"
    assert path.read_text() == text, f"generated SQL changed for {name}; rerun with UPDATE_SNAPSHOTS=1 if intended"
