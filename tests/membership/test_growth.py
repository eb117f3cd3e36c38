"""Growth value against a brute-force reference: random events (with properties) loaded into a real project, random
rules (fixed or per-property amounts, filters, daily and total caps, a programme-wide daily cap, a VIP multiplier),
programmes in Asia/Shanghai and UTC with events around local midnight, members who joined at different times.

The reference walks the events in time order in plain Python; the product computes the rules' amounts in DuckDB
and caps them in the metadata DB. Reading the same events again never adds an entry.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.conftest import examples
from userloop.ingest.api import load_table
from userloop.membership import growth, levels
from userloop.membership.members import GrowthEntry, MemberRow, ProgrammeRow, Programmes, join, set_vip
from userloop.membership.programme import Programme
from userloop.store import ProjectStore, Workspace

LOADED = datetime(2026, 3, 1)
#: Around midnight of 1 and 2 February in Shanghai (16:00 UTC the day before) and in UTC.
TIMES = [datetime(2026, 1, 31, 15, 30), datetime(2026, 1, 31, 16, 0), datetime(2026, 1, 31, 23, 59),
         datetime(2026, 2, 1, 0, 0), datetime(2026, 2, 1, 15, 59), datetime(2026, 2, 1, 16, 0)]  # fmt: skip
VIP = (datetime(2026, 1, 31, 16, 0), datetime(2026, 2, 1, 12, 0))
_counter = itertools.count()


def ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    workspace, _ = Workspace.init(Path(tmp_path_factory.mktemp("growth")) / "ws")
    yield workspace
    workspace.close()


def load(store: ProjectStore, events: list[dict[str, Any]]) -> dict[str, int]:
    """Load ``events`` (distinct_id, event, time, props) in one load; the person key of each distinct id."""
    records = [{"type": "track", "event": e["event"], "distinct_id": e["did"], "time": ms(e["time"]),
                "event_id": e["id"], "order_amount": e.get("order_amount"), "channel": e.get("channel")}
               for e in events]  # fmt: skip
    result = load_table(store, pa.Table.from_pylist(records), source="growth-test", now_ms=ms(LOADED))
    assert result.rejected == 0, result
    with store.store.lock:
        rows = store.con.execute(f"SELECT user_id, first_id FROM {store.table('users')}").fetchall()
    return {str(d): int(u) for u, d in rows}


# the reference ----------------------------------------------------------------------------------------------
def ref_matches(rule: Any, e: dict[str, Any]) -> bool:
    if e["event"] != rule.event:
        return False
    for f in rule.where:
        v = e.get(f.property)
        if v is None:
            return False
        wanted = f.value if isinstance(f.value, list) else [f.value]
        ok = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
              "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
              "in": lambda a, b: a == b}[f.op]  # fmt: skip
        if not any(ok(v, w) for w in wanted):
            return False
    return True


def ref_amount(rule: Any, e: dict[str, Any]) -> int:
    if rule.amount.kind == "fixed":
        return int(rule.amount.amount)
    v = e.get(rule.amount.property)
    if v is None or not math.isfinite(v) or v <= 0:
        return 0
    return math.floor(min(v * rule.amount.multiplier, 10**12))


def reference(p: Programme, events: list[dict[str, Any]], joined: dict[str, datetime], vip: set[str]) -> list[Any]:
    """(distinct id, rule, time, amount) of every entry, walking events in time order."""
    zone = ZoneInfo(p.timezone)
    rule_day: dict[Any, int] = defaultdict(int)
    rule_total: dict[Any, int] = defaultdict(int)
    day_total: dict[Any, int] = defaultdict(int)
    out = []
    for e in sorted(events, key=lambda e: (e["time"], e["id"])):
        did = e["did"]
        if did not in joined or e["time"] < joined[did]:
            continue
        day: date = e["time"].replace(tzinfo=UTC).astimezone(zone).date()
        for rule in p.growth.rules:
            if not ref_matches(rule, e):
                continue
            amount = ref_amount(rule, e)
            if amount <= 0:
                continue
            if did in vip and VIP[0] <= e["time"] < VIP[1]:
                amount = math.floor(amount * p.growth.vip_multiplier)
            room = amount
            if rule.daily_cap is not None:
                room = min(room, rule.daily_cap - rule_day[did, rule.name, day])
            if rule.total_cap is not None:
                room = min(room, rule.total_cap - rule_total[did, rule.name])
            if p.growth.daily_cap is not None:
                room = min(room, p.growth.daily_cap - day_total[did, day])
            room = max(room, 0)
            rule_day[did, rule.name, day] += room
            rule_total[did, rule.name] += room
            day_total[did, day] += room
            if room:
                out.append((did, rule.name, e["time"], room))
    return sorted(out)


# strategies -------------------------------------------------------------------------------------------------
filters = st.sampled_from([
    [], [{"property": "channel", "value": "app"}], [{"property": "channel", "op": "ne", "value": "app"}],
    [{"property": "order_amount", "op": "gte", "value": 50}],
    [{"property": "channel", "op": "in", "value": ["app", "mini"]},
     {"property": "order_amount", "op": "lt", "value": 300}],
])  # fmt: skip
amounts = st.one_of(
    st.builds(lambda a: {"kind": "fixed", "amount": a}, st.sampled_from([1, 7, 40])),
    st.builds(lambda m: {"kind": "per_property", "property": "order_amount", "multiplier": m},
              st.sampled_from([1.0, 0.1, 2.5])),
)  # fmt: skip
caps = st.sampled_from([None, 10, 100])
rules = st.lists(
    st.fixed_dictionaries({"event": st.sampled_from(["order_paid", "review"]), "where": filters, "amount": amounts,
                           "daily_cap": caps, "total_cap": st.sampled_from([None, 150])}),
    min_size=1, max_size=3,
)  # fmt: skip
event_list = st.lists(
    st.fixed_dictionaries({
        "did": st.sampled_from(["a", "b", "c"]), "event": st.sampled_from(["order_paid", "review", "view"]),
        "time": st.sampled_from(TIMES), "order_amount": st.sampled_from([None, 0.0, 12.5, 99.99, 250.0, 1000.0]),
        "channel": st.sampled_from([None, "app", "mini", "web"]),
    }),
    min_size=1, max_size=25,
)  # fmt: skip


def programme_doc(name: str, zone: str, rule_docs: list[dict[str, Any]], daily: int | None, vip: float) -> Any:
    return {"name": name, "title": {"zh": "会员", "en": "Club"}, "timezone": zone,
            "growth": {"rules": [{"name": f"r{i}", **r} for i, r in enumerate(rule_docs)], "daily_cap": daily,
                       "vip_multiplier": vip},
            "levels": [{"name": "base", "title": {"zh": "普通", "en": "Member"}, "threshold": 0},
                       {"name": "gold", "title": {"zh": "黄金", "en": "Gold"}, "threshold": 100}]}  # fmt: skip


@settings(max_examples=examples(25))
@given(
    zone=st.sampled_from(["Asia/Shanghai", "UTC"]),
    rule_docs=rules,
    daily=st.sampled_from([None, 60]),
    vip=st.sampled_from([1.0, 1.5]),
    events=event_list,
    late=st.sampled_from(["a", "b", None]),
)
def test_growth_equals_the_brute_force_reference(
    ws: Workspace,
    zone: str,
    rule_docs: list[dict[str, Any]],
    daily: int | None,
    vip: float,
    events: list[dict[str, Any]],
    late: str | None,
) -> None:
    n = next(_counter)
    store, info = ws.project(), ws.meta.project("default")
    assert info is not None
    events = [{**e, "did": f"x{n}{e['did']}", "id": f"e{n:04d}-{i:03d}"} for i, e in enumerate(events)]
    keys = load(store, events)
    saved = Programmes(ws.meta, info).create(programme_doc(f"p{n}", zone, rule_docs, daily, vip))
    joined = {f"x{n}{d}": datetime(2026, 1, 1) for d in "abc"}
    if late is not None:
        joined[f"x{n}{late}"] = TIMES[2]  # joined mid-way: earlier events do not count
    for did, at in joined.items():
        if did in keys:
            join(ws.meta, saved, keys[did], at)
    vips = {f"x{n}a"} if f"x{n}a" in keys else set()
    for did in vips:
        set_vip(ws.meta, saved, keys[did], *VIP)
    done = growth.apply(ws.meta, store, saved, LOADED)
    expected = reference(saved.definition, events, {d: a for d, a in joined.items() if d in keys}, vips)
    assert _entries(ws, saved.id, keys) == expected
    assert done.growth == sum(e[3] for e in expected)
    again = growth.apply(ws.meta, store, saved, LOADED)  # nothing new since the mark
    with ws.meta.session.begin() as s:  # the mark moved back: every event is read again, nothing counts twice
        s.execute(update(ProgrammeRow).where(ProgrammeRow.id == saved.id).values(growth_mark_ms=0, growth_mark_id=""))
    replay = growth.apply(ws.meta, store, saved, LOADED, page=4)
    assert (again.entries, replay.entries) == (0, 0)
    assert _entries(ws, saved.id, keys) == expected


def _entries(ws: Workspace, programme_id: int, keys: dict[str, int]) -> list[Any]:
    dids = {v: k for k, v in keys.items()}
    with ws.meta.session() as s:
        rows = s.execute(
            select(MemberRow.person, GrowthEntry.source, GrowthEntry.at, GrowthEntry.amount)
            .join(MemberRow, MemberRow.id == GrowthEntry.member_id)
            .where(GrowthEntry.programme_id == programme_id)
        ).all()
    return sorted((dids[p], src, at, amount) for p, src, at, amount in rows)


def test_growth_then_levels_end_to_end(ws: Workspace) -> None:
    """Spending 120 yuan (one growth per yuan) lifts a member to the 100 level as soon as growth is applied."""
    store, info = ws.project(), ws.meta.project("default")
    assert info is not None
    keys = load(store, [{"did": "spender", "event": "order_paid", "time": TIMES[0], "id": "spend-1",
                         "order_amount": 120.9}])  # fmt: skip
    saved = Programmes(ws.meta, info).create(
        programme_doc("e2e", "Asia/Shanghai", [{"event": "order_paid", "amount": {"kind": "per_property",
                                                                                    "property": "order_amount"}}],
                      None, 1.0)
    )  # fmt: skip
    member = join(ws.meta, saved, keys["spender"], datetime(2026, 1, 1))
    evaluated = levels.credit(ws.meta, store, saved, LOADED)
    assert (evaluated.members, evaluated.up) == (1, 1)
    assert levels.standing(ws.meta, saved, member.id, LOADED) == 120
    assert levels.credit(ws.meta, store, saved, LOADED).members == 0  # nothing loaded since
