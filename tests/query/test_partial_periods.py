"""Partial periods in every analysis (issue 13 item 2): a result by period lists the periods that are not whole
finished ones (``partial`` as in trends: cut by the range, or still running), a result over the whole range says
``partial: true`` when the range reaches into today, and the text output marks both with ``*`` and a footnote.

The product clock is the engine's ``today`` (the project's local date); the log is small and synthetic: a few
people with ``view``, ``ad`` and ``pay`` events at local noon in Shanghai, up to and including today. The expected
labels are written out by hand from the calendar (2026-03-11 is a Wednesday; its week began on Monday 03-09).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.cli.test_render import assert_fits, render
from tests.query import reference_misc as ref
from userloop.cli.render.table import PARTIAL_NOTE, PARTIAL_RANGE_NOTE
from userloop.query.engine import Engine
from userloop.store import Workspace

SH = "Asia/Shanghai"
TODAY = date(2026, 3, 11)  # a Wednesday
FIRST_DAY = date(2026, 2, 16)  # a Monday, where the log starts
RUNNING = "2026-03-11"
WITH_TODAY = {"last": 3, "include_current": True}  # 03-09 … 03-11
DEFAULT = {"last": 3}  # 03-08 … 03-10: complete days only
CUT_WEEKS = {"from": "2026-02-25", "to": "2026-03-08"}  # starts on a Wednesday, ends on a Sunday


def _at(day: date, hour: int = 12, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(SH)).timestamp() * 1000)


def _log() -> list[dict[str, Any]]:
    """``p`` views every day up to today and pays 10 after an ad every third day; ``q`` views on even days;
    ``new`` arrives today (views, sees an ad and pays); ``monday`` views only on Monday 02-23, in the week
    ``CUT_WEEKS`` cuts."""
    out: list[dict[str, Any]] = []
    day = FIRST_DAY
    while day <= TODAY:
        d = (day - FIRST_DAY).days
        out.append(ref.track("view", "p", _at(day), event_id=f"pv{d}"))
        if d % 3 == 0:
            out.append(ref.track("ad", "p", _at(day, 13), event_id=f"pa{d}", channel="ads"))
            out.append(ref.track("pay", "p", _at(day, 14), event_id=f"pp{d}", amount=10))
        if d % 2 == 0:
            out.append(ref.track("view", "q", _at(day, 15), event_id=f"qv{d}"))
        day += timedelta(days=1)
    out.append(ref.track("view", "new", _at(TODAY, 9), event_id="nv"))
    out.append(ref.track("ad", "new", _at(TODAY, 9, 5), event_id="na", channel="ads"))
    out.append(ref.track("pay", "new", _at(TODAY, 9, 10), event_id="np", amount=25))
    out.append(ref.track("view", "monday", _at(date(2026, 2, 23)), event_id="mv"))
    return out


@pytest.fixture(scope="module")
def engine(ws: Workspace) -> Engine:
    return ref.prepare(ws, SH, _log())


def run(engine: Engine, definition: dict[str, Any], date_range: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = engine.run({**definition, "date_range": date_range}, today=TODAY, use_cache=False).result
    return result


def text_of(kind: str, result: dict[str, Any]) -> str:
    """What the CLI prints for the result at 80 columns; it must fit."""
    text = render({"kind": kind, "result": result}, 80)
    assert_fits(text, 80)
    return text


# by period: lifecycle, funnel trend, LTV cohorts ----------------------------------------------------------------
LIFECYCLE = {"kind": "lifecycle", "event": {"event": "view"}}
FUNNEL = {"kind": "funnel", "steps": [{"event": "view"}, {"event": "pay"}], "trend_interval": "day"}
LTV = {"kind": "ltv", "cohort_event": {"event": "view"}, "value_event": {"event": "pay"}, "value_property": "amount"}


def test_lifecycle_marks_the_running_day(engine: Engine) -> None:
    got = run(engine, LIFECYCLE, WITH_TODAY)
    assert [b["bucket"] for b in got["buckets"]] == ["2026-03-09", "2026-03-10", RUNNING]
    assert got["partial"] == [RUNNING]
    assert got["partial"] == [b["bucket"] for b in got["buckets"] if not b["complete"]]
    text = text_of("lifecycle", got)
    assert f"{RUNNING} *" in text and "2026-03-10 *" not in text and PARTIAL_NOTE in text
    done = run(engine, LIFECYCLE, DEFAULT)
    assert [b["bucket"] for b in done["buckets"]][-1] == "2026-03-10" and done["partial"] == []
    text = text_of("lifecycle", done)
    assert "*" not in text and PARTIAL_NOTE not in text


def test_lifecycle_weeks_are_whole_so_only_the_running_week_is_partial(engine: Engine) -> None:
    """Lifecycle widens its range to whole periods: the week a range starting on a Wednesday cuts is counted
    whole (``monday``, active only on that Monday, is new in it), so it is not partial; the week holding today is."""
    got = run(engine, LIFECYCLE | {"interval": "week"}, CUT_WEEKS)
    assert [b["bucket"] for b in got["buckets"]] == ["2026-02-23", "2026-03-02"]
    assert got["buckets"][0]["new"] == 1 and got["partial"] == []  # monday, before the range's first day
    current = run(engine, LIFECYCLE | {"interval": "week"}, DEFAULT)
    assert [b["bucket"] for b in current["buckets"]] == ["2026-03-02", "2026-03-09"]
    assert current["partial"] == ["2026-03-09"] and not current["buckets"][-1]["complete"]


def test_funnel_trend_marks_the_running_day_and_the_range_is_partial(engine: Engine) -> None:
    got = run(engine, FUNNEL, WITH_TODAY)
    assert [p["bucket"] for p in got["trend"]] == ["2026-03-09", "2026-03-10", RUNNING]
    assert got["trend_partial"] == [RUNNING] and got["partial"] is True
    assert got["trend"][-1]["entered"] == 1  # new: a person counts in the bucket of their first view in the range
    text = text_of("funnel", got)
    assert f"{RUNNING} *" in text and "漏斗 / funnel *" in text
    assert PARTIAL_NOTE in text and PARTIAL_RANGE_NOTE in text
    done = run(engine, FUNNEL, DEFAULT)
    assert done["trend_partial"] == [] and done["partial"] is False
    text = text_of("funnel", done)
    assert "*" not in text and PARTIAL_NOTE not in text and PARTIAL_RANGE_NOTE not in text
    # without a trend the totals still say whether the range is partial
    plain = {k: v for k, v in FUNNEL.items() if k != "trend_interval"}
    assert run(engine, plain, WITH_TODAY)["partial"] is True
    done = run(engine, plain, DEFAULT)
    assert done["partial"] is False and done["trend_partial"] is None


def test_funnel_trend_marks_a_week_the_range_cuts(engine: Engine) -> None:
    got = run(engine, FUNNEL | {"trend_interval": "week"}, CUT_WEEKS)
    assert [p["bucket"] for p in got["trend"]] == ["2026-02-23", "2026-03-02"]
    assert got["trend_partial"] == ["2026-02-23"] and got["partial"] is False


def test_ltv_marks_the_running_cohort(engine: Engine) -> None:
    got = run(engine, LTV, WITH_TODAY)
    assert [c["cohort"] for c in got["cohorts"]] == ["2026-03-09", "2026-03-10", RUNNING]
    assert got["partial"] == [RUNNING]
    assert got["cohorts"][-1]["size"] == 1  # new, first seen today: the cohort is still filling
    text = text_of("ltv", got)
    assert f"{RUNNING} *" in text and "2026-03-09 *" not in text and PARTIAL_NOTE in text
    done = run(engine, LTV, DEFAULT)
    assert done["partial"] == [] and PARTIAL_NOTE not in text_of("ltv", done)


def test_ltv_marks_a_weekly_cohort_the_range_cuts_and_the_running_week(engine: Engine) -> None:
    got = run(engine, LTV | {"cohort_interval": "week"}, CUT_WEEKS)
    assert [c["cohort"] for c in got["cohorts"]] == ["2026-02-23", "2026-03-02"]
    assert got["partial"] == ["2026-02-23"]  # only people first seen from Wednesday 02-25 on are in it
    current = run(engine, LTV | {"cohort_interval": "week"}, {"from": "2026-03-02", "to": RUNNING})
    assert current["partial"] == ["2026-03-09"]


# over the whole range: stickiness, distribution, interval, attribution, paths -----------------------------------
WHOLE_RANGE = {
    "stickiness": {"kind": "stickiness", "event": {"event": "view"}},
    "distribution": {"kind": "distribution", "event": {"event": "view"}},
    "interval": {"kind": "interval", "from_event": {"event": "ad"}, "to_event": {"event": "pay"}},
    "attribution": {"kind": "attribution", "target": {"event": "pay"}, "touches": [{"event": "ad"}]},
    "paths": {"kind": "paths", "steps": 3},
}
TITLES = {
    "stickiness": "粘性 / stickiness",
    "distribution": "分布 / distribution",
    "interval": "间隔 / interval",
    "attribution": "归因 / attribution",
    "paths": "路径 / paths",
}


@pytest.mark.parametrize("kind", sorted(WHOLE_RANGE))
def test_a_range_into_today_is_partial(engine: Engine, kind: str) -> None:
    definition = WHOLE_RANGE[kind]
    got = run(engine, definition, WITH_TODAY)
    assert got["partial"] is True
    text = text_of(kind, got)
    assert f"{TITLES[kind]} *" in text and PARTIAL_RANGE_NOTE in text
    for complete in (DEFAULT, {"from": "2026-03-01", "to": "2026-03-10"}):
        done = run(engine, definition, complete)
        assert done["partial"] is False
        text = text_of(kind, done)
        assert "*" not in text and PARTIAL_RANGE_NOTE not in text
    # an explicit range that ends today is partial too
    assert run(engine, definition, {"from": "2026-03-01", "to": RUNNING})["partial"] is True


def test_weekly_stickiness_reaches_into_the_running_week(engine: Engine) -> None:
    """The range is widened to whole weeks and counted up to today: complete days 03-08 … 03-10 fall in two weeks,
    the second still running (``new``, seen only today, is counted), so the result is partial; a range that ends
    on a Sunday is not."""
    weekly = WHOLE_RANGE["stickiness"] | {"interval": "week"}
    got = run(engine, weekly, DEFAULT)
    assert got["partial"] is True and got["periods"] == 2 and got["total"] == 3  # p, q and new
    assert run(engine, weekly, CUT_WEEKS)["partial"] is False


def test_paths_after_a_funnel_reach_past_its_range(engine: Engine) -> None:
    """After a funnel drop-off the stream runs the funnel's window past its range: a funnel over complete days
    with a one-day window reaches today."""
    funnel = {"steps": [{"event": "view"}, {"event": "pay"}], "window": {"value": 1, "unit": "day"}}
    q = {"kind": "paths", "steps": 3, "after_funnel": {"funnel": funnel | {"date_range": DEFAULT}, "step": 1}}
    assert engine.run(q, today=TODAY, use_cache=False).result["partial"] is True
    earlier = {"from": "2026-03-01", "to": "2026-03-08"}
    q["after_funnel"]["funnel"]["date_range"] = earlier
    assert engine.run(q, today=TODAY, use_cache=False).result["partial"] is False
