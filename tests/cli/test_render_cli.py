"""End to end through the command line on a small simulated workspace: the text output of ``query``,
``insights run``, ``dashboard core-metrics`` and ``models report`` fits 80 and 120 columns and carries the numbers
of the result; ``--json`` prints the same document as before the text renderers existed (the engine's, byte for
byte apart from the timing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from userloop.cli.main import app
from userloop.cli.output import to_json

runner = CliRunner()

FUNNEL = {
    "kind": "funnel",
    "date_range": {"last": 30},
    "window": {"value": 1, "unit": "day"},
    "steps": [{"event": "view_item"}, {"event": "add_to_cart"}, {"event": "checkout"}, {"event": "order_paid"}],
    "breakdown": {"property": "$os"},
}
RETENTION = {
    "kind": "retention",
    "date_range": {"last": 35},
    "interval": "week",
    "periods": 4,
    "start": {"event": "register"},
    "return_event": {"event": "$any"},
    "breakdown": {"property": "channel", "source": "user"},
}
TRENDS = {
    "kind": "trends",
    "date_range": {"last": 14},
    "series": [{"event": "order_paid", "math": "sum", "property": "order_amount"}],
    "breakdown": {"property": "$os"},
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 simulated people over 35 days ending yesterday, with the RFM and lifecycle models run."""
    from userloop.core.clock import today_in
    from userloop.models.pipeline import run_models
    from userloop.sim.run import run_simulation
    from userloop.store import Workspace

    path = tmp_path_factory.mktemp("render") / "ws"
    workspace, _ = Workspace.init(path)
    try:
        report = run_simulation(workspace, "default", users=300, days=35, seed=11)
        timezone = workspace.project_info("default").timezone
        assert report.end_date < today_in(timezone)
        run_models(workspace.project(), report.end_date, ["rfm", "lifecycle"], timezone=timezone)
    finally:
        workspace.close()
    return path


def call(*args: str, width: int = 80) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(width)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_fits(text: str, width: int) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, wide[:3]


def definition_file(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / f"{doc['kind']}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def engine_document(ws: Path, definition: dict[str, Any]) -> dict[str, Any]:
    """The document ``userloop query --json`` printed before the text renderers: the engine's, as JSON."""
    from userloop.query.engine import Engine
    from userloop.store import Workspace

    workspace = Workspace.open(ws, read_only=True)
    try:
        engine = Engine(workspace.project("default"), workspace.project_info("default").timezone)
        return engine.run(definition, timeout_s=60).model_dump(mode="json")
    finally:
        workspace.close()


@pytest.mark.parametrize("definition", [FUNNEL, RETENTION, TRENDS], ids=lambda d: d["kind"])
def test_query_text_fits_and_json_is_unchanged(ws: Path, tmp_path: Path, definition: dict[str, Any]) -> None:
    source = definition_file(tmp_path, definition)
    out = call("query", source, "-w", str(ws), "--json")
    doc = json.loads(out)
    expected = engine_document(ws, definition)
    assert out.strip() == to_json({**expected, "took_ms": doc["took_ms"], "cached": doc["cached"]})

    for width in (80, 120):
        text = call("query", source, "-w", str(ws), width=width)
        assert_fits(text, width)
        assert "{" not in text
    text = call("query", source, "-w", str(ws))
    result = doc["result"]
    if definition["kind"] == "funnel":
        assert "转化率" in text and "conversion" in text
        assert result["breakdowns"], "the simulated data has people on every OS"
        for series in result["breakdowns"]:
            assert f"分组 / breakdown: {series['breakdown']}" in text
            assert f"{series['conversion_rate'] * 100:.1f}%" in text
    elif definition["kind"] == "retention":
        for cohort in result["cohorts"]:
            assert cohort["breakdown"] in text
        assert "第1周" in text and "week 1" in text
    else:
        for line in result["series"]:
            assert line["breakdown"] in text and f"{line['total']:,.2f}" in text


def test_saved_insight_runs_as_text(ws: Path, tmp_path: Path) -> None:
    source = definition_file(tmp_path, FUNNEL)
    saved = json.loads(call("insights", "save", "OS funnel", source, "-w", str(ws), "--json"))
    text = call("insights", "run", str(saved["id"]), "-w", str(ws))
    assert "OS funnel" in text and "漏斗 / funnel" in text
    assert_fits(text, 80)


def test_dashboard_text_fits_80_columns(ws: Path) -> None:
    text = call("dashboard", "core-metrics", "-w", str(ws))
    assert_fits(text, 80)
    assert "支付漏斗 / Payment funnel" in text and "新用户留存 / New-user retention" in text
    assert "分组 / breakdown: Android" in text


def test_models_report_is_tables_and_json_is_unchanged(ws: Path) -> None:
    from userloop.models.base import latest_report
    from userloop.store import Workspace

    out = call("models", "report", "rfm", "-w", str(ws), "--json")
    workspace = Workspace.open(ws, read_only=True)
    try:
        stored = latest_report(workspace.project(), "rfm")
    finally:
        workspace.close()
    assert out.strip() == to_json(stored)

    for width in (80, 120):
        text = call("models", "report", "rfm", "-w", str(ws), width=width)
        assert_fits(text, width)
    assert '{"' not in text
    for cls in stored["report"]["classes"]:
        assert cls["zh"] in text and cls["en"] in text
    assert "分类 / classes" in text and "配置 / configuration" in text
