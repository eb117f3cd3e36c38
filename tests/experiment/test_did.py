"""Difference-in-differences with matched controls, graded against the simulator's planted membership effect
(issue 15 item 6): the interval covers the true average effect on the treated and the naive before/after one does
not; the cell means are recounted by brute force from the raw records."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from tests.experiment.causal_sim import load
from userloop.cli.main import app
from userloop.core.errors import NotFoundError, UserloopError
from userloop.experiment.causal_types import Outcome, PropertyFilter, Treatment
from userloop.experiment.did import DidSpec, difference_in_differences, explain
from userloop.experiment.did_estimate import DidEstimate, _clustered
from userloop.sim import SimConfig
from userloop.sim.config import MembershipConfig
from userloop.sim.membership import membership_att
from userloop.store import Workspace
from userloop.store.sqlbuild import sql

#: 120 days: launch on day 40, a sales week on days 80-86 that doubles everyone's purchases; no coupons or
#: pushes, so every order comes from the rate membership multiplies (as in tests/sim/test_membership.py).
PROGRAMME = MembershipConfig(launch_day=40, campaign_day=80, campaign_days=7, campaign_lift=2.0, join_rate=0.001)
CONFIG = SimConfig(
    users=6_000, days=120, end_date=date(2024, 4, 20), coupon_share=0.0, push_share=0.0, membership=PROGRAMME
)
SPEC = DidSpec(had_done=("register",), start=CONFIG.start_date, end=CONFIG.end_date)


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    return load(CONFIG, tmp_path_factory.mktemp("did") / "ws")


@pytest.fixture(scope="module")
def found(business: tuple[Path, pa.Table]) -> DidEstimate:
    """The estimate of ``SPEC``, read once for the tests that look at it."""
    return _estimate(business[0], SPEC)


def _estimate(path: Path, spec: DidSpec) -> DidEstimate:
    with Workspace.open(path, read_only=True) as ws:
        return difference_in_differences(ws.project("default"), spec, ws.project_info("default").timezone)


def test_the_interval_covers_the_true_effect_and_the_naive_comparisons_do_not(
    business: tuple[Path, pa.Table], found: DidEstimate
) -> None:
    att = membership_att(business[1])
    assert found.effect.low < att.orders_per_member_day < found.effect.high
    assert found.relative.low < att.relative < found.relative.high
    assert found.effect.low > 0  # the effect is found, not just covered
    # Joiners are picked at a high point of their own orders and regress: before/after reads a fall.
    assert found.before_after.high < att.orders_per_member_day and found.before_after.estimate < 0
    # Joiners were better customers already: members vs non-members overstates.
    assert found.members_vs_others.low > att.orders_per_member_day
    assert found.matched > 0.9 * found.joiners and found.balance.treated == pytest.approx(
        found.balance.controls, rel=0.01
    )
    sentences = explain(found, SPEC)
    assert "member_join" in sentences[0]["en"] and "置信区间" in sentences[0]["zh"]


def test_without_censoring_later_joiners_the_effect_is_understated(
    business: tuple[Path, pa.Table], found: DidEstimate
) -> None:
    kept = _estimate(business[0], SPEC.model_copy(update={"censor": "keep"}))
    assert kept.effect.estimate < 0.85 * found.effect.estimate


def test_spend_is_an_outcome_and_filters_narrow_the_treatment(business: tuple[Path, pa.Table]) -> None:
    path, truth = business
    spend = _estimate(path, SPEC.model_copy(update={"outcome": Outcome(property="order_amount")}))
    att = membership_att(truth)
    assert spend.effect.low < att.spend_per_member_day < spend.effect.high
    none = Treatment(where=(PropertyFilter(property="programme", value="no such programme"),))
    with pytest.raises(UserloopError, match="no person did") as caught:
        _estimate(path, SPEC.model_copy(update={"treatment": none}))
    assert caught.value.code == "model_no_data"


def test_unknown_names_are_clear_errors(business: tuple[Path, pa.Table]) -> None:
    path, _ = business
    with pytest.raises(NotFoundError) as caught:
        _estimate(path, SPEC.model_copy(update={"treatment": Treatment(event="vip_join")}))
    assert caught.value.field == "treatment.event" and caught.value.code == "unknown_event"
    with pytest.raises(UserloopError) as bad:
        _estimate(path, SPEC.model_copy(update={"outcome": Outcome(property="city")}))
    assert bad.value.field == "outcome.property" and bad.value.status == 400
    text_vs_number = Treatment(where=(PropertyFilter(property="programme", value=3.0),))
    with pytest.raises(UserloopError) as mismatch:
        _estimate(path, SPEC.model_copy(update={"treatment": text_vs_number}))
    assert mismatch.value.field == "treatment.where[0].value" and mismatch.value.status == 400
    with pytest.raises(UserloopError, match="span at most"):
        _estimate(path, SPEC.model_copy(update={"start": date(2001, 1, 1)}))


# A small business for the brute-force recount: every number from the raw records, in plain Python.
# 400 people over 40 days: 60 of 114 joiners matched in 24 cohorts, enough cells to recount.
SMALL = SimConfig(
    users=400,
    days=40,
    end_date=date(2024, 4, 20),
    seed=3,
    coupon_share=0.0,
    push_share=0.0,
    membership=MembershipConfig(launch_day=12, campaign_day=25, campaign_days=5, join_rate=0.015),
)


def test_the_cell_means_are_those_recounted_from_raw_records(tmp_path: Path) -> None:
    path, _ = load(SMALL, tmp_path / "ws")
    spec = DidSpec(had_done=("register",), start=SMALL.start_date, end=SMALL.end_date, censor="cut", pre_days=7)
    found = _estimate(path, spec)
    assert found.matched >= 30 and found.cohorts >= 10
    with Workspace.open(path, read_only=True) as ws:
        store = ws.project("default")
        rows = store.fetchall(
            sql(
                "SELECT user_id, event, time FROM $events "
                "UNION ALL SELECT user_id, 'first seen', first_seen FROM $users",
                events=store.ref("events"),
                users=store.ref("users"),
            )
        )
        passive = store.passive_events()
    assert _brute_force(rows, passive, SMALL.start_date, SMALL.days, SMALL.timezone) == pytest.approx(
        found.effect.estimate, rel=1e-9
    )


def _brute_force(rows: list[tuple[int, str, datetime]], passive: frozenset[str], start: date, days: int,
                 zone: str) -> float:  # fmt: skip
    """The DiD with ``censor="cut"`` and ``pre_days=7`` by loops over people, days and cells."""
    tz = ZoneInfo(zone)

    def day(t: datetime) -> int:
        return (t.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).date() - start).days

    orders: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    active: dict[int, set[int]] = defaultdict(set)
    first: dict[int, int] = {}
    joined: dict[int, int] = {}
    registered: dict[int, int] = {}
    for user, event, t in rows:
        d = day(t)
        if event == "first seen":
            first[user] = d
        elif event == "order_paid":
            orders[user][d] += 1
        if event not in passive and event != "first seen" and 0 <= d < days:
            active[user].add(d)
        if event == "member_join":
            joined[user] = min(joined.get(user, d), d)
        if event == "register":
            registered[user] = min(registered.get(user, d), d)
    people = [u for u in first if first[u] < days]

    def count(u: int, lo: int, hi: int) -> int:
        return sum(orders[u][t] for t in range(max(lo, 0), hi))

    def key(u: int, d: int) -> tuple[int, ...]:
        recent, earlier = count(u, d - 7, d), count(u, d - 14, d - 7)
        act = sum(1 for t in range(max(d - 7, 0), d) if t in active[u])
        tenure = d - first[u]
        return (min(recent, 12), sum(earlier >= b for b in (1, 2, 4)), sum(act >= b for b in (1, 4, 11)),
                sum(tenure >= b for b in (7, 14)), int(registered.get(u, days + 9) < d))  # fmt: skip

    total, member_days = 0.0, 0
    for d in sorted({j for j in joined.values() if 1 <= j < days - 1}):
        candidates = [u for u in people if joined.get(u, 10**9) > d and first[u] < d]
        cells: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for u in candidates:
            cells[key(u, d)].append(u)
        for j in (u for u in people if joined.get(u) == d and first[u] < d):
            controls = cells.get(key(j, d), [])
            if len(controls) < 2:
                continue
            pre_c = sum(count(u, d - 7, d) / (d - max(d - 7, 0)) for u in controls) / len(controls)
            pre_j = count(j, d - 7, d) / (d - max(d - 7, 0))
            for t in range(d + 1, days):
                still = [u for u in controls if joined.get(u, 10**9) >= t]
                if still:
                    mean = sum(orders[u][t] for u in still) / len(still)
                    total += orders[j][t] - mean - (pre_j - pre_c)
                    member_days += 1
    return total / member_days


def test_the_command_line_prints_the_operations_reply(business: tuple[Path, pa.Table], found: DidEstimate) -> None:
    path, _ = business
    args = ["experiments", "did", "--had-done", "register", "--start", str(CONFIG.start_date), "--end",
            str(CONFIG.end_date), "-w", str(path), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["effect"]["estimate"] == pytest.approx(found.effect.estimate)
    assert reply["matched"] == found.matched and len(reply["sentences"]) == 3
    bad = CliRunner().invoke(app, ["experiments", "did", "--where", "programme", "-w", str(path), "--json"])
    assert bad.exit_code == 2 and json.loads(bad.output)["error"]["code"] == "invalid"


def test_the_two_way_variance_is_the_hand_count() -> None:
    """Cameron, Gelbach & Miller (2011): V = V_person + V_day − V_person-day, each with its G/(G−1) correction,
    recounted with loops; a negative difference falls back to the person-clustered variance."""
    psi = np.array([[1.0, 0.5, 0.0], [-0.5, 2.0, 1.0], [0.0, -1.0, 0.25], [0.75, 0.0, -0.5]])

    def corrected(sums: list[float]) -> float:
        g = sum(1 for s in sums if s != 0)
        return sum(s * s for s in sums) * g / (g - 1)

    people = [sum(row) for row in psi.tolist()]
    days = [sum(psi[i, t] for i in range(4)) for t in range(3)]
    cells = [float(x) for x in psi.ravel()]
    assert _clustered(psi) == pytest.approx((corrected(people) + corrected(days) - corrected(cells)) ** 0.5)
    assert _clustered(psi.sum(axis=1)) == pytest.approx(corrected(people) ** 0.5)
    # Influences that offset within people and days: the two-way sum is negative, the person-clustered one stands.
    offsetting = np.array([[1.0, -0.9], [-1.0, 1.0], [1.0, -1.1]])
    assert _clustered(offsetting) == pytest.approx((2 * (0.1**2 + 0.1**2)) ** 0.5)
