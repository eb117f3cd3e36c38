"""A JSON lines file whose properties are read typed loads exactly as when they are staged as JSON values.

The typed reading (``jsonl._stage_typed``) is taken only for files that :func:`jsonl.typed_fields` accepts; the
reference is the reader's map, as in test_file_fields. Random files within the typed path's conditions (track
events with ids, one kind per name; nulls, absent properties, bad times and event names, repeats, login flags,
a name first seen late, distinct ids that are numbers or need escaping, lib objects of every kind) are imported
both ways into two workspaces, twice, then a file that conflicts with what the first registered; every table and
every figure must be equal.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW_MS
from tests.ingest.test_file_fields import TABLES, TZ
from userloop.ingest import jsonl
from userloop.ingest.files import import_files
from userloop.schema.types import PropertyType
from userloop.store import ProjectStore, Workspace

DAY = 86_400_000
GOOD: dict[str, Any] = {
    "price": lambda rng: rng.choice([round(rng.uniform(0, 100), 2), rng.randint(0, 9), 10**19]),
    "category": lambda rng: rng.choice(["fruit", "meat", "中文", 'q"uote', "2026-01-01"]),
    "member": lambda rng: rng.random() < 0.5,
    "late": lambda rng: rng.randint(0, 3),
}


def _record(rng: random.Random, i: int, n: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "track",
        "event": rng.choice(["view", "order_paid", "share", "bad name"]),
        "distinct_id": rng.choice([f"u{rng.randint(0, 30)}", rng.randint(0, 30), 'q"u\\ote', "中文"]),
        "time": NOW_MS - rng.randint(0, 9) * DAY,
    }
    if rng.random() < 0.3:
        record["lib"] = rng.choice([{"$lib": "python", "$lib_version": "1"}, {"$lib": 2.50}, {"$lib": None}, {}])
    if rng.random() < 0.5:
        record["event_id"] = f"e{rng.randint(0, 400)}"  # repeats within the file
    else:
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
    names = [k for k in GOOD if k != "late" or i > n * 0.9]  # "late" only near the end of the file
    props = {k: None if rng.random() < 0.1 else GOOD[k](rng) for k in rng.sample(names, rng.randint(0, len(names)))}
    if rng.random() < 0.2:
        props["$is_login_id"] = rng.random() < 0.5
    if rng.random() < 0.05:
        props["only_null"] = None
    record["properties"] = props
    return record


def _write(path: Path, seed: int, n: int = 400) -> None:
    rng = random.Random(seed)
    first = {"type": "track", "event": "view", "distinct_id": "u0", "time": NOW_MS, "_track_id": 0}
    first["properties"] = {"category": "fruit"}  # a first text value that is no date
    lines = [json.dumps(first)] + [json.dumps(_record(rng, i, n), ensure_ascii=False) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _dump(project: ProjectStore) -> dict[str, list[tuple[object, ...]]]:
    return {t: project.con.execute(q.format(t=project.table(t))).fetchall() for t, q in TABLES.items()}


def _summary(project: ProjectStore, path: Path) -> dict[str, object]:
    out = import_files(project, [path], kind="events", timezone=TZ).as_dict()
    out.pop("seconds")
    out["new_properties"] = sorted(out["new_properties"])  # type: ignore[call-overload]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_typed_properties_load_as_the_map_does(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    path, conflicting = tmp_path / "events.jsonl", tmp_path / "conflicting.jsonl"
    _write(path, seed)
    base = {"type": "track", "event": "view", "distinct_id": "u1", "time": NOW_MS - 1000}
    conflicting.write_text(
        "\n".join(
            json.dumps({**base, "event_id": f"c{i}", "properties": {"price": v, "member": True}})
            for i, v in enumerate([1, "cheap", 2.5])
        )
        + "\n"
    )
    typed_as: list[bool] = []
    stage, canonical = jsonl._stage_typed, jsonl._canonical
    monkeypatch.setattr(jsonl, "_stage_typed", lambda *a, **k: typed_as.append((s := stage(*a, **k)) is not None) or s)
    tops: list[object] = []
    monkeypatch.setattr(jsonl, "_canonical", lambda *a, **k: tops.append(k.get("top")) or canonical(*a, **k))
    ws_typed, _ = Workspace.init(tmp_path / "typed")
    typed = ws_typed.project()
    got = [_summary(typed, path), _summary(typed, path), _summary(typed, conflicting)]
    assert typed_as == [True, True, False]  # the clean file was read typed, the conflicting one was not
    assert tops[:2] == [jsonl.TYPED_TOP] * 2  # distinct_id and lib read as text
    got_tables = _dump(typed)
    ws_typed.close()

    monkeypatch.setattr(jsonl, "_survey", lambda *a, **k: None)  # the reader's map, the reference
    monkeypatch.setattr(jsonl, "_property_names", lambda s, p: None)
    ws_map, _ = Workspace.init(tmp_path / "map")
    as_map = ws_map.project()
    want = [_summary(as_map, path), _summary(as_map, path), _summary(as_map, conflicting)]
    want_tables = _dump(as_map)
    ws_map.close()

    assert got == want
    for table, rows in want_tables.items():
        assert got_tables[table] == rows, table
    assert want_tables["events"] and want_tables["rejects"]  # the files have both
    assert ("events", "late", "NUMBER") in want_tables["registry"]  # a name first seen late still loads
    assert not any(r[1] == "only_null" for r in want_tables["registry"])


def test_a_date_as_first_text_value_is_not_read_typed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    base = {"type": "track", "event": "view", "distinct_id": "u", "time": NOW_MS - 1000}
    path.write_text(
        "\n".join(
            json.dumps({**base, "event_id": f"e{i}", "properties": {"paid": v}})
            for i, v in enumerate(["2026-01-01 10:00:00", "2026-01-02 10:00:00"])
        )
        + "\n"
    )
    ws, _ = Workspace.init(tmp_path / "ws")
    project = ws.project()
    with project.writer() as session:
        assert jsonl._stage_typed(session, path, source="f", registry={}) is None
    import_files(project, [path], kind="events", timezone=TZ)
    assert project.registry()[("events", "paid")] is PropertyType.DATETIME
    ws.close()


def _shape(props: dict[str, str] | str | None, rtype: str = "track", unnumbered: bool = False) -> jsonl.Survey:
    return (None if props is None else json.dumps(props), rtype, unnumbered)


NUMBER, STRING, BOOL = PropertyType.NUMBER, PropertyType.STRING, PropertyType.BOOL


def test_typed_fields_accepts_one_kind_per_name() -> None:
    survey = [
        _shape({"price": "UBIGINT", "city": "VARCHAR"}),
        _shape({"price": "DOUBLE", "ok": "BOOLEAN", "gone": "NULL", "$is_login_id": "VARCHAR"}),
        _shape({"price": "BIGINT", "big": "HUGEINT"}),
        _shape(None),
        _shape("JSON"),  # an empty object
    ]
    want = {"big": NUMBER, "city": STRING, "ok": BOOL, "price": NUMBER}
    assert jsonl.typed_fields(survey, {}) == want
    assert jsonl.typed_fields(survey, {("events", "price"): NUMBER, ("users", "Price"): STRING}) == want
    assert jsonl.typed_fields(survey, {("events", "gone"): PropertyType.DATETIME}) == want  # only null here


@pytest.mark.parametrize(
    ("survey", "registry", "cap"),
    [
        ([_shape({"price": "DOUBLE"}), _shape({"price": "VARCHAR"})], {}, None),  # two kinds
        ([_shape({"price": "DOUBLE"}, rtype="profile_set")], {}, None),  # not an event
        ([_shape({"price": "DOUBLE"}, unnumbered=True)], {}, None),  # hashed from its properties' text
        ([_shape({"tags": ["VARCHAR"]})], {}, None),  # a list
        ([_shape({"n": {"a": "UBIGINT"}})], {}, None),  # a nested object
        ([_shape({"n": "JSON"})], {}, None),  # an empty nested object
        ([_shape("VARCHAR")], {}, None),  # properties that are not an object
        ([_shape({"my prop": "DOUBLE"})], {}, None),  # a bad name
        ([_shape({"Price": "DOUBLE", "price": "DOUBLE"})], {}, None),  # two spellings
        ([_shape({"Price": "DOUBLE"})], {("events", "price"): NUMBER}, None),  # another spelling registered
        ([_shape({"$IS_LOGIN_ID": "BOOLEAN"})], {}, None),
        ([_shape({"price": "VARCHAR"})], {("events", "price"): NUMBER}, None),  # registered otherwise
        ([_shape({"paid": "VARCHAR"})], {("events", "paid"): PropertyType.DATETIME}, None),
        ([_shape({"a": "DOUBLE", "b": "DOUBLE"})], {("events", "c"): NUMBER}, 2),  # past the table's cap
        ([_shape({f"p{i}": "DOUBLE" for i in range(jsonl.MAX_FIELDS + 1)})], {}, None),
    ],
)
def test_typed_fields_refuses(survey: list[jsonl.Survey], registry: dict[Any, PropertyType], cap: int | None) -> None:
    assert jsonl.typed_fields(survey, registry, cap) is None


def test_typed_fields_within_the_cap() -> None:
    assert jsonl.typed_fields([_shape({"a": "DOUBLE"})], {("events", "c"): NUMBER}, 2) == {"a": NUMBER}


def _lines(path: Path, records: list[dict[str, Any] | str]) -> None:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")


def test_a_bad_value_late_in_the_file_is_rejected_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonl, "SURVEY_HEAD", 100)  # the bad value is past the head: the whole survey finds it
    path = tmp_path / "events.jsonl"
    base = {"type": "track", "event": "view", "distinct_id": "u", "time": NOW_MS - 1000}
    good: list[dict[str, Any] | str] = [{**base, "_track_id": i, "properties": {"price": i}} for i in range(3000)]
    _lines(path, [*good, {**base, "_track_id": 3000, "properties": {"price": "cheap"}}])
    ws, _ = Workspace.init(tmp_path / "ws")
    project = ws.project()
    with project.writer() as session:
        assert jsonl._stage_typed(session, path, source="f", registry={}) is None  # two kinds: not typed
    summary = import_files(project, [path], kind="events", timezone=TZ)
    assert (summary.result.events, summary.result.rejected) == (3000, 1)
    rows = project.con.execute(f"SELECT row_no, field, reason FROM {project.table('rejects')}").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(3001, "price")] and "cheap" in rows[0][2]
    ws.close()


def test_a_repeated_name_falls_back_as_the_map_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    base = '{"type": "track", "event": "view", "distinct_id": "u", "time": %d, "_track_id": %d, "properties": %s}'
    _lines(path, [base % (NOW_MS - 1000, i, p) for i, p in enumerate(['{"price": 1}', '{"price": 2, "price": 3}'])])
    dumps = []
    for typed in (True, False):
        if not typed:
            monkeypatch.setattr(jsonl, "_survey", lambda *a, **k: None)
        ws, _ = Workspace.init(tmp_path / f"ws{typed}")
        project = ws.project()
        if typed:
            with project.writer() as session:
                assert jsonl._survey(session, path) is not None  # the survey sees one kind per name
                assert jsonl._stage_typed(session, path, source="f", registry={}) is None  # the reader refuses
        summary = _summary(project, path)
        dumps.append((summary, _dump(project)))
        ws.close()
    assert dumps[0] == dumps[1]


def test_a_head_that_cannot_be_read_typed_ends_the_survey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    base = {"type": "track", "event": "view", "distinct_id": "u", "time": NOW_MS - 1000}
    records: list[dict[str, Any] | str] = [{**base, "_track_id": i, "properties": {"price": i}} for i in range(50)]
    monkeypatch.setattr(jsonl, "SURVEY_HEAD", 10)
    surveyed: list[int | None] = []
    survey = jsonl._survey
    monkeypatch.setattr(jsonl, "_survey", lambda s, p, head=None: surveyed.append(head) or survey(s, p, head))
    ws, _ = Workspace.init(tmp_path / "ws")
    with ws.project().writer() as session:
        for first, want in (({**base, "properties": {"price": 1}}, [10]), ({**base, "_track_id": 99}, [10, None])):
            _lines(path, [first, *records])  # unnumbered first record: the head decides; else the whole file
            surveyed.clear()
            staged = jsonl._stage_typed(session, path, source="f", registry={})
            assert surveyed == want and (staged is not None) == (want == [10, None])
            if staged is not None:
                staged.release(session)
    ws.close()


def test_a_lib_that_is_no_object_falls_back_as_the_map_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    base = {"type": "track", "event": "view", "distinct_id": 7, "time": NOW_MS - 1000, "properties": {"price": 1}}
    _lines(path, [{**base, "_track_id": i, "lib": lib} for i, lib in enumerate([{"$lib": "js"}, "python", [1]])])
    dumps = []
    for typed in (True, False):
        if not typed:
            monkeypatch.setattr(jsonl, "_survey", lambda *a, **k: None)
        ws, _ = Workspace.init(tmp_path / f"ws{typed}")
        project = ws.project()
        if typed:
            with project.writer() as session:
                assert jsonl._stage_typed(session, path, source="f", registry={}) is None  # the reader refuses
        dumps.append((_summary(project, path), _dump(project)))
        ws.close()
    assert dumps[0] == dumps[1]
    assert dumps[0][0]["events"] == 3
