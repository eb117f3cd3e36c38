"""Text output of analyses and model reports: readable at 80 columns, rates beside counts, rounded numbers, human
durations, bilingual labels, every breakdown value shown.

The documents under ``render_docs/`` are real results recorded from ``userloop demo`` (2,000 people over 60 days)
with ``--json``; the checks compute what they expect from each document, so they hold for any numbers.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from tests.conftest import examples
from userloop.cli.render import RENDERERS, fmt, print_dashboard, print_model_report, print_result

DOCS = Path(__file__).parent / "render_docs"
ALL_DOCS = sorted(p.stem for p in DOCS.glob("*.json"))
RESULT_DOCS = [n for n in ALL_DOCS if not n.startswith("model_")]
REPORT_DOCS = [n for n in ALL_DOCS if n.startswith("model_")]


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DOCS / f"{name}.json").read_text())
    return doc


def render(doc: dict[str, Any], width: int = 80) -> str:
    """What the CLI prints for ``doc`` on a terminal ``width`` columns wide (no colours)."""
    buf = io.StringIO()
    con = Console(width=width, file=buf, highlight=False, soft_wrap=False, color_system=None)
    if "panels" in doc:
        print_dashboard(doc, con)
    elif "report" in doc:
        print_model_report(doc, con)
    else:
        print_result(doc, con)
    return buf.getvalue()


def assert_fits(text: str, width: int) -> None:
    wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not wide, f"{len(wide)} lines wider than {width}: {wide[:3]}"


def line_with(text: str, *parts: str) -> str:
    """The first line holding every one of ``parts`` (in any order); fails when there is none."""
    for line in text.splitlines():
        if all(p in line for p in parts):
            return line
    raise AssertionError(f"no line holds all of {parts!r}")


def row_with(text: str, *cells: str) -> list[str]:
    """The cells (split on runs of two or more spaces) of the first table row that starts with ``cells[0]`` and
    holds each of the others exactly."""
    for line in text.splitlines():
        row = re.split(r"\s{2,}", line.strip())
        if row[0] == cells[0] and all(c in row for c in cells[1:]):
            return row
    raise AssertionError(f"no row holds the cells {cells!r}")


def pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


# --- every kind, every width --------------------------------------------------------------------------------------


def test_the_recorded_documents_cover_every_kind() -> None:
    kinds = {load(n)["kind"] for n in RESULT_DOCS}
    assert kinds == set(RENDERERS), "a kind without a recorded document is not checked"
    assert len(REPORT_DOCS) >= 5


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", ALL_DOCS)
def test_no_line_is_wider_than_the_terminal(name: str, width: int) -> None:
    text = render(load(name), width)
    assert text.strip()
    assert_fits(text, width)
    assert "None" not in text and "nan" not in text


@settings(max_examples=examples(15))
@given(name=st.sampled_from(ALL_DOCS), width=st.integers(min_value=60, max_value=220))
def test_any_width_fits(name: str, width: int) -> None:
    assert_fits(render(load(name), width), width)


@pytest.mark.parametrize("name", ALL_DOCS)
def test_rendering_leaves_the_document_unchanged(name: str) -> None:
    doc = load(name)
    before = copy.deepcopy(doc)
    render(doc)
    assert doc == before


def test_no_unrounded_floats_in_any_output() -> None:
    """Ratios, money and times never print with their full binary tail (0.4555964266946926)."""
    long_fraction = re.compile(r"\d\.\d{5,}")
    for name in ALL_DOCS:
        text = render(load(name), 120)
        assert not long_fraction.search(text), (name, long_fraction.search(text))


# --- funnel ---------------------------------------------------------------------------------------------------------


def test_funnel_steps_are_rows_with_counts_rates_and_median_time() -> None:
    doc = load("funnel")
    text = render(doc, 80)
    assert "转化率" in text and "conversion" in text and "较上一步" in text and "from previous" in text
    for step in doc["result"]["steps"]:
        line = line_with(text, f" {step['label']}", f"{step['count']:,}")
        if step["step"] > 1:
            assert pct(step["conversion_from_previous"]) in line
            assert pct(step["conversion_from_first"]) in line
            assert fmt.duration(step["median_time_from_previous"]) in line
        assert ("◀" in line) == step["is_breakpoint"]
    result = doc["result"]
    assert pct(result["conversion_rate"]) in text
    assert fmt.duration(result["median_time_to_convert"]) in text


def test_funnel_shows_every_breakdown_value_with_its_own_rates() -> None:
    doc = load("funnel")
    text = render(doc, 80)
    breakdowns = doc["result"]["breakdowns"]
    assert len(breakdowns) == 3
    for series in breakdowns:
        assert f"分组 / breakdown: {series['breakdown']}" in text
        overview = line_with(text, series["breakdown"], f"{series['entered']:,}", pct(series["conversion_rate"]))
        assert f"{series['converted']:,}" in overview
    # each value's block holds its own step counts: the last step of every value
    blocks = text.split("分组 / breakdown: ")[1:]
    for series, block in zip(breakdowns, blocks, strict=True):
        last = series["steps"][-1]
        assert pct(last["conversion_from_first"]) in line_with(block, last["label"], f"{last['count']:,}")


def test_dashboard_funnels_by_category_and_channel_show_their_values() -> None:
    panels = [p for p in load_dashboard()["panels"] if p["definition"].get("breakdown")]
    text = render(load_dashboard(), 80)
    assert_fits(text, 80)
    for panel in panels:
        assert f"{panel['title_zh']} / {panel['title_en']}" in text
        if panel["definition"]["kind"] == "funnel":
            for series in panel["result"]["breakdowns"]:
                assert f"分组 / breakdown: {series['breakdown']}" in text


def load_dashboard() -> dict[str, Any]:
    """A dashboard document made of the recorded panels (the real one has the same shape)."""
    panels = []
    for key, zh, en in (
        ("funnel", "支付漏斗", "Payment funnel"),
        ("retention", "渠道质量：留存", "Channel retention"),
        ("gmv", "社区周 GMV", "GMV per community, weekly"),
    ):
        doc = load(key)
        panels.append(
            {
                "key": key,
                "title_zh": zh,
                "title_en": en,
                "definition": {"kind": doc["kind"], "breakdown": {"property": "x"}},
                "result": doc["result"],
                "warnings": [],
            }
        )
    panels.append(
        {
            "key": "broken",
            "title_zh": "坏",
            "title_en": "Broken",
            "definition": {"kind": "trends"},
            "error": {"code": "invalid", "message": "no such event"},
        }
    )
    return {"dashboard": "core_metrics", "panels": panels}


def test_dashboard_panel_errors_are_shown_and_the_rest_still_prints() -> None:
    text = render(load_dashboard(), 80)
    assert "坏 / Broken" in text and "error: no such event" in text
    assert text.index("支付漏斗") < text.index("坏 / Broken")


# --- retention ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["retention", "retention_day"])
def test_retention_shows_size_then_rates_per_period(name: str) -> None:
    doc = load(name)
    result = doc["result"]
    text = render(doc, 80)
    unit = {"day": ("天", "day"), "week": ("周", "week"), "month": ("月", "month")}[result["interval"]]
    assert f"第1{unit[0]}" in text and f"{unit[1]} 1" in text
    for k in range(result["periods"] + 1):
        assert f"{unit[1]} {k}" in text, f"period {k} missing"
    for cohort in result["cohorts"]:
        if cohort["size"] == 0:
            continue
        block = text if cohort.get("breakdown") is None else text.split(f"breakdown: {cohort['breakdown']}")[1]
        line = line_with(block, cohort["cohort"], f" {cohort['size']:,} ")
        shown = [r for r in cohort["rates"] if r is not None][:3]  # the first part of a split table
        for rate in shown:
            assert pct(rate) in line
    assert "平均 / average" in text


def test_retention_marks_periods_not_over_and_blocks_each_breakdown_value() -> None:
    doc = load("retention")
    text = render(doc, 80)
    values = {c["breakdown"] for c in doc["result"]["cohorts"]}
    assert len(values) > 1
    for value in values:
        assert f"分组 / breakdown: {value}" in text
    assert "* 周期尚未结束 / period not over yet" in text
    # the value per member (money, two decimals) of the first cohort
    first = doc["result"]["cohorts"][0]
    assert f"{first['values'][0]:,.2f}" in text


def test_wide_retention_splits_into_tables_that_repeat_cohort_and_size() -> None:
    doc = load("retention_day")
    text = render(doc, 80)
    first = doc["result"]["cohorts"][0]
    assert sum(1 for line in text.splitlines() if line.startswith(first["cohort"])) >= 2
    assert text.count("同期群") >= 2
    one = render(doc, 220)
    assert one.count("同期群") == 1


# --- trends -----------------------------------------------------------------------------------------------------------


def test_trends_show_each_breakdown_value_and_totals_with_separators() -> None:
    doc = load("trends")
    text = render(doc, 80)
    for line in doc["result"]["series"]:
        assert line["breakdown"] in text
        total = line["total"]
        expected = (
            f"{total:,.2f}" if any(not float(v).is_integer() for v in [*line["data"], total]) else f"{total:,.0f}"
        )
        assert expected in text
    assert "合计 / total" in text


def test_trends_with_many_breakdown_values_list_values_as_rows() -> None:
    doc = load("gmv")
    text = render(doc, 80)
    for line in doc["result"]["series"]:
        assert line_with(text, line["breakdown"], f"{line['data'][0]:,.2f}")
    assert text.count("$other") >= 1


def test_trends_compare_shows_the_previous_period() -> None:
    doc = load("trends_compare")
    text = render(doc, 80)
    previous = doc["result"]["compare"][0]
    line = line_with(text, doc["result"]["buckets"][0], doc["result"]["compare_buckets"][0])
    assert f"{previous['data'][0]:,.0f}" in line
    assert "上期 / previous" in text


# --- the other kinds ------------------------------------------------------------------------------------------------


def test_attribution_shares_and_money() -> None:
    doc = load("attribution")
    text = render(doc, 80)
    for channel in doc["result"]["channels"]:
        line = line_with(text, channel["channel"], pct(channel["credit"]["first"]["share"]))
        assert f"{channel['touched_conversions']:,}" in line
    assert f"{doc['result']['value']:,.2f}" in text
    assert "首次触点" in text and "time decay" in text


def test_interval_and_funnel_times_read_in_human_units() -> None:
    text = render(load("interval"), 80)
    result = load("interval")["result"]
    assert f"中位数 / median: {fmt.duration(result['p50'])}" in text
    assert " h " in fmt.duration(result["p50"]) or " d" in fmt.duration(result["p50"])


def test_ltv_values_per_member_as_money() -> None:
    doc = load("ltv")
    text = render(doc, 80)
    for cohort in doc["result"]["cohorts"]:
        if cohort["values"] and cohort["values"][0] is not None:
            assert f"{cohort['values'][0]:,.2f}" in line_with(text, cohort["cohort"])
    assert "全部 / all" in text and "第7天" in text


def test_drilldown_sentence_and_contributions() -> None:
    doc = load("drilldown")
    text = render(doc, 80)
    result = doc["result"]
    assert pct(result["change_pct"]).lstrip() in text
    for dim in result["dimensions"]:
        for value in dim["values"]:
            line = line_with(text, value["label"], f"{value['current']:,.0f}")
            if value["contribution"] is not None:
                assert pct(value["contribution"]) in line


@pytest.mark.parametrize(
    ("name", "field", "key"), [("stickiness", "rows", "intervals"), ("distribution", "buckets", "label")]
)
def test_counts_with_shares(name: str, field: str, key: str) -> None:
    doc = load(name)
    text = render(doc, 80)
    for row in doc["result"][field]:
        assert pct(row["share"]) in row_with(text, str(row[key]), f"{row['people']:,}")


def test_paths_and_lifecycle_show_their_rows() -> None:
    paths = load("paths")
    text = render(paths, 80)
    top = paths["result"]["paths"][0]
    assert f"{top['users']:,}" in line_with(text, " → ".join(top["events"]))
    lifecycle = load("lifecycle")
    text = render(lifecycle, 80)
    bucket = lifecycle["result"]["buckets"][0]
    assert f"{bucket['dormant']:,}" in line_with(text, bucket["bucket"], f"{bucket['new']:,}")


def test_names_print_as_they_are_not_as_markup() -> None:
    doc = {
        "kind": "trends",
        "result": {
            "interval": "day",
            "buckets": ["2026-01-01"],
            "series": [
                {"series": "A", "label": "[bold]evt[/bold]", "breakdown": ":smile: [red]x", "data": [1.0], "total": 1.0}
            ],
        },
    }
    text = render(doc, 80)
    assert "[bold]evt[/bold]" in text and ":smile: [red]x" in text


def test_an_unknown_kind_gets_generic_tables() -> None:
    doc = {"kind": "future", "result": {"people": 12345, "rate": 0.5, "rows": [{"a": "x", "n": 1234}]}}
    text = render(doc, 80)
    assert "12,345" in text and "1,234" in text and "x" in text


# --- model reports ----------------------------------------------------------------------------------------------------


def test_rfm_report_is_tables_not_json() -> None:
    doc = load("model_rfm")
    text = render(doc, 80)
    assert '{"' not in text and "}" not in text
    report = doc["report"]
    total = sum(c["users"] for c in report["classes"])
    for cls in report["classes"]:
        line = line_with(text, cls["class"], cls["zh"], f"{cls['users']:,}")
        assert pct(cls["users"] / total) in line
    assert "客户数 / customers" in text and f"{report['customers']:,}" in text
    assert "配置 / configuration" in text and "order_paid" in line_with(text, "purchases.event")


def test_clv_report_shows_validation_tables_and_errors() -> None:
    doc = load("model_clv")
    text = render(doc, 80)
    candidates = doc["report"]["validation"]["candidates"]
    for name, candidate in candidates.items():
        if "error" in candidate:
            assert candidate["error"]["code"] in text
            continue
        assert name in text
        decile = candidate["deciles"][-1]
        line_with(text, f"{decile['decile']} ", f"{decile['customers']:,}", f"{decile['actual_mean']:.2f}")
    assert "原因 / reason" in text


def test_class_counts_get_shares() -> None:
    doc = load("model_lifecycle")
    text = render(doc, 80)
    stages = doc["report"]["stages"]
    total = sum(stages.values())
    for stage, n in stages.items():
        assert pct(n / total) in line_with(text, stage, f"{n:,}")


def test_churn_report_validation_and_feature_importance() -> None:
    doc = {
        "model": "churn",
        "run_date": "2026-12-06",
        "model_version": "churn-1",
        "created_at": "2026-12-06T10:00:00",
        "report": {
            "config": {"horizon_days": 30},
            "snapshots": {"train": ["2026-09-07", "2026-08-17"], "calibration": "2026-10-07"},
            "training_rows": 2345,
            "validation": {
                "users": 880,
                "positive_rate": 0.2125,
                "auc": 0.81234,
                "pr_auc": 0.5561,
                "brier": 0.1377,
                "ece": 0.0312,
                "top_decile_lift": 2.8571,
            },
            "feature_importance": {"recency": 0.01, "orders_90d": 0.12345, "sessions_30d": -0.02},
            "learner": "sklearn.HistGradientBoostingClassifier",
            "tiers": {"high": 120, "medium": 300, "low": 460},
        },
    }
    text = render(doc, 80)
    assert_fits(text, 80)
    assert "21.2%" in line_with(text, "正例率 / positive rate")
    assert "0.812" in line_with(text, "AUC") and "2.86" in line_with(text, "top-decile lift")
    importance = text.split("特征重要性 / feature importance")[1]
    assert importance.index("orders_90d") < importance.index("sessions_30d") < importance.index("recency")
    assert "13.6%" in line_with(text, "high", "120")


# --- formats ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (3.25, "3.2 s"),
        (45, "45 s"),
        (135, "2 min 15 s"),
        (11_520, "3 h 12 min"),
        (7200, "2 h"),
        (216_000, "2.5 d"),
        (86_400, "1 d"),
        (86_399, "1 d"),
        (None, ""),
    ],
)
def test_durations_in_human_units(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_number_formats() -> None:
    assert fmt.pct(0.4555964266946926) == "45.6%"
    assert fmt.pct(None) == ""
    assert fmt.pct(-0.0001, signed=True) == "0.0%"
    assert fmt.pct(0.2277, signed=True) == "+22.8%"
    assert fmt.money(184015.59999999896) == "184,015.60"
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.count(49.37571872571876) == "49.4"
    assert fmt.number(2.0) == "2" and fmt.number(150.20000000000002) == "150.20"
    assert fmt.number(0.0223) == "0.0223" and fmt.number(float("nan")) == ""
    assert fmt.column([1.0, 2.5])(2.0) == "2.00" and fmt.column([1.0, None])(1000.0) == "1,000"


@settings(max_examples=examples(50))
@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_every_duration_has_a_unit_and_no_long_fraction(seconds: float) -> None:
    text = fmt.duration(seconds)
    assert text.endswith((" s", " min", " h", " d"))
    number = text.split(" ")[0].replace(",", "")
    assert len(number.split(".")[-1]) <= 1 or "." not in number


# --- splitting ---------------------------------------------------------------------------------------------------

_cell = st.text(alphabet="0123456789,.%abc 转化率", min_size=0, max_size=14)


@settings(max_examples=examples(40))
@given(
    headers=st.lists(
        st.sampled_from(["n", "人数\nusers", "转化率\nconversion", "week 12", "x"]), min_size=1, max_size=14
    ),
    n_rows=st.integers(min_value=0, max_value=4),
    data=st.data(),
    width=st.integers(min_value=40, max_value=160),
)
def test_split_tables_fit_without_squeezing(headers: list[str], n_rows: int, data: Any, width: int) -> None:
    """Every part ``fit`` makes is at most ``width`` wide as rich measures it (so no cell has to wrap), unless it
    holds a single value column; the parts hold every value column once, in order, each with the key column."""
    from userloop.cli.render.table import Col, fit, name, natural_width

    columns = [name("key", width=12), *(Col(h) for h in headers)]
    rows = [data.draw(st.lists(_cell, min_size=len(columns), max_size=len(columns))) for _ in range(n_rows)]
    con = Console(width=width, file=io.StringIO())
    parts = fit(con, columns, rows)
    seen: list[str] = []
    for table in parts:
        names = [str(c.header) for c in table.columns]
        assert names[0] == "key"
        seen += names[1:]
        if len(table.columns) > 2:
            assert natural_width(con, table) <= width
    assert seen == headers


def test_two_step_funnel_breakdowns_are_one_overview_row_each() -> None:
    """Step 1 and 2 of each value fit on one overview row (entered, converted, rate); no block per value."""
    doc = load("funnel")
    result = doc["result"]
    two = {**result, "steps": result["steps"][:2]}
    two["breakdowns"] = [{**b, "steps": b["steps"][:2]} for b in result["breakdowns"]]
    text = render({"kind": "funnel", "result": two}, 80)
    assert "分组 / breakdown: " not in text
    for series in two["breakdowns"]:
        assert pct(series["conversion_rate"]) in row_with(text, series["breakdown"], f"{series['entered']:,}")
