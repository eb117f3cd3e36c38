"""A JSON lines file whose properties are staged as struct fields loads exactly as when they are staged as a map.

The map is the reader's own form and the reference here: the same random file (good and bad values, bad and
colliding names, ids given, numbered or missing, repeats, profiles and signups among the events) is imported
both ways into two workspaces, once and then again, and every table and every figure must be equal.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW_MS
from userloop.ingest import jsonl
from userloop.ingest.files import import_files
from userloop.store import ProjectStore, Workspace

TZ = "Asia/Shanghai"
DAY = 86_400_000

TABLES = {
    "events": "SELECT * EXCLUDE (received_at) FROM {t} ORDER BY event_id, distinct_id",
    "users": "SELECT * EXCLUDE (created_at, updated_at) FROM {t} ORDER BY user_id",
    "identities": "SELECT ns, id_type, id_value, user_id FROM {t} ORDER BY ns, id_value",
    "registry": "SELECT tbl, name, type FROM {t} ORDER BY tbl, name",
    "rejects": "SELECT row_no, field, reason FROM {t} ORDER BY row_no",
}


def _value(rng: random.Random, name: str) -> Any:
    good: dict[str, Any] = {
        "price": round(rng.uniform(0, 100), 2),
        "qty": rng.randint(0, 5),
        "category": rng.choice(["fruit", "meat", "中文", 'q"uote']),
        "member": rng.random() < 0.5,
        "tags": [rng.choice("abc") for _ in range(rng.randint(0, 3))],
        "paid_at": f"2026-01-0{rng.randint(1, 9)} 10:00:00",
        "day": f"2026-02-0{rng.randint(1, 9)}",
    }
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.16:  # a value of another kind than the name's first one
        return rng.choice(["cheap", 7, True, [1, 2], {"nested": 1}, "2026-13-45 10:00:00"])
    return good.get(name, rng.choice(["x", 1, 2.5]))


def _record(rng: random.Random, i: int, names: list[str]) -> dict[str, Any]:
    kind = rng.choices(["track", "profile_set", "track_signup"], weights=[0.9, 0.07, 0.03])[0]
    record: dict[str, Any] = {
        "type": kind,
        "distinct_id": f"u{rng.randint(0, 30)}",
        "time": NOW_MS - rng.randint(0, 9) * DAY,
    }
    if kind != "profile_set":
        record["event"] = rng.choice(
            ["view", "order_paid", "$SignUp" if kind == "track_signup" else "share", "bad name"]
        )
    if kind == "track_signup":
        record["original_id"] = f"a{rng.randint(0, 30)}"
    ids = rng.random()
    if ids < 0.3:
        record["event_id"] = f"e{rng.randint(0, 400)}"  # repeats within the file
    elif ids < 0.6:
        record["_track_id"] = rng.randint(0, 400)
    roll = rng.random()
    if roll < 0.05:
        record.pop("distinct_id")
    elif roll < 0.1:
        record["time"] = NOW_MS + 5 * DAY
    elif roll < 0.12:
        record["time"] = "yesterday"
    if rng.random() < 0.1:
        return record  # no properties at all
    props = {n: _value(rng, n) for n in rng.sample(names, rng.randint(0, len(names)))}
    if rng.random() < 0.2:
        props["$is_login_id"] = rng.random() < 0.5
    record["properties"] = props
    return record


def _write(path: Path, seed: int, names: list[str]) -> None:
    rng = random.Random(seed)
    lines = [json.dumps(_record(rng, i, names), ensure_ascii=False) for i in range(400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _dump(project: ProjectStore) -> dict[str, list[tuple[object, ...]]]:
    return {t: project.con.execute(q.format(t=project.table(t))).fetchall() for t, q in TABLES.items()}


def _summary(project: ProjectStore, path: Path) -> dict[str, object]:
    out = import_files(project, [path], kind="events", timezone=TZ).as_dict()
    out.pop("seconds")
    return out


NAMES = ["price", "qty", "category", "member", "tags", "paid_at", "day", "my prop", "user_id", "$city"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fields_load_as_the_map_does(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    _write(path, seed, NAMES[: 5 + seed * 2])
    staged_as: list[object] = []
    names = jsonl._property_names
    monkeypatch.setattr(jsonl, "_property_names", lambda s, p: staged_as.append(names(s, p)) or staged_as[-1])
    ws_fields, _ = Workspace.init(tmp_path / "fields")
    fields = ws_fields.project()
    got = [_summary(fields, path), _summary(fields, path)]
    assert staged_as and all(isinstance(n, list) for n in staged_as)  # the files were staged as fields
    got_tables = _dump(fields)
    ws_fields.close()

    monkeypatch.setattr(jsonl, "_property_names", lambda s, p: None)  # the reader's map, the reference
    ws_map, _ = Workspace.init(tmp_path / "map")
    as_map = ws_map.project()
    want = [_summary(as_map, path), _summary(as_map, path)]
    want_tables = _dump(as_map)
    ws_map.close()

    assert got == want
    for table, rows in want_tables.items():
        assert got_tables[table] == rows, table
    assert want_tables["events"] and want_tables["rejects"]  # the file has both


def test_names_that_cannot_be_fields_fall_back_to_the_map(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    base = {"type": "track", "event": "view", "distinct_id": "u", "time": NOW_MS - 1000}
    path.write_text(
        json.dumps({**base, "properties": {"Price": 1}})
        + "\n"
        + json.dumps({**base, "properties": {"price": 2}})
        + "\n"
    )
    ws, _ = Workspace.init(tmp_path / "ws")
    with ws.project().writer() as session:
        assert jsonl._property_names(session, path) is None  # two names that differ only in case
        for odd in ([1], "x", 5, {"a": 1, "b": {"c": 2}}):  # not an object: the map path reports it
            path.write_text(
                json.dumps({**base, "properties": {"price": 2}}) + "\n" + json.dumps({**base, "properties": odd})
            )
            found = jsonl._property_names(session, path)
            assert found == (["a", "b", "price"] if isinstance(odd, dict) else None), odd
        path.write_text(json.dumps({**base, "properties": {}}) + "\n" + json.dumps({**base, "properties": None}) + "\n")
        assert jsonl._property_names(session, path) == []
        path.write_text(json.dumps({**base, "properties": {"price": 2}}) + "\n")
        assert jsonl._property_names(session, path) == ["price"]
    ws.close()
