"""The core-metrics dashboard judged by the simulator: what the simulator plants, the dashboard shows, and where.

- The payment funnel by ``$os`` flags exactly one breakpoint: the step ``confirm_payment → enter_password`` for the
  OS with the lowest configured password conversion (``SimConfig.password_conversion_*``), read from the config;
  a second simulation plants the drop on iOS instead, so the test cannot pass by knowing "Android".
- The fake-install channel (``userloop.sim.config.POOR_CHANNEL``) has the worst channel quality: the lowest
  install → register conversion and the lowest retention after install, and it is the one value flagged at
  ``register``.

Each simulation is 1,500 people over 40 days, loaded through the real ingest path into a workspace, with the
platform's sends marked passive as ``userloop simulate`` does.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from userloop.ingest import TimePolicy, load_table
from userloop.query.dashboards import core_metrics
from userloop.query.engine import Engine
from userloop.sim import PASSIVE_EVENTS, SimConfig, simulate
from userloop.sim.config import CHANNELS, POOR_CHANNEL
from userloop.sim.world import OS_NAMES
from userloop.store import Workspace

pytestmark = pytest.mark.slow

END = date(2026, 6, 30)
#: The planted step: ``password_conversion_*`` is the share of ``confirm_payment`` that goes on to this step.
PLANTED_STEP = "enter_password"
VARIANTS = {
    "default": {},
    "ios_broken": {"password_conversion_ios": 0.45, "password_conversion_android": 0.90},
}


def password_conversion(config: SimConfig) -> dict[str, float]:
    """``$os`` → the configured confirm_payment → enter_password conversion, in the simulator's OS order."""
    by_os = (config.password_conversion_ios, config.password_conversion_android, config.password_conversion_harmony)
    return dict(zip(OS_NAMES, by_os, strict=True))


def simulate_into(path: Path, config: SimConfig) -> dict[str, Any]:
    """Simulate ``config`` into a new workspace and run the core-metrics dashboard the day after its end."""
    ws, _ = Workspace.init(path)
    try:
        info = ws.project_info("default")
        store = ws.project("default")
        policy = TimePolicy(max_future_seconds=info.max_future_seconds, max_past_days=10_000)
        for table in simulate(config, workers=1):
            load_table(store, table, source="sim", policy=policy)
        for event in PASSIVE_EVENTS:
            store.set_event_active(event, False)
        dashboard = core_metrics.run(Engine(store, info.timezone), today=END + timedelta(days=1))
    finally:
        ws.close()
    return {p["key"]: p for p in dashboard["panels"]}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[SimConfig, dict]:
    config = SimConfig(users=1_500, days=40, seed=3, end_date=END, **VARIANTS[request.param])
    return config, simulate_into(tmp_path_factory.mktemp(request.param) / "ws", config)


def breakpoints(series: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(s["breakdown"], step["label"]) for s in series for step in s["steps"] if step["is_breakpoint"]}


def test_payment_funnel_flags_the_planted_step_for_the_planted_os(planted: tuple[SimConfig, dict]) -> None:
    config, panels = planted
    conversion = password_conversion(config)
    broken = min(conversion, key=conversion.__getitem__)
    assert conversion[broken] < 0.6 < min(v for os, v in conversion.items() if os != broken)
    funnel = panels["payment_funnel"]["result"]
    assert {s["breakdown"] for s in funnel["breakdowns"]} == set(OS_NAMES)
    assert breakpoints(funnel["breakdowns"]) == {(broken, PLANTED_STEP)}
    step = next(s for s in funnel["breakdowns"] if s["breakdown"] == broken)["steps"][3]
    assert step["label"] == PLANTED_STEP and step["breakpoint"]["rule"] == "behind_other_values"
    assert step["breakpoint"]["conversion"] < step["breakpoint"]["others_conversion"] - 0.1
    # Overall, the funnel's breakpoint is the step with the highest drop-off, whatever it is.
    steps = funnel["steps"]
    worst = max(steps[1:], key=lambda s: (s["drop_off_rate"], -s["step"]))
    assert [s["label"] for s in steps if s["is_breakpoint"]] == [worst["label"]]
    assert steps[worst["step"] - 1]["breakpoint"]["rule"] == "largest_drop_off"


def test_the_fake_install_channel_shows_the_worst_quality(planted: tuple[SimConfig, dict]) -> None:
    _, panels = planted
    assert POOR_CHANNEL in CHANNELS
    funnel = panels["channel_conversion"]["result"]
    assert [s["label"] for s in funnel["steps"]] == ["install", "register", "order_paid"]
    registered = {s["breakdown"]: s["steps"][1]["conversion_from_previous"] for s in funnel["breakdowns"]}
    assert set(registered) == set(CHANNELS)
    assert min(registered, key=registered.__getitem__) == POOR_CHANNEL
    assert registered[POOR_CHANNEL] < 0.5 * min(v for c, v in registered.items() if c != POOR_CHANNEL)
    assert breakpoints(funnel["breakdowns"]) == {(POOR_CHANNEL, "register")}

    retention = panels["channel_retention"]["result"]
    assert retention["start_type"] == "first_time"
    week_1 = {a["breakdown"]: a["rates"][1] for a in retention["average"]}
    assert set(week_1) == set(CHANNELS)
    assert min(week_1, key=week_1.__getitem__) == POOR_CHANNEL
    assert week_1[POOR_CHANNEL] < 0.5 * min(v for c, v in week_1.items() if c != POOR_CHANNEL)
