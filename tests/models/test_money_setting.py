"""The money property is a project setting: the models value purchases by it (checked against a brute-force sum
of whichever property is chosen), the dashboards and starter tags read it, and a property that is missing or not
numeric is refused with a registered error and a hint, through the store, the CLI and the API alike."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.models.conftest import Row, memory_project
from userloop.cli.main import app
from userloop.core.errors import UserloopError
from userloop.models.base import read_outputs
from userloop.models.churn import ChurnConfig
from userloop.models.clv_model import CLVConfig
from userloop.models.pipeline import run_models
from userloop.models.purchases import with_money
from userloop.models.rfm import RFMConfig, RFMModel
from userloop.profile.starter import starter_tags
from userloop.query.dashboards.core_metrics import definitions
from userloop.store import ProjectStore, Workspace
from userloop.store.settings import money_property, set_money_property

AS_OF = date(2026, 3, 31)
TZ = "UTC"


def _project() -> tuple[ProjectStore, list[tuple[int, datetime, float, float]]]:
    """Purchases whose ``order_amount`` and ``price`` differ row by row (so the two totals tell them apart)."""
    rng = random.Random(7)
    purchases = [
        (uid, datetime(2026, 3, 1) + timedelta(days=rng.randrange(30), hours=rng.randrange(24)),
         round(rng.uniform(5, 200), 2), round(rng.uniform(1, 50), 2))
        for uid in range(1, 41) for _ in range(rng.randrange(1, 5))
    ]  # fmt: skip
    rows: list[Row] = [(uid, "order_paid", t, amount) for uid, t, amount, _ in purchases]
    rows += [(uid, "app_start", t - timedelta(minutes=5), None) for uid, t, _, _ in purchases]
    project = memory_project(rows)
    events = project.table("events")
    for i, (_, _, _, price) in enumerate(purchases):  # rows 0..n-1 are the purchases, in order
        project.con.execute(f"UPDATE {events} SET price = ? WHERE event_id = ?", [price, f"e{i}"])
    return project, purchases


def _monetary(project: ProjectStore) -> dict[int, float]:
    out = read_outputs(project, "rfm", AS_OF)
    return {int(u): float(m) for u, m in zip(out["user_id"], out["monetary"], strict=True)}


def _brute(purchases: list[tuple[int, datetime, float, float]], which: int) -> dict[int, float]:
    total: dict[int, float] = {}
    for p in purchases:
        total[p[0]] = total.get(p[0], 0.0) + p[which]
    return total


def test_changing_the_money_property_changes_the_monetary_values() -> None:
    project, purchases = _project()
    try:
        assert money_property(project) == "order_amount"  # the default, with no settings table yet
        RFMModel(RFMConfig(window_days=365)).run(project, AS_OF, timezone=TZ)
        by_amount = _monetary(project)
        assert by_amount == pytest.approx(_brute(purchases, 2))

        assert set_money_property(project, "price") == "price"
        assert money_property(project) == "price"
        run = RFMModel(RFMConfig(window_days=365)).run(project, AS_OF, timezone=TZ)
        by_price = _monetary(project)
        assert by_price == pytest.approx(_brute(purchases, 3))
        assert by_price != pytest.approx(by_amount)
        assert run.report["config"]["purchases"]["money"] == "price"  # the report says what it summed

        # a model configured with an explicit money property keeps it, whatever the setting
        explicit = RFMConfig.model_validate({"window_days": 365, "purchases": {"money": "order_amount"}})
        RFMModel(explicit).run(project, AS_OF, timezone=TZ)
        assert _monetary(project) == pytest.approx(by_amount)
    finally:
        project.store.close()


def test_every_purchase_model_reads_the_setting() -> None:
    project, _ = _project()
    try:
        set_money_property(project, "price")
        results = run_models(project, AS_OF, ["rfm", "lifecycle", "value"], timezone=TZ)
        for name, result in results.items():
            assert result["report"]["config"]["purchases"]["money"] == "price", name
    finally:
        project.store.close()
    # CLV and churn (too little history here to fit) get it the same way, churn's nested in its features
    for config in (CLVConfig(), ChurnConfig()):
        resolved = with_money(config, "price")
        dumped = resolved.model_dump()
        assert (dumped.get("purchases") or dumped["features"]["purchases"])["money"] == "price"
        assert with_money(resolved, "other") == resolved  # a money already set is kept


@pytest.mark.parametrize(
    ("name", "problem"), [("category", "is STRING, not NUMBER"), ("order_amout", "no event property")]
)
def test_a_missing_or_non_numeric_property_is_refused(name: str, problem: str) -> None:
    project, _ = _project()
    try:
        with pytest.raises(UserloopError) as info:
            set_money_property(project, name)
        assert info.value.code == "money_property_invalid" and problem in info.value.message
        assert info.value.hint and "order_amount" in info.value.hint  # the similar name, or every numeric one
        assert money_property(project) == "order_amount"  # nothing changed
    finally:
        project.store.close()


def test_dashboards_and_starter_tags_follow_the_setting() -> None:
    gmv = [p for p in definitions(30, "price") if "order_paid" in json.dumps(p["definition"])]
    sums = [s for p in gmv for s in p["definition"].get("series", []) if s.get("math") == "sum"]
    assert sums and {s["property"] for s in sums} == {"price"}
    assert "order_amount" not in json.dumps(definitions(30, "price"))
    tags = json.dumps(starter_tags("price"))
    assert "order_amount" not in tags and '"property": "price"' in tags
    assert starter_tags() == starter_tags("order_amount")


def test_ltv_sums_the_money_property_by_default_and_a_change_is_never_a_stale_cache_hit() -> None:
    from userloop.query.engine import Engine

    project, purchases = _project()
    try:
        engine = Engine(project, TZ)  # one engine, one cache across the change
        ltv = {"kind": "ltv", "date_range": {"from": "2026-02-25", "to": "2026-03-31"}, "cohort_interval": "month",
               "value_event": {"event": "order_paid"}, "days": [60]}  # fmt: skip

        def total(definition: dict[str, object]) -> float:
            (everyone,) = [engine.run(definition, today=date(2026, 6, 1)).result["all"]]
            return float(everyone["totals"][0])

        by_default = total(ltv)
        assert by_default == pytest.approx(sum(p[2] for p in purchases))  # every purchase, by order_amount
        assert by_default == pytest.approx(total({**ltv, "value_property": "order_amount"}))
        set_money_property(project, "price")
        assert total(ltv) == pytest.approx(sum(p[3] for p in purchases))  # the setting, not the cached answer
    finally:
        project.store.close()


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from userloop.sim.run import run_simulation

    ws, _ = Workspace.init(Path(tmp_path_factory.mktemp("money")) / "ws")
    try:
        run_simulation(ws, "default", users=150, days=30, seed=3, end_date=date(2026, 6, 30))
    finally:
        ws.close()
    return ws.path


def test_the_cli_shows_changes_and_refuses(small_ws: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["projects", "settings", "-w", str(small_ws), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["money_property"] == "order_amount"
    bad = runner.invoke(app, ["projects", "settings", "-w", str(small_ws), "--money-property", "payment_method"])
    assert bad.exit_code == 2
    assert "not NUMBER" in bad.output and "hint:" in bad.output and "order_amount" in bad.output
    changed = runner.invoke(app, ["projects", "settings", "-w", str(small_ws), "--money-property", "item_count"])
    assert changed.exit_code == 0, changed.output
    assert "item_count" in changed.output and "金额属性" in changed.output
    back = runner.invoke(
        app, ["projects", "settings", "default", "-w", str(small_ws), "--money-property", "order_amount", "--json"]
    )
    assert json.loads(back.output)["money_property"] == "order_amount"
