"""The funnel's text output says where each breakpoint is and why: the overall largest drop-off, and a breakdown
value's conversion against the other values' with its q-value (the recorded payment funnel by OS)."""

from __future__ import annotations

import copy

from tests.cli.test_render import assert_fits, load, pct, render


def test_each_breakpoint_is_marked_and_explained_at_80_columns() -> None:
    doc = load("funnel")
    text = render(doc, 80)
    assert_fits(text, 80)
    flat = " ".join(text.split())  # notes wrap at 80 columns
    overall = next(s for s in doc["result"]["steps"] if s["is_breakpoint"])
    assert overall["breakpoint"]["rule"] == "largest_drop_off"
    assert f"◀ {overall['label']}: 流失最多的一步" in flat
    assert f"the step where the most people are lost ({pct(overall['drop_off_rate'])} drop off)" in flat
    flagged = [(b, s) for b in doc["result"]["breakdowns"] for s in b["steps"] if s["is_breakpoint"]]
    assert [(b["breakdown"], s["label"]) for b, s in flagged] == [("Android", "enter_password")]
    _, step = flagged[0]
    why = step["breakpoint"]
    # a q-value a double cannot tell from zero is shown as a bound, not as "0e+00"
    q_shown = "< 1e-15" if why["q_value"] < 1e-15 else f"= {why['q_value']:.0e}"
    assert (
        f"◀ Android · enter_password: 转化 {pct(why['conversion'])}，其他组 {pct(why['others_conversion'])} / "
        f"converts {pct(why['conversion'])} vs {pct(why['others_conversion'])} for the other values "
        f"(q {q_shown})"
    ) in flat
    # The overview names the value's breakpoint; the other values have none.
    overview = text.split("分组概览")[1].split("分组 / breakdown:")[0]
    android = next(line for line in overview.splitlines() if line.startswith("Android"))
    ios = next(line for line in overview.splitlines() if line.startswith("iOS"))
    assert "enter_password" in android and "enter_password" not in ios and "checkout" not in ios


def test_no_value_breakpoint_prints_no_value_legend() -> None:
    doc = copy.deepcopy(load("funnel"))
    for series in doc["result"]["breakdowns"]:
        for step in series["steps"]:
            step["is_breakpoint"], step["breakpoint"] = False, None
    text = render(doc, 80)
    assert "分组断点" not in text and "for the other values" not in text
    assert "流失最多的一步" in text  # the overall breakpoint is still explained
