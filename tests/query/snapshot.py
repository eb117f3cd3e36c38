"""SQL snapshots: the statements a fixed definition compiles to, kept under ``tests/query/snapshots``.

A change in generated SQL fails the test until the snapshot is rewritten on purpose with
``UPDATE_SNAPSHOTS=1 pytest tests/query`` and the diff is read in review.

Next to each ``<name>.sql`` lies ``<name>.json``: the definition and what compilation read from the project (time
zone, registry, event names, the ``pii`` right). With it the same statements compile without a database, so the
dialect test (``tests/store/test_dialects.py``) renders every snapshot's trees for every backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlglot import exp

from userloop.query.compile import Context
from userloop.query.engine import Engine
from userloop.query.kinds import parse_definition
from userloop.schema.types import PropertyType

SNAPSHOTS = Path(__file__).parent / "snapshots"
#: The "today" every snapshot compiles with, so relative date ranges give the same SQL on any day.
TODAY = date(2026, 3, 31)
#: The schema the recorded statements name (the text of the .sql snapshots says the same).
SCHEMA = "p_project"


def assert_snapshot(name: str, engine: Engine, definition: dict[str, Any]) -> None:
    statements = engine.compile(definition, today=TODAY)
    text = "".join(f"-- {key}\n{sql};\n" for key, sql in statements.items())
    text = text.replace(f'"{engine.project.schema}".', f'"{SCHEMA}".')  # the same text whatever project ran it
    recorded = _record(engine, definition)
    path, inputs = SNAPSHOTS / f"{name}.sql", SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
        inputs.write_text(recorded)
    assert path.exists(), f"no snapshot {path.name}; write it with UPDATE_SNAPSHOTS=1 and review it"
    assert path.read_text() == text, f"generated SQL changed for {name}; rerun with UPDATE_SNAPSHOTS=1 if intended"
    assert inputs.exists() and inputs.read_text() == recorded, (
        f"the recorded inputs of {name} changed; rerun with UPDATE_SNAPSHOTS=1 if intended"
    )


def _record(engine: Engine, definition: dict[str, Any]) -> str:
    ctx = engine.context(TODAY)
    doc = {
        "definition": definition,
        "timezone": ctx.timezone,
        "pii": ctx.pii,
        "event_props": {k: v.value for k, v in sorted(ctx.event_props.items())},
        "user_props": {k: v.value for k, v in sorted(ctx.user_props.items())},
        "event_names": sorted(ctx.event_names),
    }
    if ctx.passive_events:  # recorded only when there are some, so older snapshots keep their inputs
        doc["passive_events"] = sorted(ctx.passive_events)
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def snapshot_statements() -> Iterator[tuple[str, str, exp.Expr]]:
    """(snapshot, statement name, tree) of every recorded snapshot, compiled from its ``.json`` alone."""
    for inputs in sorted(SNAPSHOTS.glob("*.json")):
        doc = json.loads(inputs.read_text())
        ctx = Context(
            schema=SCHEMA,
            timezone=doc["timezone"],
            today=TODAY,
            event_props={k: PropertyType(v) for k, v in doc["event_props"].items()},
            user_props={k: PropertyType(v) for k, v in doc["user_props"].items()},
            event_names=set(doc["event_names"]),
            pii=doc["pii"],
            passive_events=frozenset(doc.get("passive_events", ())),
        )
        for key, tree in parse_definition(doc["definition"]).statements(ctx).items():
            yield inputs.stem, key, tree
