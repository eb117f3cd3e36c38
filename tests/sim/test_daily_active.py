"""The dashboard's DAU against the simulator's ground truth: the people who really used the app each day.

A small business (1,500 people over 30 days, pushes and coupons included) is simulated into a workspace through
the ingest layer; the core-metrics dashboard's DAU panel must equal, day by day and exactly, the number of people
the simulator's replay says had a session of their own that day (:func:`userloop.sim.daily_active`). Pushes and
coupons received are passive, so counting them would overstate DAU; the test checks it would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from userloop.query.dashboards.core_metrics import definitions
from userloop.query.engine import Engine
from userloop.sim import PASSIVE_EVENTS, SimConfig, daily_active
from userloop.sim.run import run_simulation
from userloop.store import Workspace
from userloop.store.sqlbuild import sql

TZ = "Asia/Shanghai"
END = date(2024, 6, 30)
USERS, DAYS, SEED = 1_500, 30, 7


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws, _ = Workspace.init(Path(tmp_path_factory.mktemp("dau")) / "ws", timezone=TZ)
    run_simulation(ws, "default", users=USERS, days=DAYS, seed=SEED, end_date=END)
    yield ws
    ws.close()


def test_dashboard_dau_equals_the_people_who_used_the_app(simulated: Workspace) -> None:
    project = simulated.project("default")
    assert set(PASSIVE_EVENTS) <= project.passive_events()  # the simulator marks its own sends
    truth = daily_active(SimConfig(users=USERS, days=DAYS, seed=SEED, end_date=END, timezone=TZ))
    panel = next(p for p in definitions() if p["key"] == "dau_mau")
    result = Engine(project, TZ).run(panel["definition"], today=END + timedelta(days=1)).result
    dau = next(s for s in result["series"] if s["label"] == "DAU")
    shown = dict(zip(result["buckets"], dau["data"], strict=True))
    assert len(truth) == DAYS and set(shown) >= {d.isoformat() for d in truth}
    assert {d: shown[d.isoformat()] for d in truth} == {d: len(people) for d, people in truth.items()}

    # counting what was sent to people would have overstated it on push and coupon days
    every_event = sql(
        "SELECT CAST(timezone($tz, CAST(time AS TIMESTAMPTZ)) AS DATE) AS d, count(DISTINCT user_id) FROM $e "
        "GROUP BY d",
        tz=TZ,
        e=project.ref("events"),
    )
    rows = project.fetchall(every_event)
    with_passive = {d: int(n) for d, n in rows}
    over = [d for d, people in truth.items() if with_passive.get(d, 0) > len(people)]
    assert len(over) >= 5, "the simulation should send pushes or coupons on several days"
