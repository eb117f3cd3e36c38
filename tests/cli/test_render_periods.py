"""Text output of partial periods and of drill-down's verdict (issue 13 item 2 and 3): a partial bucket carries
``*`` and the table a bilingual footnote; a drill-down says whether the change is within normal variation,
spread evenly or concentrated, with the test behind it and each value's adjusted p-value."""

from __future__ import annotations

import copy

from tests.cli.test_render import assert_fits, line_with, load, render
from userloop.cli.render.trends import PARTIAL_NOTE
from userloop.query.periods import PARTIAL_NOTE as QUERY_NOTE


def test_partial_buckets_are_marked_with_a_footnote() -> None:
    doc = copy.deepcopy(load("trends"))
    assert "*" not in render(doc, 80) and PARTIAL_NOTE not in render(doc, 80)
    first, last = doc["result"]["buckets"][0], doc["result"]["buckets"][-1]
    doc["result"]["partial"] = [last]
    text = render(doc, 80)
    assert f"{last} *" in text and f"{first} *" not in text
    assert "* 未完结周期 / partial period" in text and PARTIAL_NOTE == QUERY_NOTE
    assert_fits(text, 80)


def test_partial_buckets_are_marked_when_values_are_rows() -> None:
    doc = copy.deepcopy(load("gmv"))
    doc["result"]["partial"] = [doc["result"]["buckets"][0]]
    text = render(doc, 200)
    assert f"{doc['result']['buckets'][0]} *" in text and PARTIAL_NOTE in text


def test_drilldown_shows_the_verdict_the_test_and_p_values() -> None:
    doc = copy.deepcopy(load("drilldown"))
    result = doc["result"]
    result["verdict"] = "noise"
    result["test"] = {
        "method": "history",
        "statistic": 1.234,
        "dof": 7.0,
        "p_value": 0.26,
        "expected_change": 150.0,
        "typical_change": 80.5,
        "significant": False,
        "earlier": [{"start": "2026-11-16", "end": "2026-11-22", "value": 1200.0}] * 8,
    }
    first = result["dimensions"][0]["values"][0]
    first["p_value"] = 0.0004
    text = render(doc, 80)
    assert "在正常波动范围内 / within normal variation" in text
    assert "t = 1.23, 8 个前期 / earlier periods, p = 0.260" in text
    assert "+150 ± 80.50" in text or "+150 ± 80.5" in text
    assert "4e-04" in line_with(text, first["label"], f"{first['current']:,.0f}")
    assert_fits(text, 80)
