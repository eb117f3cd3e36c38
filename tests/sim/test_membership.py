"""The membership programme: off, it changes nothing; on, it plants selection, growth, a campaign and a known effect."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from userloop.sim import SimConfig, daily_active, ground_truth, simulate
from userloop.sim.config import MembershipConfig
from userloop.sim.membership import membership_att
from userloop.sim.world import World

#: The digests of TINY's records, ground truth and daily actives, computed by the simulator before the
#: membership programme existed (commit d263499): a business without a programme must stay byte-identical.
TINY = SimConfig(users=400, days=21, end_date=date(2024, 6, 30), chunk_days=5)
RECORDS_DIGEST = "68f0664e0bd862084f628689a37156a16f1cd9dbf917a93b5d9ee21bcee80bba"
TRUTH_DIGEST = "d88df10c08e989db301122a1814a78441342022fccc9c3745372bb59db95380d"
ACTIVE_DIGEST = "4b1dc99738025820aad93fc786c2a1e35187a73e7e66657571bf44a811a26287"

#: 120 days from 2023-12-23: launch on 2024-02-01 (day 40), the sales week 2024-03-12..18 (days 80-86) between
#: two weeks without holidays. No coupons or pushes, so every purchase comes from the rate membership multiplies.
PROGRAMME = MembershipConfig(launch_day=40, campaign_day=80, campaign_days=7, campaign_lift=2.0, join_rate=0.001)
ON = SimConfig(
    users=6_000, days=120, end_date=date(2024, 4, 20), coupon_share=0.0, push_share=0.0, membership=PROGRAMME
)


def _digest(tables: list[pa.Table]) -> str:
    h = hashlib.sha256()
    for table in tables:
        h.update(repr(table.schema.names).encode())
        for name in table.column_names:
            column = table.column(name)
            h.update(str(column.type).encode())
            h.update(repr(column.to_pylist()).encode())
    return h.hexdigest()


def test_without_a_programme_every_output_is_what_it_was() -> None:
    assert _digest(list(simulate(TINY, workers=0))) == RECORDS_DIGEST
    assert _digest([ground_truth(TINY)]) == TRUTH_DIGEST
    active = {str(day): people.tolist() for day, people in daily_active(TINY).items()}
    assert hashlib.sha256(repr(active).encode()).hexdigest() == ACTIVE_DIGEST


def test_with_a_programme_the_output_does_not_depend_on_threading() -> None:
    config = TINY.model_copy(update={"membership": MembershipConfig(launch_day=3, campaign_day=10, join_rate=0.05)})
    serial, threaded = list(simulate(config, workers=0)), list(simulate(config, workers=3))
    assert len(serial) == len(threaded) and all(a.equals(b) for a, b in zip(serial, threaded, strict=True))
    assert _digest(serial) != RECORDS_DIGEST


def test_the_programme_must_fit_the_window() -> None:
    with pytest.raises(ValueError, match="campaign"):
        SimConfig(days=60, membership=MembershipConfig(launch_day=10, campaign_day=58, campaign_days=7))
    with pytest.raises(ValueError, match="launch_day"):
        SimConfig(days=60, membership=MembershipConfig(launch_day=60, campaign_day=0))


@dataclass(frozen=True)
class Run:
    truth: pa.Table
    con: duckdb.DuckDBPyConnection

    def rows(self, query: str) -> list[tuple]:
        return self.con.execute(query).fetchall()


@pytest.fixture(scope="module")
def run() -> Run:
    tables = list(simulate(ON, workers=0))
    truth = ground_truth(ON)
    world = World.build(ON)
    con = duckdb.connect()
    events = pa.concat_tables([t for t in tables if t.column("type")[0].as_py() == "track"])
    starts = world.calendar.day_start_ms
    # Each event and each member with their local day (index into the window).
    events = events.append_column("day", pa.array(np.searchsorted(starts, events.column("time"), side="right") - 1))
    join_ms = truth.column("member_join_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    member = truth.column("member_join_time").is_valid()
    join_ms = np.where(member.to_numpy(zero_copy_only=False), join_ms, 0)
    joined = truth.append_column("join_ms", pa.array(join_ms)).append_column(
        "join_day", pa.array(np.searchsorted(starts, join_ms, side="right") - 1)
    )
    con.register("raw", events)
    con.register("truth", truth)
    con.register("joined", joined)
    con.register("days", pa.table({"day": np.arange(ON.days), "start_ms": starts[:-1]}))
    con.execute(
        "CREATE VIEW ids AS SELECT login_id AS distinct_id, person FROM truth WHERE login_id IS NOT NULL "
        "UNION ALL SELECT unnest(anonymous_ids) AS distinct_id, person FROM truth"
    )
    con.execute("CREATE TABLE events AS SELECT r.*, i.person FROM raw r JOIN ids i USING (distinct_id)")
    con.execute(
        "CREATE TABLE members AS SELECT person, join_ms, join_day, membership_effect, "
        "counterfactual_post_orders AS cf, post_join_orders FROM joined WHERE member_join_time IS NOT NULL"
    )
    return Run(truth, con)


def test_join_events_are_the_truths_join_times(run: Run) -> None:
    joins = run.rows("SELECT person, time FROM events WHERE event = 'member_join' ORDER BY person")
    assert joins == run.rows("SELECT person, join_ms FROM members ORDER BY person")
    assert len(joins) > 500
    # Nobody joins before the launch, and member counts grow week after week from it.
    by_week = dict(run.rows("SELECT (join_day - 40) // 7 AS w, count(*) FROM members GROUP BY w"))
    assert min(by_week) == 0 and all(by_week.get(w, 0) > 0 for w in range(11))
    levels = run.rows("SELECT DISTINCT level, programme FROM events WHERE event = 'member_join'")
    assert levels == [("silver", "fresh_club")]


def test_orders_after_joining_are_the_truths(run: Run) -> None:
    from_events = run.rows(
        "SELECT m.person, count(e.person) FROM members m LEFT JOIN events e "
        "ON e.person = m.person AND e.event = 'order_paid' AND e.day > m.join_day GROUP BY m.person ORDER BY 1"
    )
    assert from_events == run.rows("SELECT person, post_join_orders FROM members ORDER BY person")


def test_joiners_were_better_customers_before_joining(run: Run) -> None:
    ((joiners, others),) = run.rows(
        "SELECT avg(n) FILTER (WHERE member), avg(n) FILTER (WHERE NOT member) FROM ("
        "  SELECT t.person, t.member_join_time IS NOT NULL AS member, count(e.person) AS n FROM truth t "
        "  LEFT JOIN events e ON e.person = t.person AND e.event = 'order_paid' AND e.day < 40 "
        "  WHERE t.install_time < (SELECT make_timestamp(start_ms * 1000) FROM days WHERE day = 40) GROUP BY ALL)"
    )
    assert joiners > 1.5 * others


def test_post_join_purchases_match_the_planted_effect(run: Run) -> None:
    ((actual, expected, counterfactual),) = run.rows(
        "SELECT sum(post_join_orders), sum(membership_effect * cf), sum(cf) FROM members"
    )
    # Poisson sampling error of the total: the actual orders match m × the counterfactual, not the counterfactual.
    assert abs(actual - expected) < 4 * expected**0.5
    assert actual - counterfactual > 8 * counterfactual**0.5
    att = membership_att(run.truth)
    assert att.extra_orders == pytest.approx(expected - counterfactual)
    assert att.relative == pytest.approx((expected - counterfactual) / counterfactual)
    # The planted effects have the configured mean (6,000 draws: standard error about 0.005).
    effects = run.truth.column("membership_effect").to_numpy()
    assert effects.mean() == pytest.approx(PROGRAMME.effect_mean, abs=0.03)
    assert att.orders_per_member_day > 0 and att.spend_per_member_day > att.orders_per_member_day


def test_a_naive_member_comparison_overstates_the_effect(run: Run) -> None:
    ((member_rate, other_rate),) = run.rows(
        "SELECT (SELECT count(*) FROM events e JOIN members m USING (person) "
        "        WHERE e.event = 'order_paid' AND e.day > m.join_day) / (SELECT sum(119 - join_day) FROM members), "
        "       (SELECT count(*) FROM events e JOIN truth t USING (person) "
        "        WHERE e.event = 'order_paid' AND e.day >= 40 AND t.member_join_time IS NULL) "
        "       / (80.0 * (SELECT count(*) FROM truth WHERE member_join_time IS NULL))"
    )
    assert member_rate / other_rate - 1 > 3 * membership_att(run.truth).relative


def test_the_campaign_lifts_members_and_non_members(run: Run) -> None:
    weekly = run.rows(
        "SELECT m.person IS NOT NULL AND m.join_day < 73 AS member, "
        "  count(*) FILTER (WHERE e.day BETWEEN 80 AND 86), "
        "  count(*) FILTER (WHERE e.day BETWEEN 73 AND 79 OR e.day BETWEEN 87 AND 93) / 2 "
        "FROM events e LEFT JOIN members m USING (person) "
        "WHERE e.event = 'order_paid' AND (m.person IS NULL OR m.join_day < 73 OR m.join_day > 86) GROUP BY 1"
    )
    assert len(weekly) == 2
    for _, during, around in weekly:
        assert during > 1.6 * around


def test_points_are_never_spent_beyond_the_balance_and_levels_rise_one_at_a_time(run: Run) -> None:
    (lowest,) = run.rows(
        "SELECT min(balance) FROM (SELECT sum(CASE WHEN event = 'points_redeemed' THEN -points ELSE points END) "
        "  OVER (PARTITION BY person ORDER BY time, event DESC) AS balance FROM events "
        "  WHERE programme IS NOT NULL AND points IS NOT NULL)"
    )[0]
    assert lowest >= 0
    assert run.rows("SELECT count(*) FROM events WHERE event = 'points_redeemed'")[0][0] > 20
    steps = run.rows(
        "SELECT DISTINCT lvl - lag(lvl, 1, 0) OVER (PARTITION BY person ORDER BY time) FROM ("
        "  SELECT person, time, list_position(['silver', 'gold', 'platinum', 'diamond'], level) - 1 AS lvl "
        "  FROM events WHERE event IN ('member_join', 'member_level_up'))"
    )
    assert sorted(steps) == [(0,), (1,)]  # joining at the first level, then one level at a time
