"""Profile and item operations follow Sensors Analytics semantics, in record order."""

from __future__ import annotations

from tests.conftest import NOW_MS, rows
from tests.ingest.helpers import lines, profile
from userloop.ingest import load_json_lines
from userloop.store import ProjectStore


def _user(project: ProjectStore, cols: str) -> tuple[object, ...]:
    [row] = rows(project, f"SELECT {cols} FROM {{users}}")
    return row


def test_profile_operations_in_order(project: ProjectStore) -> None:
    ops = [
        profile("profile_set", "L1", t=NOW_MS - 9, city="Shanghai", level="gold", orders=1),
        profile("profile_set_once", "L1", t=NOW_MS - 8, city="Beijing", first_channel="wechat"),
        profile("profile_increment", "L1", t=NOW_MS - 7, orders=2),
        profile("profile_append", "L1", t=NOW_MS - 6, favorite=["fruit"]),
        profile("profile_append", "L1", t=NOW_MS - 5, favorite=["dairy", "meat"]),
        profile("profile_unset", "L1", t=NOW_MS - 4, level=True),
        profile("profile_increment", "L1", t=NOW_MS - 3, orders=0.5),
    ]
    r = load_json_lines(project, lines(*reversed(ops)), source="p")  # input order differs from time order
    assert r.rejected == 0 and r.accepted == len(ops)
    assert _user(project, "city, level, orders, first_channel, favorite") == (
        "Shanghai",
        None,
        3.5,
        "wechat",
        ["fruit", "dairy", "meat"],
    )


def test_profile_type_rules_and_delete(project: ProjectStore) -> None:
    load_json_lines(project, lines(profile("profile_set", "L1", age=30, tags=["a"])), source="p")
    bad = load_json_lines(
        project,
        lines(profile("profile_increment", "L1", age="one"), profile("profile_append", "L1", tags="b")),
        source="q",
    )
    assert bad.rejected == 2
    load_json_lines(project, lines(profile("profile_delete", "L1")), source="d")
    assert _user(project, "age, tags, first_id") == (None, None, "L1")  # the person stays, the profile is cleared


def test_profile_reimport_adds_nothing(project: ProjectStore) -> None:
    batch = lines(profile("profile_increment", "L1", visits=1))
    load_json_lines(project, batch, source="p")
    again = load_json_lines(project, batch, source="p")
    assert again.duplicates == 1
    assert _user(project, "visits") == (1.0,)


def test_items_set_update_delete(project: ProjectStore) -> None:
    def item(kind: str, item_id: str, **props: object) -> dict[str, object]:
        return {"type": kind, "item_type": "product", "item_id": item_id, "time": NOW_MS, "properties": props}

    load_json_lines(
        project, lines(item("item_set", "p1", price=9.9, name="苹果"), item("item_set", "p2", price=1.0)), source="i"
    )
    load_json_lines(project, lines({**item("item_set", "p1", price=8.8), "time": NOW_MS + 1}), source="j")
    load_json_lines(project, lines(item("item_delete", "p2")), source="k")
    assert rows(project, "SELECT item_id, name, price FROM {items} ORDER BY item_id") == [("p1", "苹果", 8.8)]


def test_arrow_items_without_ids_are_not_taken_for_duplicates(project: ProjectStore) -> None:
    import pyarrow as pa

    from userloop.ingest import load_table

    table = pa.table(
        {"type": ["item_set", "item_set"], "item_type": ["product"] * 2, "item_id": ["a", "b"], "price": [1.0, 1.0]}
    )
    result = load_table(project, table, source="arrow")
    assert (result.accepted, result.duplicates) == (2, 0)
    assert rows(project, "SELECT count(*) FROM {items}") == [(2,)]


def test_mixed_arrow_batch_with_partial_ids(project: ProjectStore) -> None:
    import pyarrow as pa

    from userloop.ingest import load_table

    table = pa.table(
        {
            "type": ["profile_set", "track"],
            "distinct_id": ["u1", "u1"],
            "event": [None, "view"],
            "time": [NOW_MS - 10, NOW_MS - 5],
            "event_id": [None, "e1"],
            "city": ["Shanghai", None],
        }
    )
    first = load_table(project, table, source="arrow")
    assert (first.accepted, first.events, first.rejected) == (2, 1, 0)
    again = load_table(project, table, source="arrow")
    assert again.duplicates == 2
