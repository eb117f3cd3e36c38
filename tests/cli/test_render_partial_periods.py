"""Text output of partial periods beyond trends (issue 13 item 2): lifecycle, the funnel's trend and LTV cohorts mark
each partial bucket with ``*`` and print the trends' footnote; results over a whole range that reaches into a
running period (stickiness, distribution, interval, attribution, paths, a funnel's totals) mark their heading with
``*`` and say why under it. Everything still fits 80 columns. The documents are the recorded demo results of
``render_docs/``, given the fields an engine of today adds."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.cli.test_render import assert_fits, load, render
from userloop.cli.render.table import PARTIAL_NOTE, PARTIAL_RANGE_NOTE
from userloop.cli.render.trends import PARTIAL_NOTE as TRENDS_NOTE
from userloop.query.periods import PARTIAL_NOTE as QUERY_NOTE


def marked(text: str) -> list[str]:
    """The labels that carry the partial marker (``2026-12-07 *``) at the start of a table row."""
    return re.findall(r"^\s*(\S+) \*(?:\s|$)", text, flags=re.MULTILINE)


def test_one_footnote_for_every_renderer() -> None:
    assert PARTIAL_NOTE == TRENDS_NOTE == QUERY_NOTE


def test_lifecycle_marks_the_partial_buckets() -> None:
    doc = copy.deepcopy(load("lifecycle"))
    buckets = [b["bucket"] for b in doc["result"]["buckets"]]
    for b in doc["result"]["buckets"]:
        b["complete"] = True
    doc["result"]["partial"] = []
    text = render(doc, 80)
    assert marked(text) == [] and PARTIAL_NOTE not in text
    doc["result"]["partial"] = [buckets[-1]]
    doc["result"]["buckets"][-1]["complete"] = False
    text = render(doc, 80)
    assert marked(text) == [buckets[-1]] and PARTIAL_NOTE in text
    assert_fits(text, 80)


def test_ltv_marks_the_partial_cohorts_in_both_tables() -> None:
    doc = copy.deepcopy(load("ltv"))
    cohorts = [c["cohort"] for c in doc["result"]["cohorts"]]
    assert PARTIAL_NOTE not in render(doc, 80)
    doc["result"]["partial"] = [cohorts[0], cohorts[-1]]
    text = render(doc, 80)
    # per member and cumulative totals, each maybe split into parts that repeat the cohort column
    assert set(marked(text)) == {cohorts[0], cohorts[-1]} and len(marked(text)) >= 4
    assert text.count(PARTIAL_NOTE) == 1
    assert_fits(text, 80)


def test_funnel_marks_partial_trend_buckets_and_a_partial_range() -> None:
    doc = copy.deepcopy(load("funnel"))
    points = [p["bucket"] for p in doc["result"]["trend"]]
    text = render(doc, 80)
    assert marked(text) == [] and PARTIAL_NOTE not in text and "funnel *" not in text
    doc["result"]["trend_partial"] = [points[-1]]
    text = render(doc, 80)
    assert marked(text) == [points[-1]] and PARTIAL_NOTE in text and PARTIAL_RANGE_NOTE not in text
    doc["result"]["partial"] = True
    text = render(doc, 80)
    assert "漏斗 / funnel *" in text and PARTIAL_RANGE_NOTE in text
    assert_fits(text, 80)


@pytest.mark.parametrize(
    ("name", "heading"),
    [
        ("stickiness", "粘性 / stickiness"),
        ("distribution", "分布 / distribution"),
        ("distribution_count", "分布 / distribution"),
        ("interval", "间隔 / interval"),
        ("attribution", "归因 / attribution"),
        ("paths", "路径 / paths"),
    ],
)
def test_a_partial_range_marks_the_heading(name: str, heading: str) -> None:
    doc: dict[str, Any] = copy.deepcopy(load(name))
    doc["result"]["partial"] = False
    text = render(doc, 80)
    assert heading in text and f"{heading} *" not in text and PARTIAL_RANGE_NOTE not in text
    doc["result"]["partial"] = True
    text = render(doc, 80)
    assert f"{heading} *" in text and text.rstrip().endswith(PARTIAL_RANGE_NOTE)
    assert_fits(text, 80)
