"""The records follow the loader's contract: columns, types, names, ids, times, stream order, identity."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from userloop.schema.names import RESERVED_PROPERTY_NAMES, name_problem
from userloop.schema.types import PropertyType

from .conftest import Simulated, record_type

CANONICAL = {"type", "event", "distinct_id", "is_login_id", "original_id", "time", "event_id", "lib", "item_type",
             "item_id"}  # fmt: skip
CANONICAL_TYPES = {
    "type": PropertyType.STRING,
    "event": PropertyType.STRING,
    "distinct_id": PropertyType.STRING,
    "original_id": PropertyType.STRING,
    "event_id": PropertyType.STRING,
    "lib": PropertyType.STRING,
    "item_type": PropertyType.STRING,
    "item_id": PropertyType.STRING,
    "is_login_id": PropertyType.BOOL,
}
RECORD_TYPES = {"track", "track_signup", "profile_set", "profile_set_once", "profile_increment", "profile_append",
                "profile_unset", "profile_delete", "item_set", "item_delete"}  # fmt: skip
EVENT_TYPES = {"track", "track_signup"}


def test_every_table_is_one_record_type(small: Simulated) -> None:
    for table in small.tables:
        kinds = pc.unique(table.column("type")).to_pylist()
        assert len(kinds) == 1 and kinds[0] in RECORD_TYPES
        assert table.column("type").null_count == 0
        assert 0 < table.num_rows <= 2_000_000


def test_every_table_is_valid_arrow(small: Simulated) -> None:
    for table in small.tables:
        table.validate(full=True)


def test_every_profile_operation_and_record_kind_appears(small: Simulated) -> None:
    seen = {record_type(t) for t in small.tables}
    assert {"item_set", "profile_set", "profile_set_once", "profile_increment", "profile_append",
            "track_signup", "track"} <= seen  # fmt: skip


def test_column_names_and_types_follow_the_rules(small: Simulated) -> None:
    types: dict[str, set[pa.DataType]] = defaultdict(set)
    for table in small.tables:
        assert table.column_names[0] == "type"
        for field in table.schema:
            if field.name == "time":
                assert field.type == pa.int64()
                continue
            kind = PropertyType.from_arrow(field.type)
            if field.name in CANONICAL:
                assert kind == CANONICAL_TYPES[field.name], field
                continue
            assert name_problem(field.name, reserved=RESERVED_PROPERTY_NAMES) is None, field.name
            assert kind is not None, field
            types[field.name].add(field.type)
    mixed = {name: found for name, found in types.items() if len(found) > 1}
    assert not mixed, f"properties with more than one Arrow type: {mixed}"


def test_expected_property_types(small: Simulated) -> None:
    events = small.of_type("track").schema
    assert PropertyType.from_arrow(events.field("$screen_width").type) == PropertyType.NUMBER
    assert events.field("order_amount").type == pa.float64()
    assert events.field("coupon_used").type == pa.bool_()
    assert PropertyType.from_arrow(events.field("categories").type) == PropertyType.LIST
    profiles = small.of_type("profile_set").schema
    assert profiles.field("birthday").type == pa.date32()
    assert profiles.field("registered_at").type == pa.timestamp("ms")
    assert PropertyType.from_arrow(small.of_type("profile_append").schema.field("favorite_categories").type) == (
        PropertyType.LIST
    )


def test_records_carry_their_canonical_fields(small: Simulated) -> None:
    for table in small.tables:
        kind = record_type(table)
        if kind.startswith("item"):
            assert table.column("item_id").null_count == 0 and table.column("item_type").null_count == 0
            continue
        assert table.column("distinct_id").null_count == 0
        assert table.column("is_login_id").null_count == 0
        if kind in EVENT_TYPES:
            assert table.column("event").null_count == 0 and table.column("event_id").null_count == 0
    signups = small.of_type("track_signup")
    assert set(pc.unique(signups.column("event")).to_pylist()) == {"$SignUp"}
    assert pc.all(signups.column("is_login_id")).as_py()
    assert signups.column("original_id").null_count == 0


def test_event_ids_are_unique_across_the_stream(small: Simulated) -> None:
    ids = pa.chunked_array([t.column("event_id") for t in small.tables if record_type(t) in EVENT_TYPES])
    assert len(pc.unique(ids)) == len(ids)


def test_times_fall_inside_the_window(small: Simulated) -> None:
    from userloop.core.clock import local_midnight_utc_ms

    cfg = small.config
    start = local_midnight_utc_ms(cfg.start_date, cfg.timezone)
    end = start + cfg.days * 86_400_000
    for table in small.tables:
        low, high = pc.min_max(table.column("time")).values()
        assert start <= low.as_py() and high.as_py() < end


def test_stream_order_items_then_per_chunk_profiles_and_signups_then_events(small: Simulated) -> None:
    from userloop.core.clock import local_midnight_utc_ms

    cfg = small.config
    kinds = [record_type(t) for t in small.tables]
    assert kinds[:2] == ["item_set", "item_set"] and "item_set" not in kinds[2:]
    chunks: list[list[pa.Table]] = []
    for table, kind in zip(small.tables[2:], kinds[2:], strict=True):
        if not chunks or (kind != "track" and record_type(chunks[-1][-1]) == "track"):
            chunks.append([])
        chunks[-1].append(table)
    assert len(chunks) == -(-cfg.days // cfg.chunk_days)
    start = local_midnight_utc_ms(cfg.start_date, cfg.timezone)
    span = cfg.chunk_days * 86_400_000
    for k, chunk in enumerate(chunks):
        order = [record_type(t) for t in chunk]
        assert order[-1] == "track" and order.index("track") == len(order) - order.count("track")
        for table in chunk:
            low, high = pc.min_max(table.column("time")).values()
            assert start + k * span <= low.as_py() and high.as_py() < start + (k + 1) * span


def test_login_id_events_come_after_the_signup_and_earlier_ones_are_anonymous(small: Simulated) -> None:
    late = small.sql(
        "WITH first_signup AS (SELECT distinct_id, min(time) t FROM signups GROUP BY 1) "
        "SELECT count(*) FROM events e JOIN first_signup s USING (distinct_id) WHERE e.time < s.t"
    )
    assert late == [(0,)]
    unbound_login = small.sql(
        "SELECT count(*) FROM events WHERE is_login_id AND distinct_id NOT IN (SELECT distinct_id FROM signups)"
    )
    assert unbound_login == [(0,)]
    # Every anonymous id bound by a signup was used only before its binding.
    after = small.sql(
        "SELECT count(*) FROM events e JOIN signups s ON e.distinct_id = s.original_id WHERE e.time >= s.time"
    )
    assert after == [(0,)]
    before = small.sql(
        "SELECT count(*) FROM events e JOIN signups s ON e.distinct_id = s.original_id WHERE e.time < s.time"
    )
    assert before[0][0] > 0


def test_signups_match_the_ground_truth_identities(small: Simulated) -> None:
    rows = small.sql(
        "SELECT count(*), count(*) FILTER (WHERE list_contains(t.anonymous_ids, s.original_id)) "
        "FROM signups s JOIN truth t ON t.login_id = s.distinct_id"
    )
    total, matching = rows[0]
    assert total == len(small.of_type("track_signup")) and matching == total
    registered = small.sql("SELECT count(*) FROM truth WHERE login_id IS NOT NULL")[0][0]
    second = small.sql("SELECT count(*) FROM truth WHERE len(anonymous_ids) = 2")[0][0]
    never = small.sql("SELECT count(*) FROM truth WHERE login_id IS NULL")[0][0]
    assert 0 < second < 0.1 * registered
    assert never > 0.1 * small.truth.num_rows
    assert small.sql("SELECT count(DISTINCT distinct_id) FROM signups")[0][0] == registered
