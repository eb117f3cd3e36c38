"""The business truths planted in the simulation are visible in its records (DOMAIN §4–§6, §10, §13)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.compute as pc
import pytest

from userloop.sim import SimConfig

from .conftest import SMALL, Simulated, build

LOCAL_DAY = "CAST(to_timestamp(time / 1000) AT TIME ZONE 'Asia/Shanghai' AS DATE)"


def _step_conversion(sim: Simulated, first: str, then: str) -> dict[str, float]:
    rows = sim.sql(
        'SELECT "$os", count(*) FILTER (WHERE event = ?) / count(*) FILTER (WHERE event = ?) '
        'FROM events WHERE "$os" IS NOT NULL GROUP BY 1',
        [then, first],
    )
    return dict(rows)


def test_payment_breakpoint_shows_by_os(small: Simulated) -> None:
    password = _step_conversion(small, "confirm_payment", "enter_password")
    assert password["iOS"] > 0.8 and password["HarmonyOS"] > 0.8
    assert password["Android"] < 0.6
    # The other steps do not differ by device.
    for first, then in (("checkout", "confirm_payment"), ("enter_password", "order_paid")):
        step = _step_conversion(small, first, then)
        assert max(step.values()) - min(step.values()) < 0.1, (first, then, step)


def test_payment_breakpoint_shows_per_user_day(small: Simulated) -> None:
    rows = small.sql(
        f'WITH d AS (SELECT distinct_id, {LOCAL_DAY} AS day, any_value("$os") AS os, '
        "bool_or(event = 'confirm_payment') AS confirmed, bool_or(event = 'enter_password') AS typed "
        'FROM events WHERE "$os" IS NOT NULL GROUP BY 1, 2) '
        "SELECT os, avg(typed::INT) FROM d WHERE confirmed GROUP BY 1"
    )
    conversion = dict(rows)
    assert conversion["iOS"] - conversion["Android"] > 0.25


def _daily(sim: Simulated) -> dict[date, tuple[float, float]]:
    """Per local day: events and paid orders per person installed by then."""
    rows = sim.sql(
        f"WITH d AS (SELECT {LOCAL_DAY} AS day, count(*) AS events, count(*) FILTER (WHERE event = 'order_paid') "
        "AS orders FROM events GROUP BY 1) "
        "SELECT day, events, orders, (SELECT count(*) FROM truth "
        "WHERE CAST(install_time AT TIME ZONE 'UTC' AT TIME ZONE 'Asia/Shanghai' AS DATE) <= d.day) FROM d"
    )
    return {day: (events / people, orders / people) for day, events, orders, people in rows}


def test_weekends_are_busier(small: Simulated) -> None:
    daily = _daily(small)
    ordinary = [d for d in daily if d >= date(2024, 5, 6) and not (date(2024, 6, 15) <= d <= date(2024, 6, 18))]
    weekend = np.mean([daily[d][0] for d in ordinary if d.weekday() >= 5])
    weekday = np.mean([daily[d][0] for d in ordinary if d.weekday() < 5])
    assert weekend > 1.1 * weekday


def test_holidays_are_busier(small: Simulated) -> None:
    daily = _daily(small)
    around = [date(2024, 6, d) for d in (11, 12, 13, 19, 20, 25, 26, 27)]  # ordinary weekdays near 618
    baseline_events = np.mean([daily[d][0] for d in around])
    baseline_orders = np.mean([daily[d][1] for d in around])
    assert daily[date(2024, 6, 18)][0] > 1.4 * baseline_events
    assert daily[date(2024, 6, 18)][1] > 1.4 * baseline_orders


def test_poor_channel_has_many_installs_but_few_real_users(small: Simulated) -> None:
    rows = small.sql(
        "WITH opens AS (SELECT i.person, count(*) AS n FROM events e JOIN ids i USING (distinct_id) "
        "WHERE e.event = 'app_start' GROUP BY 1) "
        "SELECT channel, count(*), avg((orders > 0)::INT), avg((coalesce(o.n, 0) <= 1)::INT) "
        "FROM truth LEFT JOIN opens o USING (person) GROUP BY 1"
    )
    by_channel = {channel: (installs, buyers, once) for channel, installs, buyers, once in rows}
    installs, buyers, once = by_channel.pop("ad_network_x")
    assert installs > min(n for n, _, _ in by_channel.values())
    assert once > 0.6
    assert buyers < 0.4 * min(b for _, b, _ in by_channel.values())
    assert max(o for _, _, o in by_channel.values()) < 0.3


def test_community_category_preferences_show_in_purchases(small: Simulated) -> None:
    rows = small.sql(
        "SELECT t.community_kind, avg((e.category = 'imported_fruit')::INT), avg((e.category = 'laundry')::INT) "
        "FROM events e JOIN ids i USING (distinct_id) JOIN truth t USING (person) "
        "WHERE e.event = 'order_item' GROUP BY 1"
    )
    share = {kind: (fruit, laundry) for kind, fruit, laundry in rows}
    assert share["imported_fruit"][0] > 2 * share["fresh_food"][0]
    assert share["imported_fruit"][0] > 2 * share["balanced"][0]
    assert share["premium_laundry"][1] > 2 * share["fresh_food"][1]
    assert share["premium_laundry"][1] > 2 * share["balanced"][1]


def test_no_purchase_after_dropout(small: Simulated) -> None:
    rows = small.sql(
        "SELECT count(*) FILTER (WHERE e.time > epoch_ms(t.dropout_time::TIMESTAMP)), "
        "count(*) FILTER (WHERE e.time = epoch_ms(t.dropout_time::TIMESTAMP)), count(DISTINCT t.person) "
        "FROM events e JOIN ids i USING (distinct_id) JOIN truth t USING (person) "
        "WHERE e.event = 'order_paid' AND t.dropout_time IS NOT NULL"
    )
    after, at_dropout, dropped = rows[0]
    assert after == 0
    assert at_dropout == dropped > 50  # each dropout happens right after a purchase


def test_activity_fades_after_dropout(small: Simulated) -> None:
    rows = small.sql(
        "SELECT avg((e.time < epoch_ms(t.dropout_time::TIMESTAMP))::INT) FROM events e JOIN ids i USING (distinct_id) "
        "JOIN truth t USING (person) WHERE t.dropout_time IS NOT NULL AND e.event = 'app_start' "
        "AND e.time > epoch_ms(t.dropout_time::TIMESTAMP) - 14 * 86400000 "
        "AND e.time < epoch_ms(t.dropout_time::TIMESTAMP) + 14 * 86400000"
    )
    assert rows[0][0] > 0.7  # far more visits in the two weeks before dropout than in the two weeks after


def test_orders_in_truth_match_the_events(small: Simulated) -> None:
    rows = small.sql(
        "WITH paid AS (SELECT i.person, count(*) AS n FROM events e JOIN ids i USING (distinct_id) "
        "WHERE e.event = 'order_paid' GROUP BY 1) "
        "SELECT count(*) FROM truth LEFT JOIN paid USING (person) WHERE truth.orders <> coalesce(paid.n, 0)"
    )
    assert rows == [(0,)]


@pytest.fixture(scope="module")
def untreated() -> Simulated:
    return build(SimConfig(users=4_000, days=60, end_date=SMALL.end_date, control_share=1.0))


def test_purchase_counts_follow_bgnbd(untreated: Simulated) -> None:
    """Per person, E[X(t) | λ, p] = (1 - exp(-λ p t)) / p (Fader, Hardie & Lee 2005, eq. 7 before mixing)."""
    truth = untreated.truth
    real = pc.invert(truth.column("is_fake_install")).to_numpy(zero_copy_only=False)
    lam = truth.column("purchase_rate").to_numpy()[real]
    p = truth.column("dropout_prob").to_numpy()[real]
    installed = pc.cast(truth.column("install_time"), "int64").to_numpy()[real]
    end_ms = untreated.sql("SELECT max(time) FROM events")[0][0]
    t = np.maximum(end_ms - installed - 15 * 60_000, 0) / 86_400_000
    expected = (1 - np.exp(-lam * p * t)) / p
    observed = truth.column("orders").to_numpy()[real]
    assert untreated.sql("SELECT count(*) FROM events WHERE event IN ('coupon_received', 'push_received')") == [(0,)]
    assert observed.mean() == pytest.approx(expected.mean(), rel=0.15)
    # And the heterogeneity: the top quarter of λ buys several times more than the bottom quarter.
    top, bottom = lam >= np.quantile(lam, 0.75), lam <= np.quantile(lam, 0.25)
    assert observed[top].mean() > 4 * observed[bottom].mean()


def test_coupons_raise_purchases_in_the_next_seven_days(small: Simulated) -> None:
    """Coupons go to a random share of the eligible (registered, not in the control group) people."""
    rows = small.sql(
        f"WITH drops AS (SELECT DISTINCT {LOCAL_DAY} AS day, min(time) OVER (PARTITION BY {LOCAL_DAY}) AS at "
        "FROM events WHERE event = 'coupon_received'), "
        "got AS (SELECT DISTINCT i.person, " + LOCAL_DAY + " AS day FROM events e JOIN ids i USING (distinct_id) "
        "WHERE e.event = 'coupon_received'), "
        "paid AS (SELECT i.person, " + LOCAL_DAY + " AS day FROM events e JOIN ids i USING (distinct_id) "
        "WHERE e.event = 'order_paid'), "
        "eligible AS (SELECT d.day, t.person FROM drops d JOIN truth t "
        "ON epoch_ms(t.registered_time::TIMESTAMP) < d.at "
        "AND NOT t.never_treated AND (t.dropout_time IS NULL OR epoch_ms(t.dropout_time::TIMESTAMP) > d.at) "
        "WHERE d.day <= DATE '2024-06-23') "
        "SELECT g.person IS NOT NULL AS treated, count(*), "
        "avg((SELECT count(*) FROM paid p WHERE p.person = e.person AND p.day > e.day AND p.day <= e.day + 7)) "
        "FROM eligible e LEFT JOIN got g ON g.person = e.person AND g.day = e.day GROUP BY 1"
    )
    arms = {treated: (n, mean) for treated, n, mean in rows}
    (n_treated, treated), (n_control, control) = arms[True], arms[False]
    assert n_treated > 200 and n_control > 200
    assert treated > control * 1.15


def test_pushes_reach_only_reachable_people(small: Simulated) -> None:
    small.con.register("profiles", small.of_type("profile_set"))
    rows = small.sql(
        "WITH muted AS (SELECT DISTINCT i.person FROM profiles p JOIN ids i USING (distinct_id) "
        "WHERE NOT p.push_enabled), "
        "gone AS (SELECT i.person, min(p.time) AS t FROM profiles p JOIN ids i USING (distinct_id) "
        "WHERE p.app_uninstalled GROUP BY 1) "
        "SELECT count(*), count(*) FILTER (WHERE i.person IN (SELECT person FROM muted)), "
        "count(*) FILTER (WHERE e.time > (SELECT t FROM gone g WHERE g.person = i.person)) "
        "FROM events e JOIN ids i USING (distinct_id) WHERE e.event = 'push_received'"
    )
    pushes, to_muted, after_uninstall = rows[0]
    assert pushes > 1000 and to_muted == 0 and after_uninstall == 0
    uninstalled = small.sql("SELECT count(*) FROM profiles WHERE app_uninstalled")[0][0]
    assert uninstalled > 50


def test_never_treated_people_get_no_push_or_coupon(small: Simulated) -> None:
    rows = small.sql(
        "SELECT count(*) FROM events e JOIN ids i USING (distinct_id) JOIN truth t USING (person) "
        "WHERE t.never_treated AND e.event IN ('push_received', 'coupon_received')"
    )
    assert rows == [(0,)]
    assert small.sql("SELECT avg(never_treated::INT) FROM truth")[0][0] == pytest.approx(0.1, abs=0.03)
