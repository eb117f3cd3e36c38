"""The plain sequential funnel folded outside SQL (query/kinds/funnel/fold.py) against the SQL path and the
brute-force reference: random logs, ties at one instant, rows in any order, people with thousands of events."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from tests.query.logs import EVENTS, fresh_project, load, sql_only
from tests.query.test_funnel import LOGS, SETTINGS, TODAY, VCP, check_against_reference, definitions, plain, track
from userloop.query.engine import Engine
from userloop.query.kinds.base import Staged
from userloop.query.kinds.funnel import FunnelQuery
from userloop.query.kinds.funnel.fold import fold_best
from userloop.store import ProjectStore, Workspace

MINUTE_US = 60_000_000


def both_paths(project: ProjectStore, tz: str, defn: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The funnel's result through the fold and through SQL alone; the first must have taken the fold."""
    engine = Engine(project, tz)
    assert isinstance(FunnelQuery.model_validate(defn).statements(engine.context(TODAY))["funnel"], Staged)
    folded = engine.run(defn, today=TODAY, use_cache=False).result
    with sql_only():
        in_sql = Engine(project, tz).run(defn, today=TODAY, use_cache=False).result
    return folded, in_sql


@SETTINGS
@given(
    records=LOGS,
    defn=definitions(("sequential",)).map(plain),
    tz=st.sampled_from(["Asia/Shanghai", "America/New_York"]),
)
def test_the_fold_matches_the_reference_and_the_sql_path(
    ws: Workspace, records: list[dict[str, Any]], defn: dict[str, Any], tz: str
) -> None:
    _, project = fresh_project(ws, tz)
    check_against_reference(project, tz, records, defn)
    folded, in_sql = both_paths(project, tz, defn)
    assert folded == in_sql


def test_ties_at_one_instant_follow_event_id(ws: Workspace) -> None:
    # one person, everything at one instant: the event ids alone order the chain (b1 view < b2 cart < b3 pay);
    # another whose ids put the cart first; a third with two views at once, then carts at one later instant
    records = [
        track("pay", "a0", 0, "b3"), track("cart", "a0", 0, "b2"), track("view", "a0", 0, "b1"),
        track("cart", "a1", 0, "c1"), track("view", "a1", 0, "c2"), track("pay", "a1", 1, "c3"),
        track("view", "a2", 0, "d2"), track("view", "a2", 0, "d1"), track("cart", "a2", 3, "d4"),
        track("cart", "a2", 3, "d3"), track("pay", "a2", 3, "d0"), track("pay", "a2", 4, "d9"),
    ]  # fmt: skip
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    defn = {"kind": "funnel", "date_range": {"from": "2026-01-05", "to": "2026-01-11"}, "steps": VCP}
    folded, in_sql = both_paths(project, "UTC", defn)
    assert folded == in_sql
    assert [s["count"] for s in folded["steps"]] == [3, 2, 2]
    # a2's best attempt reaching pay: start d2 (the later view), cart d3, pay d9 at 4 minutes
    assert folded["steps"][2]["avg_time_from_first"] == (0 + 240) / 2


def test_people_with_thousands_of_events(ws: Workspace) -> None:
    rng = random.Random(18)
    records = []
    for person in range(4):
        for i in range(3000):  # minutes drawn from a few days: many ties, long runs of each step
            minute = rng.randrange(0, 6 * 24 * 60, 7)
            records.append(track(rng.choice(EVENTS), f"p{person}", minute, f"e{person}-{rng.randrange(10**6)}-{i}"))
    _, project = fresh_project(ws, "UTC")
    load(project, records)
    for window in ({"value": 45, "unit": "minute"}, {"value": 1, "unit": "day"}):
        for steps in (VCP, [{"event": "view"}, {"event": "view"}, {"event": "cart"}, {"event": "view"}]):
            defn = {"kind": "funnel", "date_range": {"from": "2026-01-05", "to": "2026-01-08"}, "steps": steps,
                    "window": window}  # fmt: skip
            folded, in_sql = both_paths(project, "UTC", defn)
            assert folded == in_sql
            assert folded["steps"][-1]["count"] > 0


# the fold alone: its result does not depend on the order the scan hands the rows in ----------------------------
@st.composite
def scan_rows(draw: st.DrawFn) -> pa.Table:
    """Scan rows of a 3-step funnel: few people, few instants (many ties), masks of one or more steps; the person
    ids either close together (a counting sort) or far apart (past its span: a comparison sort). ``rid`` is the
    row's place, ``eid`` its event id (read through the lookup, for tied rows only)."""
    n = draw(st.integers(1, 60))
    # keys within 2¹⁰ (a bucket per person), within 2²¹ (buckets sorted on their low bits), or 2⁵⁰ apart
    people = draw(st.sampled_from(((1, 2, 3), (7, 1030, 5000, 2**21 - 1), (5, 2**40, -(2**50)))))
    return pa.table(
        {
            "user_id": pa.array([draw(st.sampled_from(people)) for _ in range(n)], pa.int64()),
            "t": pa.array([draw(st.integers(0, 12)) * MINUTE_US for _ in range(n)], pa.int64()),
            "m": pa.array([draw(st.integers(1, 7)) for _ in range(n)], pa.int64()),
            "rid": pa.array(range(n), pa.int64()),
            "eid": pa.array([f"e{draw(st.integers(0, 99)):02d}-{i}" for i in range(n)], pa.string()),
        }
    )


def _sorted_by(rows: pa.Table, keys: list[str]) -> pa.Table:
    return rows.take(pc.sort_indices(rows, [(k, "ascending") for k in keys]))


def _fold(rows: pa.Table, asked: list[int], **args: int) -> pa.Table:
    """:func:`fold_best` over ``rows`` with a lookup by ``rid`` that records the keys asked for in ``asked``."""
    eid = dict(zip(rows["rid"].to_pylist(), rows["eid"].to_pylist(), strict=True))

    def lookup(keys: pa.Array | pa.ChunkedArray) -> pa.Array:
        asked.extend(keys.to_pylist())
        return pa.array([eid[k] for k in keys.to_pylist()], pa.string())

    return fold_best(rows.drop_columns(["eid"]), lookup, **args)


@SETTINGS
@given(rows=scan_rows(), seed=st.integers(0, 2**32 - 1), window=st.integers(0, 8), threads=st.sampled_from([1, 2, 3]))
def test_the_fold_does_not_depend_on_the_row_order(rows: pa.Table, seed: int, window: int, threads: int) -> None:
    args = {"n": 3, "w_us": window * MINUTE_US, "hi_us": 10 * MINUTE_US}
    asked: list[int] = []
    want = _fold(_sorted_by(rows, ["user_id", "t", "eid"]), asked, **args)  # already in order, on one thread
    shuffled = rows.take(pa.array(np.random.default_rng(seed).permutation(rows.num_rows)))
    by_time = _sorted_by(shuffled, ["t"])  # the append order, ties in any order
    for given_rows in (shuffled, by_time, _sorted_by(rows, ["user_id", "t"])):
        asked.clear()
        # small scans run on one thread otherwise
        assert _fold(given_rows, asked, **args, threads=threads).equals(want)
        # only the rows sharing a person and an instant with another have their event id read
        pairs = list(zip(rows["user_id"].to_pylist(), rows["t"].to_pylist(), strict=True))
        assert sorted(asked) == [r for r, pair in enumerate(pairs) if pairs.count(pair) > 1]


def test_an_empty_scan_folds_to_nothing() -> None:
    rows = pa.table({"user_id": pa.array([], pa.int64()), "t": pa.array([], pa.int64()),
                     "m": pa.array([], pa.int64()), "rid": pa.array([], pa.int64())})  # fmt: skip
    assert fold_best(rows, lambda keys: pa.array([], pa.string()), n=3, w_us=0, hi_us=0).num_rows == 0
